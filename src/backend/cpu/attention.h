// Causal grouped-query attention (Ainslie et al. 2023) over an F32 KV cache, optionally with a
// sliding window (Mistral). Decode (few query tokens) runs Highway score / weighted-sum kernels
// per head; prefill runs per-head sgemm blocks (Q·Kᵀ, masked softmax, P·V).
#pragma once

#include <cstdint>

namespace qforge::cpu {

struct AttentionParams {
  const float* q = nullptr;  // [n_tokens, n_heads * head_dim], RoPE already applied
  const float* k = nullptr;  // one layer's key cache: [n_kv_heads, capacity, head_dim]
  const float* v = nullptr;  // one layer's value cache: [n_kv_heads, capacity, head_dim]
  float* out = nullptr;      // [n_tokens, n_heads * head_dim]
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // divides n_heads; head h reads kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  int64_t capacity = 0;  // cache rows per kv head; pos0 + n_tokens <= capacity
  int64_t pos0 = 0;    // position of query token 0; keys for positions < pos0 + n_tokens are cached
  int64_t window = 0;  // 0: attend to every earlier position; else only the last `window`
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)
};

// First key position that the query at `pos` attends to.
inline int64_t attention_first_key(int64_t pos, int64_t window) {
  return window > 0 && pos + 1 > window ? pos + 1 - window : 0;
}

// Query tokens from which attention() switches to the sgemm path.
inline constexpr int64_t kAttentionGemmMinTokens = 16;

// Multi-threaded over heads (and query blocks); runs inline inside a parallel region.
void attention(const AttentionParams& p);
// Scalar oracle: double accumulation, one query and head at a time.
void attention_ref(const AttentionParams& p);

// Single-thread building blocks (exposed for tests and benchmarks):
// scores: [n_keys] = scale * (k rows · q), k: [n_keys, head_dim] contiguous.
void attention_scores(const float* q, const float* k, int64_t n_keys, int64_t head_dim, float scale,
                      float* scores);
// out: [head_dim] = sum_j probs[j] * v[j], v: [n_keys, head_dim] contiguous.
void attention_weighted_sum(const float* probs, const float* v, int64_t n_keys, int64_t head_dim,
                            float* out);
// out: [head_dim] += sum_j probs[j] * v[j], keys in order: summing consecutive key tiles one call
// at a time rounds exactly as one call over all of them (paged attention relies on it).
void attention_accumulate(const float* probs, const float* v, int64_t n_keys, int64_t head_dim,
                          float* out);

}  // namespace qforge::cpu
