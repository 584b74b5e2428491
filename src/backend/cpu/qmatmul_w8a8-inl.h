// Per-target W8A8 panel kernel: INT8 weights (quads of 4 columns per row, qmatmul.h) times INT8
// activation codes with exact int32 sums. AVX2 and AVX-512 without VNNI use pmaddubsw on
// (|x|, w * sign(x)) - pairs of products stay within int16 because codes are in [-127, 127] -
// then pmaddwd into int32; AVX-512 VNNI (vpdpbusd, qmatmul_w8a8.cpp) takes x + 128 unsigned and
// subtracts 128 * the stored row sums; other targets widen bytes to int32 lanes. The result
// does not depend on the path: integer sums are exact.
// Included once per target by qmatmul_w8a8.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_W8A8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_W8A8_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_W8A8_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_W8A8_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/qmatmul.h"
#include "hwy/highway.h"

#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3)
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[i * ldy + r] for the panel's valid rows: float(sum) * x_scale[i] * w_scale[r].
HWY_INLINE void W8A8Store(const int32_t* sums, const uint8_t* panel, int64_t p, int64_t rows,
                          const float* x_scale, int64_t i, float* y, int64_t ldy) {
  const int64_t n = std::min<int64_t>(16, rows - p * 16);
  for (int64_t r = 0; r < n; ++r) {
    float ws;
    std::memcpy(&ws, panel + 4 * r, 4);
    y[i * ldy + p * 16 + r] = static_cast<float>(sums[r]) * x_scale[i] * ws;
  }
}

HWY_INLINE int32_t LoadQuad(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3
// kM x rows against one panel (one zmm of 16 rows x 4 columns per quad).
template <int kM>
HWY_INLINE void W8A8PanelRows(const uint8_t* panel, size_t quads, const int8_t* x, size_t kp,
                              int32_t* out) {
  __m512i acc[kM];
  for (int i = 0; i < kM; ++i) acc[i] = _mm512_setzero_si512();
  const __m512i ones = _mm512_set1_epi16(1);
  const __m512i zero = _mm512_setzero_si512();
  const uint8_t* codes = panel + 128;
  for (size_t q = 0; q < quads; ++q) {
    const __m512i w = _mm512_loadu_si512(codes + q * 64);
    for (int i = 0; i < kM; ++i) {
      const __m512i xb = _mm512_set1_epi32(LoadQuad(x + i * kp + 4 * q));
      const __mmask64 neg = _mm512_movepi8_mask(xb);
      const __m512i ws = _mm512_mask_sub_epi8(w, neg, zero, w);
      const __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(xb), ws);
      acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(p16, ones));
    }
  }
  for (int i = 0; i < kM; ++i) _mm512_storeu_si512(out + 16 * i, acc[i]);
}
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
template <int kM>
HWY_INLINE void W8A8PanelRows(const uint8_t* panel, size_t quads, const int8_t* x, size_t kp,
                              int32_t* out) {
  __m256i acc[2][kM];
  for (int i = 0; i < kM; ++i) acc[0][i] = acc[1][i] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  const uint8_t* codes = panel + 128;
  for (size_t q = 0; q < quads; ++q) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + q * 64));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + q * 64 + 32));
    for (int i = 0; i < kM; ++i) {
      const __m256i xb = _mm256_set1_epi32(LoadQuad(x + i * kp + 4 * q));
      const __m256i ax = _mm256_abs_epi8(xb);
      const __m256i p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xb));
      const __m256i p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xb));
      acc[0][i] = _mm256_add_epi32(acc[0][i], _mm256_madd_epi16(p0, ones));
      acc[1][i] = _mm256_add_epi32(acc[1][i], _mm256_madd_epi16(p1, ones));
    }
  }
  for (int i = 0; i < kM; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * i), acc[0][i]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * i + 8), acc[1][i]);
  }
}
#else
// Portable: bytes of each int32 lane (row r, 4 columns) sign-extended by shifts.
template <int kM>
HWY_INLINE void W8A8PanelRows(const uint8_t* panel, size_t quads, const int8_t* x, size_t kp,
                              int32_t* out) {
  const hn::ScalableTag<int32_t> di;
  constexpr size_t N = hn::MaxLanes(di);
  constexpr size_t V = 16 / N;
  using VI = hn::Vec<decltype(di)>;
  VI acc[V][kM];
  for (size_t c = 0; c < V; ++c) {
    for (int i = 0; i < kM; ++i) acc[c][i] = hn::Zero(di);
  }
  const uint8_t* codes = panel + 128;
  for (size_t q = 0; q < quads; ++q) {
    for (size_t c = 0; c < V; ++c) {
      int32_t lanes[N];
      std::memcpy(lanes, codes + q * 64 + c * N * 4, sizeof(lanes));
      const VI w = hn::LoadU(di, lanes);
      const VI w0 = hn::ShiftRight<24>(hn::ShiftLeft<24>(w));
      const VI w1 = hn::ShiftRight<24>(hn::ShiftLeft<16>(w));
      const VI w2 = hn::ShiftRight<24>(hn::ShiftLeft<8>(w));
      const VI w3 = hn::ShiftRight<24>(w);
      for (int i = 0; i < kM; ++i) {
        const int8_t* xq = x + i * kp + 4 * q;
        VI a = acc[c][i];
        a = hn::Add(a, hn::Mul(w0, hn::Set(di, xq[0])));
        a = hn::Add(a, hn::Mul(w1, hn::Set(di, xq[1])));
        a = hn::Add(a, hn::Mul(w2, hn::Set(di, xq[2])));
        a = hn::Add(a, hn::Mul(w3, hn::Set(di, xq[3])));
        acc[c][i] = a;
      }
    }
  }
  for (int i = 0; i < kM; ++i) {
    for (size_t c = 0; c < V; ++c) hn::StoreU(acc[c][i], di, out + 16 * i + c * N);
  }
}
#endif

constexpr int kW8A8Rows = 4;

int64_t W8A8Target() {
  return HWY_TARGET;
}

// Panels [p_begin, p_end) x all m rows of xq: [m, kp].
void W8A8Panels(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const int8_t* xq,
                const float* x_scale, int64_t m, float* y, int64_t ldy) {
  const int64_t stride = panel_bytes(w);
  const auto kp = static_cast<size_t>(w.kp);
  const size_t quads = kp / 4;
  HWY_ALIGN int32_t sums[16 * kW8A8Rows];
  for (int64_t p = p_begin; p < p_end; ++p) {
    const uint8_t* panel = w.data + p * stride;
    int64_t i = 0;
    for (; i + kW8A8Rows <= m; i += kW8A8Rows) {
      W8A8PanelRows<kW8A8Rows>(panel, quads, xq + i * kp, kp, sums);
      for (int j = 0; j < kW8A8Rows; ++j) {
        W8A8Store(sums + 16 * j, panel, p, w.rows, x_scale, i + j, y, ldy);
      }
    }
    for (; i < m; ++i) {
      W8A8PanelRows<1>(panel, quads, xq + i * kp, kp, sums);
      W8A8Store(sums, panel, p, w.rows, x_scale, i, y, ldy);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
