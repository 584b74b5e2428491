// Per-target Highway GEMV of matmul.h. One x row (decode): each weight row is read front to
// back with four column accumulators, two row streams per thread. Two to four x rows: kR weight
// rows times kM x rows per step, each weight vector loaded (and widened from F16/BF16) once
// and used kM times.
// Included once per target by matmul.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_MATMUL_INL_H_
#undef QFORGE_BACKEND_CPU_MATMUL_INL_H_
#else
#define QFORGE_BACKEND_CPU_MATMUL_INL_H_
#endif

#include <cstring>

#include "backend/cpu/matmul.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// y[i * ldy + r] = dot(w row r, x row i) for kR consecutive rows starting at w0 and kM x rows.
template <int kR, int kM, typename WT>
HWY_INLINE void GemvTile(const WT* HWY_RESTRICT w0, size_t row_stride, size_t k,
                         const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t ldy) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kR][kM];
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kM; ++i) acc[r][i] = hn::Zero(df);
  }
  size_t j = 0;
  for (; j + N <= k; j += N) {
    VF xv[kM];
    for (int i = 0; i < kM; ++i) xv[i] = hn::LoadU(df, x + i * k + j);
    for (int r = 0; r < kR; ++r) {
      const VF wv = LoadWeights(df, w0 + r * row_stride + j);
      for (int i = 0; i < kM; ++i) acc[r][i] = hn::MulAdd(wv, xv[i], acc[r][i]);
    }
  }
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kM; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      for (size_t t = j; t < k; ++t) sum += WeightToFloat(w0 + r * row_stride + t) * x[i * k + t];
      y[i * ldy + r] = sum;
    }
  }
}

constexpr size_t kPrefetchBytes = 2048;

// One weight row against one x row, four column accumulators, the row read front to back.
template <typename WT>
HWY_INLINE float DotRow1(const WT* HWY_RESTRICT w, const float* HWY_RESTRICT x, size_t k) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t j = 0;
  for (; j + 4 * N <= k; j += 4 * N) {
    // A software prefetch 2 KB ahead (it also crosses into the next 4 KB page, where the
    // hardware prefetchers stop): measured +5-13% (docs/PERFORMANCE.md). A hint past the end of
    // the matrix is harmless.
    __builtin_prefetch(reinterpret_cast<const char*>(w + j) + kPrefetchBytes);
    a0 = hn::MulAdd(LoadWeights(df, w + j), hn::LoadU(df, x + j), a0);
    a1 = hn::MulAdd(LoadWeights(df, w + j + N), hn::LoadU(df, x + j + N), a1);
    a2 = hn::MulAdd(LoadWeights(df, w + j + 2 * N), hn::LoadU(df, x + j + 2 * N), a2);
    a3 = hn::MulAdd(LoadWeights(df, w + j + 3 * N), hn::LoadU(df, x + j + 3 * N), a3);
  }
  for (; j + N <= k; j += N) a0 = hn::MulAdd(LoadWeights(df, w + j), hn::LoadU(df, x + j), a0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; j < k; ++j) sum += WeightToFloat(w + j) * x[j];
  return sum;
}

