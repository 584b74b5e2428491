// Per-target Highway kernels of attention.h: the score row (q against every cached key) and
// the probability-weighted sum of cached values, for one query and head.
// Included once per target by attention.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_ATTENTION_INL_H_
#undef QFORGE_BACKEND_CPU_ATTENTION_INL_H_
#else
#define QFORGE_BACKEND_CPU_ATTENTION_INL_H_
#endif

#include <cstring>

#include "backend/cpu/attention.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE float DotRow(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF s0 = hn::Zero(df), s1 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void AttnScores(const float* HWY_RESTRICT q, const float* HWY_RESTRICT k, int64_t n_keys,
                int64_t head_dim, float scale, float* HWY_RESTRICT scores) {
  const auto d = static_cast<size_t>(head_dim);
  for (int64_t j = 0; j < n_keys; ++j) scores[j] = DotRow(q, k + j * head_dim, d) * scale;
}

// out[i] += sum_j probs[j] * v[j][i], keys in order, so a sum split over consecutive key tiles
// (paged attention) rounds exactly as one call over all of them.
void AttnAccumulate(const float* HWY_RESTRICT probs, const float* HWY_RESTRICT v, int64_t n_keys,
                    int64_t head_dim, float* HWY_RESTRICT out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const auto d = static_cast<size_t>(head_dim);
  size_t i = 0;
  // Column blocks of up to four vectors stay in registers across all keys.
  for (; i + 4 * N <= d; i += 4 * N) {
    VF a0 = hn::LoadU(df, out + i), a1 = hn::LoadU(df, out + i + N);
    VF a2 = hn::LoadU(df, out + i + 2 * N), a3 = hn::LoadU(df, out + i + 3 * N);
    for (int64_t j = 0; j < n_keys; ++j) {
      const VF p = hn::Set(df, probs[j]);
      const float* row = v + j * head_dim + i;
      a0 = hn::MulAdd(p, hn::LoadU(df, row), a0);
      a1 = hn::MulAdd(p, hn::LoadU(df, row + N), a1);
      a2 = hn::MulAdd(p, hn::LoadU(df, row + 2 * N), a2);
      a3 = hn::MulAdd(p, hn::LoadU(df, row + 3 * N), a3);
    }
    hn::StoreU(a0, df, out + i);
    hn::StoreU(a1, df, out + i + N);
    hn::StoreU(a2, df, out + i + 2 * N);
    hn::StoreU(a3, df, out + i + 3 * N);
  }
  for (; i + N <= d; i += N) {
    VF a0 = hn::LoadU(df, out + i);
    for (int64_t j = 0; j < n_keys; ++j) {
      a0 = hn::MulAdd(hn::Set(df, probs[j]), hn::LoadU(df, v + j * head_dim + i), a0);
    }
    hn::StoreU(a0, df, out + i);
  }
  for (; i < d; ++i) {
    float sum = out[i];
    for (int64_t j = 0; j < n_keys; ++j) sum += probs[j] * v[j * head_dim + i];
    out[i] = sum;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
