// Per-target dense GEMV / tiled GEMM of qmatmul.h's dense_matmul: kR weight rows x kM x rows per
// step, each weight vector widened once (widen-inl.h) and used kM times; one accumulator per
// output in every path, so the result of a row never depends on m.
// Included once per target by qmatmul_dense.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_DENSE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_DENSE_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_DENSE_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_DENSE_INL_H_
#endif

#include <cmath>
#include <cstdint>

#include "backend/cpu/matmul.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <int kR, int kM, typename WT>
HWY_INLINE void DenseTile(const WT* HWY_RESTRICT w0, size_t row_stride, size_t k,
                          const float* HWY_RESTRICT x, size_t ldx, float* HWY_RESTRICT y,
                          size_t ldy, size_t prefetch) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  using VF = hn::Vec<decltype(df)>;
  VF acc[kR][kM];
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kM; ++i) acc[r][i] = hn::Zero(df);
  }
  size_t j = 0;
  for (; j + N <= k; j += N) {
    if (prefetch != 0) {
      for (int r = 0; r < kR; ++r) {
        __builtin_prefetch(reinterpret_cast<const char*>(w0 + r * row_stride + j) + prefetch);
      }
    }
    VF xv[kM];
    for (int i = 0; i < kM; ++i) xv[i] = hn::LoadU(df, x + i * ldx + j);
    for (int r = 0; r < kR; ++r) {
      const VF wv = LoadWeights(df, w0 + r * row_stride + j);
      for (int i = 0; i < kM; ++i) acc[r][i] = hn::MulAdd(wv, xv[i], acc[r][i]);
    }
  }
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kM; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      for (size_t t = j; t < k; ++t) {
        sum = std::fma(WeightToFloat(w0 + r * row_stride + t), x[i * ldx + t], sum);
      }
      y[i * ldy + r] = sum;
    }
  }
}

template <int kM, typename WT>
HWY_INLINE void DenseRowsM(const WT* w, size_t row_stride, size_t k, size_t r0, size_t r1,
                           const float* x, size_t ldx, float* y, size_t ldy, size_t prefetch) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  constexpr int kR = 4;
#else
  constexpr int kR = kM >= 3 ? 2 : 4;
#endif
  size_t r = r0;
  for (; r + kR <= r1; r += kR) {
    DenseTile<kR, kM>(w + r * row_stride, row_stride, k, x, ldx, y + r, ldy, prefetch);
  }
  for (; r < r1; ++r) DenseTile<1, kM>(w + r * row_stride, row_stride, k, x, ldx, y + r, ldy, 0);
}

// x rows per prefill step: kR = 4 weight rows x 6 x rows = 24 accumulators on AVX-512.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int64_t kDensePrefillRows = 6;
#else
constexpr int64_t kDensePrefillRows = 4;
#endif

// Prefill of rows [r0, r1) for all m x rows: the tile is widened to F32 once (the same floats
// LoadWeights yields, so every output is computed exactly as in the GEMV), then 4 x
// kDensePrefillRows register blocks run over it. Tile rows and x rows are kept ld = k + 16
// floats apart (x copied by the caller): at a stride that is a multiple of 4 KB the ten streams
// of one block would all compete for the same L1 set. tile: [r1 - r0, ld]; x: [m, ld].
template <typename WT>
HWY_INLINE void DensePrefillTyped(const WT* w, size_t row_stride, size_t k, size_t r0, size_t r1,
                                  const float* x, size_t ld, int64_t m, float* y, size_t ldy,
                                  float* HWY_RESTRICT tile) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  for (size_t r = r0; r < r1; ++r) {
    const WT* src = w + r * row_stride;
    float* dst = tile + (r - r0) * ld;
    size_t j = 0;
    for (; j + N <= k; j += N) hn::StoreU(LoadWeights(df, src + j), df, dst + j);
    for (; j < k; ++j) dst[j] = WeightToFloat(src + j);
  }
  const size_t n = r1 - r0;
  const float* t = tile;
  int64_t i = 0;
  for (; i + kDensePrefillRows <= m; i += kDensePrefillRows) {
    DenseRowsM<kDensePrefillRows>(t, ld, k, 0, n, x + i * ld, ld, y + i * ldy + r0, ldy, 0);
  }
  for (; i < m; ++i) DenseRowsM<1>(t, ld, k, 0, n, x + i * ld, ld, y + i * ldy + r0, ldy, 0);
}

void DensePrefill(const void* w, DType dtype, int64_t row_stride, int64_t k, int64_t r0, int64_t r1,
                  const float* x, int64_t ld, int64_t m, float* y, int64_t ldy, float* tile) {
  const auto l = static_cast<size_t>(ld);
  const auto rs = static_cast<size_t>(row_stride);
  const auto kk = static_cast<size_t>(k);
  const auto b = static_cast<size_t>(r0);
  const auto e = static_cast<size_t>(r1);
  const auto ly = static_cast<size_t>(ldy);
  switch (dtype) {
    case DType::BF16:
      return DensePrefillTyped(static_cast<const hwy::bfloat16_t*>(w), rs, kk, b, e, x, l, m, y, ly,
                               tile);
    case DType::F16:
      return DensePrefillTyped(static_cast<const hwy::float16_t*>(w), rs, kk, b, e, x, l, m, y, ly,
                               tile);
    default:
      return DensePrefillTyped(static_cast<const float*>(w), rs, kk, b, e, x, l, m, y, ly, tile);
  }
}

// Rows [r0, r1) of y for x rows [0, m) (any m, in groups of up to 4).
template <typename WT>
HWY_INLINE void DenseRowsTyped(const WT* w, size_t row_stride, size_t k, size_t r0, size_t r1,
                               const float* x, int64_t m, float* y, size_t ldy, size_t prefetch) {
  for (int64_t i = 0; i < m; i += 4) {
    const float* xi = x + i * k;
    float* yi = y + i * ldy;
    switch (std::min<int64_t>(4, m - i)) {
      case 1:
        DenseRowsM<1>(w, row_stride, k, r0, r1, xi, k, yi, ldy, prefetch);
        break;
      case 2:
        DenseRowsM<2>(w, row_stride, k, r0, r1, xi, k, yi, ldy, prefetch);
        break;
      case 3:
        DenseRowsM<3>(w, row_stride, k, r0, r1, xi, k, yi, ldy, prefetch);
        break;
      default:
        DenseRowsM<4>(w, row_stride, k, r0, r1, xi, k, yi, ldy, prefetch);
        break;
    }
  }
}

void DenseRows(const void* w, DType dtype, int64_t row_stride, int64_t k, int64_t r0, int64_t r1,
               const float* x, int64_t m, float* y, int64_t ldy, int64_t prefetch) {
  const auto rs = static_cast<size_t>(row_stride);
  const auto kk = static_cast<size_t>(k);
  const auto b = static_cast<size_t>(r0);
  const auto e = static_cast<size_t>(r1);
  const auto ly = static_cast<size_t>(ldy);
  const auto pf = static_cast<size_t>(prefetch);
  switch (dtype) {
    case DType::BF16:
      return DenseRowsTyped(static_cast<const hwy::bfloat16_t*>(w), rs, kk, b, e, x, m, y, ly, pf);
    case DType::F16:
      return DenseRowsTyped(static_cast<const hwy::float16_t*>(w), rs, kk, b, e, x, m, y, ly, pf);
    default:
      return DenseRowsTyped(static_cast<const float*>(w), rs, kk, b, e, x, m, y, ly, pf);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