template <int kM, typename WT>
HWY_INLINE void GemvRowsM(const WT* w, size_t row_stride, size_t k, size_t row_begin,
                          size_t row_end, const float* x, float* y, size_t ldy) {
  if constexpr (kM == 1) {
    // Decode is memory-bound. A core pulls more from DRAM when it feeds two sequential streams:
    // rows of the first and of the second half of this chunk alternate (measured: 75% instead
    // of 70% of the read bound when the VM's bandwidth is high; reading four rows in lockstep,
    // column block by column block, was slower than one row at a time).
    const size_t n = row_end - row_begin;
    const size_t half = n / 2;
    for (size_t i = 0; i < half; ++i) {
      const size_t ra = row_begin + i;
      const size_t rb = row_begin + half + i;
      y[ra] = DotRow1(w + ra * row_stride, x, k);
      y[rb] = DotRow1(w + rb * row_stride, x, k);
    }
    for (size_t r = row_begin + 2 * half; r < row_end; ++r) {
      y[r] = DotRow1(w + r * row_stride, x, k);
    }
    return;
  }
  // Two to four x rows: kR weight rows x kM x rows per step, each weight vector widened once
  // and used kM times (kR * kM accumulators plus kM x vectors in registers).
  // 16 accumulators + 8 operands need AVX-512's 32 vector registers; AVX2 has 16.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  constexpr int kR = kM >= 3 ? 4 : 2;
#else
  constexpr int kR = 2;
#endif
  size_t r = row_begin;
  for (; r + kR <= row_end; r += kR) {
    GemvTile<kR, kM>(w + r * row_stride, row_stride, k, x, y + r, ldy);
  }
  for (; r < row_end; ++r) GemvTile<1, kM>(w + r * row_stride, row_stride, k, x, y + r, ldy);
}

template <typename WT>
HWY_INLINE void GemvRowsTyped(const WT* w, size_t row_stride, size_t k, size_t row_begin,
                              size_t row_end, const float* x, int64_t m, float* y, size_t ldy) {
  switch (m) {
    case 1:
      return GemvRowsM<1>(w, row_stride, k, row_begin, row_end, x, y, ldy);
    case 2:
      return GemvRowsM<2>(w, row_stride, k, row_begin, row_end, x, y, ldy);
    case 3:
      return GemvRowsM<3>(w, row_stride, k, row_begin, row_end, x, y, ldy);
    default:
      return GemvRowsM<4>(w, row_stride, k, row_begin, row_end, x, y, ldy);
  }
}

void GemvRows(const void* w, DType dtype, int64_t row_stride, int64_t k, int64_t row_begin,
              int64_t row_end, const float* x, int64_t m, float* y, int64_t ldy) {
  const auto rs = static_cast<size_t>(row_stride);
  const auto kk = static_cast<size_t>(k);
  const auto b = static_cast<size_t>(row_begin);
  const auto e = static_cast<size_t>(row_end);
  const auto ly = static_cast<size_t>(ldy);
  switch (dtype) {
    case DType::BF16:
      return GemvRowsTyped(static_cast<const hwy::bfloat16_t*>(w), rs, kk, b, e, x, m, y, ly);
    case DType::F16:
      return GemvRowsTyped(static_cast<const hwy::float16_t*>(w), rs, kk, b, e, x, m, y, ly);
    default:
      return GemvRowsTyped(static_cast<const float*>(w), rs, kk, b, e, x, m, y, ly);
  }
}

// dst: [n_rows, k] = rows of w widened to F32.
void RowsToF32(const void* w, DType dtype, int64_t row_stride, int64_t k, int64_t row_begin,
               int64_t n_rows, float* HWY_RESTRICT dst) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const auto kk = static_cast<size_t>(k);
  for (int64_t r = 0; r < n_rows; ++r) {
    float* out = dst + r * k;
    const int64_t offset = (row_begin + r) * row_stride;
    if (dtype == DType::F32) {
      std::memcpy(out, static_cast<const float*>(w) + offset, kk * sizeof(float));
      continue;
    }
    size_t j = 0;
    if (dtype == DType::BF16) {
      const auto* src = static_cast<const hwy::bfloat16_t*>(w) + offset;
      for (; j + N <= kk; j += N) hn::StoreU(LoadWeights(df, src + j), df, out + j);
      for (; j < kk; ++j) out[j] = WeightToFloat(src + j);
    } else {
      const auto* src = static_cast<const hwy::float16_t*>(w) + offset;
      for (; j + N <= kk; j += N) hn::StoreU(LoadWeights(df, src + j), df, out + j);
      for (; j < kk; ++j) out[j] = WeightToFloat(src + j);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
