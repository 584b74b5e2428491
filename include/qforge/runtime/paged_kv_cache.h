// PagedKvCache: the KV cache of many sequences as one pool of fixed-size pages (vLLM's
// PagedAttention, Kwon et al. 2023). A page holds block_size positions of K and V for every KV
// head of one layer; a sequence owns a block table (page ids, in position order) that grows as
// it needs more positions, and gives every page back to the free list when it ends, so memory
// never fragments: any free page serves any sequence.
//
// Storage: F32, F16, BF16 (round to nearest even), or FP8 E4M3FN / INT8 codes under the
// calibrated per-layer (or per-KV-head) scales of KvCacheQuant. A stored FP8/INT8 element reads
// back as decode(code) * scale, exactly the value kv_cache_fake_quantize leaves in the reference
// F32 cache, so a paged FP8/INT8 cache computes what the reference runtime computes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/engine/build_config.h"
#include "qforge/model/config.h"
#include "qforge/model/kv_cache_quant.h"

namespace qforge {

struct PagedKvCacheOptions {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 32;  // positions per page
  int64_t n_blocks = 0;     // pages in the pool (each spans every layer)
  KvCacheStorage storage = KvCacheStorage::kF32;
  // FP8/INT8 storage: the scales (dtype kFp8 / kInt8 matching `storage`). FP8 without calibrated
  // scales uses unit scales (kv_cache_quant_unit_scales); INT8 needs calibrated ones.
  KvCacheQuant quant;
};

// Options for `config`'s shape under a build config: block size, storage, and a pool of
// kv_cache_blocks pages (0: enough for max_batch_size sequences of max_seq_len positions).
PagedKvCacheOptions paged_kv_cache_options(const ModelConfig& config, const BuildConfig& build,
                                           KvCacheStorage storage, const KvCacheQuant& quant);

class PagedKvCache {
 public:
  using SeqId = int32_t;

  // Allocates the pool (untouched until written). Errors name the bad field, or say how many
  // bytes the pool needed when the allocation fails.
  static Result<std::unique_ptr<PagedKvCache>> create(const PagedKvCacheOptions& options);

  // A new sequence with no pages.
  SeqId add_sequence();
  // Grows the block table of `seq` to hold n_tokens positions. False (nothing changed) when the
  // free list has too few pages.
  bool try_reserve(SeqId seq, int64_t n_tokens);
  // Gives every page of `seq` back to the free list and forgets the sequence.
  void release(SeqId seq);

  // Pages needed for n_tokens positions.
  int64_t blocks_for(int64_t n_tokens) const {
    return (n_tokens + options_.block_size - 1) / options_.block_size;
  }
  // Positions `seq` has pages for.
  int64_t capacity(SeqId seq) const;
  const std::vector<int32_t>& block_table(SeqId seq) const;
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t total_blocks() const { return options_.n_blocks; }
  int64_t live_sequences() const { return live_; }
  const PagedKvCacheOptions& options() const { return options_; }
  uint64_t pool_bytes() const { return pool_bytes_; }
  // Bytes of K and V one position takes over all layers.
  uint64_t bytes_per_token() const;

  // Stores K and V of positions [pos0, pos0 + n) of layer `layer`: rows k, v: [n, n_kv_heads *
  // head_dim] with row strides k_stride / v_stride floats. pos0 + n <= capacity(seq).
  void write(SeqId seq, int64_t layer, int64_t pos0, int64_t n, const float* k, int64_t k_stride,
             const float* v, int64_t v_stride);
  // out: [head_dim] = the stored K (value == false) or V row of (layer, position, KV head).
  void read_row(SeqId seq, int64_t layer, int64_t pos, int64_t head, bool value, float* out) const;

  // Raw layout for the attention kernel. Layer l's pages start at layer_data(l); page b of KV
  // head g holds K rows [slot][head_dim] at + b * page_stride() + g * head_stride() and V rows at
  // + value_offset() from there.
  const uint8_t* layer_data(int64_t layer) const {
    return pool_.get() + static_cast<uint64_t>(layer) * layer_bytes_;
  }
  int64_t page_stride() const { return page_stride_; }
  int64_t head_stride() const { return head_stride_; }
  int64_t value_offset() const { return options_.n_kv_heads * head_stride_; }
  // FP8/INT8: [n_kv_heads] dequantization multipliers of layer l (K and V); null otherwise.
  const float* k_scales(int64_t layer) const;
  const float* v_scales(int64_t layer) const;

 private:
  struct Sequence {
    std::vector<int32_t> table;
    bool live = false;
  };
  struct FreeBytes {
    void operator()(uint8_t* p) const;
  };

  PagedKvCache() = default;
  uint8_t* element(SeqId seq, int64_t layer, int64_t pos, int64_t head, bool value);

  PagedKvCacheOptions options_;
  std::unique_ptr<uint8_t[], FreeBytes> pool_;
  uint64_t pool_bytes_ = 0;
  uint64_t layer_bytes_ = 0;
  int64_t page_stride_ = 0;
  int64_t head_stride_ = 0;
  std::vector<int32_t> free_;  // page ids, used as a stack
  std::vector<Sequence> seqs_;
  std::vector<SeqId> free_ids_;
  int64_t live_ = 0;
  std::vector<float> k_scales_, v_scales_;  // [n_layers * n_kv_heads] (FP8/INT8)
};

}  // namespace qforge
