// One forward step over several sequences at once (internal to src/runtime): the rows of every
// sequence's chunk (decode tokens and prefill chunks, mixed) are concatenated for each linear, so
// every weight is read once per step for the whole batch; RMSNorm, RoPE and SwiGLU run per row,
// and attention runs per sequence over its pages (backend/cpu/paged_attention.h).
//
// Determinism (on by default): every per-row op is applied to one whole row and paged attention
// is chunk- and batch-invariant; the linears must compute row i of their output from row i of
// their input by the same arithmetic whatever the row count m. The dense F32/F16/BF16 kernel
// (backend/cpu/matmul) does so for x rows in groups of 2 to 4 but runs a lone row (m = 1, or the
// last row when m % 4 == 1) through its single-row GEMV, whose four column accumulators round
// differently, so deterministic mode adds one zero row to such batches. Then a sequence's logits
// are bit-identical whatever else shares the step, how its prompt was chunked, and the thread
// count. The cost: batch-1 decode runs the two-row kernel (measured in docs/PERFORMANCE.md).
// Engines' packed kernels compute every row alone (WeightMatrix::rows_independent_of_batch), so
// the padding is skipped for the block linears, or the head, when all of them are packed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/model.h"
#include "qforge/model/rope.h"
#include "qforge/runtime/paged_kv_cache.h"

namespace qforge::runtime_internal {

struct SequenceChunk {
  PagedKvCache::SeqId seq = 0;
  int64_t pos0 = 0;  // position of tokens[0]; positions < pos0 are in the cache already
  std::span<const int32_t> tokens;
  bool want_logits = false;  // logits of the chunk's last token
};

class BatchForward {
 public:
  BatchForward(std::shared_ptr<const Model> model, PagedKvCache* cache, bool deterministic = true);

  // Runs every chunk (each sequence at most once per step) and stores their K/V in the cache.
  // logits: [chunks with want_logits, vocab], in chunk order. Errors (nothing run): a token id
  // outside the vocabulary, positions beyond the sequence's reserved pages, a repeated sequence.
  Status run(std::span<const SequenceChunk> chunks, std::vector<float>* logits);

  const Model& model() const { return *model_; }

 private:
  std::shared_ptr<const Model> model_;
  PagedKvCache* cache_;
  bool deterministic_ = true;
  bool pad_layers_ = false;  // deterministic and some block linear rounds a lone row differently
  bool pad_head_ = false;    // the same for lm_head
  RopeFrequencies rope_;     // every RoPE type but dynamic NTK is independent of the length
  std::vector<float> x_, xb_, q_, k_, v_, att_, gate_, up_, cos_, sin_;
  std::vector<int32_t> tokens_;
};

}  // namespace qforge::runtime_internal
