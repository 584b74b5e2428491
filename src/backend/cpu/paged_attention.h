// Causal grouped-query attention of the query tokens of one sequence against its paged KV cache
// (vLLM's PagedAttention, Kwon et al. 2023): keys and values live in fixed-size pages listed by a
// block table, stored as F32, F16, BF16, FP8 E4M3FN or INT8 (codes times a per-KV-head scale).
// Pages are read where they are: each task decodes one page of one KV head at a time into an F32
// tile shared by all queries of its head group. Optional sliding window (Mistral).
//
// Determinism: every (query token, head) output is computed by the same arithmetic whatever the
// other queries of the call, the chunking of the sequence into calls, the other sequences of a
// batch and the thread count (scores are per-key dot products, softmax per row, values summed in
// key order), so batching and chunked prefill never change a result bit.
#pragma once

#include <cstdint>

namespace qforge::cpu {

// Element type of a KV page.
enum class PagedKvDType : uint8_t { kF32, kF16, kBF16, kFp8E4M3FN, kInt8 };

// Bytes per element of `dtype`: 4, 2, 2, 1, 1.
int64_t paged_kv_dtype_bytes(PagedKvDType dtype);

// Pages of one layer. Page `b` of KV head `g` holds rows [slot][head_dim] at
//   k_pages + b * page_stride + g * head_stride   (and the same offsets from v_pages),
// slot s of page block_table[i] being position i * block_size + s of the sequence.
struct PagedKvLayer {
  const void* k_pages = nullptr;
  const void* v_pages = nullptr;
  int64_t page_stride = 0;  // bytes between pages
  int64_t head_stride =
      0;                   // bytes between KV heads within a page (>= block_size * head_dim * elem)
  int64_t block_size = 0;  // tokens per page
  PagedKvDType dtype = PagedKvDType::kF32;
  // FP8/INT8: dequantization multipliers per KV head ([n_kv_heads]); value = decode(code) * scale.
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;
};

struct PagedAttentionParams {
  const float* q = nullptr;  // [n_tokens, n_heads * head_dim], RoPE already applied
  float* out = nullptr;      // [n_tokens, n_heads * head_dim]
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // divides n_heads; head h reads kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  int64_t pos0 = 0;    // position of query token 0; keys for positions < pos0 + n_tokens are paged
  int64_t window = 0;  // 0: attend to every earlier position; else only the last `window`
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)
  PagedKvLayer kv;
  const int32_t* block_table = nullptr;  // >= ceil((pos0 + n_tokens) / block_size) page ids
};

// Query tokens per task (each task decodes its pages once for this many tokens x head group).
inline constexpr int64_t kPagedAttentionQueryBlock = 16;

// One call per sequence; multi-threaded over (kv head, query block) tasks.
void paged_attention(const PagedAttentionParams& p);
// Several sequences in one parallel region (a batched decode step: one fork/join per layer).
void paged_attention_batch(const PagedAttentionParams* seqs, int64_t n_seqs);
// Scalar oracle: double accumulation, one query and head at a time, elements decoded one by one.
void paged_attention_ref(const PagedAttentionParams& p);

// Single-thread building block (exposed for tests; encoding is the writer's job: the runtime
// stores codes with formats/quantize.h's quantize_row_fp8 / quantize_row_int8):
// dst: [n] F32 = decode(src[i]) (* scale for FP8/INT8).
void paged_kv_decode_row(const void* src, PagedKvDType dtype, float scale, int64_t n, float* dst);

}  // namespace qforge::cpu
