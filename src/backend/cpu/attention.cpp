// The attention driver of attention.h: dispatch of the per-target kernels (attention-inl.h),
// the per-(token, head) decode loop and the per-head sgemm blocks of prefill.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/attention-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/vector_ops.h"
#include "qforge/core/error.h"
#include "qforge/core/parallel.h"

namespace qforge::cpu {

HWY_EXPORT(AttnScores);
HWY_EXPORT(AttnAccumulate);

void attention_scores(const float* q, const float* k, int64_t n_keys, int64_t head_dim, float scale,
                      float* scores) {
  HWY_DYNAMIC_DISPATCH(AttnScores)(q, k, n_keys, head_dim, scale, scores);
}

void attention_weighted_sum(const float* probs, const float* v, int64_t n_keys, int64_t head_dim,
                            float* out) {
  std::fill(out, out + head_dim, 0.0f);
  attention_accumulate(probs, v, n_keys, head_dim, out);
}

void attention_accumulate(const float* probs, const float* v, int64_t n_keys, int64_t head_dim,
                          float* out) {
  HWY_DYNAMIC_DISPATCH(AttnAccumulate)(probs, v, n_keys, head_dim, out);
}

namespace {

// Query rows per sgemm block: bounds the score buffer at kQueryBlock x n_keys floats.
constexpr int64_t kQueryBlock = 64;
// Multiply-adds per parallel chunk of the decode loop (see kGemvGrainBytes in matmul.cpp: a
// fork/join is only worth it for work of a millisecond or so).
constexpr int64_t kDecodeGrainMacs = int64_t{1} << 20;

void check_params(const AttentionParams& p) {
  QF_CHECK(p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0);
  QF_CHECK(p.pos0 >= 0 && p.pos0 + p.n_tokens <= p.capacity);
}

// One (query token, head) at a time: scores, softmax, weighted sum.
void attention_decode(const AttentionParams& p) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t q_stride = p.n_heads * p.head_dim;
  const int64_t macs_per_task = 2 * (p.pos0 + p.n_tokens) * p.head_dim;
  const int64_t grain =
      std::max<int64_t>(1, kDecodeGrainMacs / std::max<int64_t>(1, macs_per_task));
  parallel_for(0, p.n_tokens * p.n_heads, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(p.pos0 + p.n_tokens));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / p.n_heads;
      const int64_t h = task % p.n_heads;
      const int64_t pos = p.pos0 + t;
      const int64_t lo = attention_first_key(pos, p.window);
      const int64_t n_keys = pos + 1 - lo;
      const int64_t kv_offset = (h / group) * p.capacity * p.head_dim + lo * p.head_dim;
      attention_scores(p.q + t * q_stride + h * p.head_dim, p.k + kv_offset, n_keys, p.head_dim,
                       p.scale, scores.data());
      softmax(scores.data(), n_keys);
      attention_weighted_sum(scores.data(), p.v + kv_offset, n_keys, p.head_dim,
                             p.out + t * q_stride + h * p.head_dim);
    }
  });
}

// One (head, block of queries) at a time: S = scale Q Kᵀ (sgemm), masked row softmax, O = S V.
void attention_prefill(const AttentionParams& p) {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t q_stride = p.n_heads * p.head_dim;
  const int64_t n_blocks = (p.n_tokens + kQueryBlock - 1) / kQueryBlock;
  const int d = static_cast<int>(p.head_dim);
  parallel_for(0, p.n_heads * n_blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / n_blocks;
      const int64_t t0 = (task % n_blocks) * kQueryBlock;
      const int64_t nt = std::min(kQueryBlock, p.n_tokens - t0);
      const int64_t lo = attention_first_key(p.pos0 + t0, p.window);
      const int64_t hi = p.pos0 + t0 + nt;  // exclusive
      const int64_t nk = hi - lo;
      scores.resize(static_cast<size_t>(nt * nk));
      const float* q = p.q + t0 * q_stride + h * p.head_dim;
      const int64_t kv_offset = (h / group) * p.capacity * p.head_dim + lo * p.head_dim;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nt),
                  static_cast<int>(nk), d, p.scale, q, static_cast<int>(q_stride), p.k + kv_offset,
                  d, 0.0f, scores.data(), static_cast<int>(nk));
      for (int64_t r = 0; r < nt; ++r) {
        const int64_t pos = p.pos0 + t0 + r;
        const int64_t first = attention_first_key(pos, p.window) - lo;
        const int64_t last = pos - lo;  // inclusive
        float* row = scores.data() + r * nk;
        std::fill(row, row + first, 0.0f);
        softmax(row + first, last + 1 - first);
        std::fill(row + last + 1, row + nk, 0.0f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nt), d,
                  static_cast<int>(nk), 1.0f, scores.data(), static_cast<int>(nk), p.v + kv_offset,
                  d, 0.0f, p.out + t0 * q_stride + h * p.head_dim, static_cast<int>(q_stride));
    }
  });
}

}  // namespace

void attention(const AttentionParams& p) {
  check_params(p);
  if (p.n_tokens == 0) return;
  if (p.n_tokens < kAttentionGemmMinTokens) {
    attention_decode(p);
  } else {
    attention_prefill(p);
  }
}

}  // namespace qforge::cpu
#endif  // HWY_ONCE
