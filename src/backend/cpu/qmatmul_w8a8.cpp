// W8A8 INT8 x INT8 panel kernel: runtime dispatch of qmatmul_w8a8-inl.h, plus the AVX-512 VNNI
// kernel (vpdpbusd), compiled with its own target attribute because Highway 1.0.3's AVX3 target
// does not enable VNNI; it runs when the CPU has it (unless a test disables it).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_w8a8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_w8a8-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "backend/cpu/qmatmul_families.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

namespace qforge::cpu {

HWY_EXPORT(W8A8Panels);
HWY_EXPORT(W8A8Target);

namespace {

std::atomic<bool> g_disable_vnni{false};

#if HWY_ARCH_X86
// kP panels x kM x rows; xu: the rows' quads of x codes + 128 as unsigned bytes, k-major
// (quad q of row i at xu[q * kM + i], so one step's broadcasts are contiguous). sum(xu * w) =
// sum(x * w) + 128 * rowsum(w); vpdpbusd adds each lane's four u8 x s8 products without
// saturation.
template <int kP, int kM>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))) inline void vnni_block(
    const uint8_t* panel0, int64_t stride, size_t quads, const int32_t* xu, int32_t* out) {
  __m512i acc[kP][kM];
  for (int p = 0; p < kP; ++p) {
    for (int i = 0; i < kM; ++i) acc[p][i] = _mm512_setzero_si512();
  }
  for (size_t q = 0; q < quads; ++q) {
    __m512i w[kP];
    for (int p = 0; p < kP; ++p) w[p] = _mm512_loadu_si512(panel0 + p * stride + 128 + q * 64);
    for (int i = 0; i < kM; ++i) {
      const __m512i xb = _mm512_set1_epi32(xu[q * kM + i]);
      for (int p = 0; p < kP; ++p) acc[p][i] = _mm512_dpbusd_epi32(acc[p][i], xb, w[p]);
    }
  }
  for (int p = 0; p < kP; ++p) {
    const __m512i corr =
        _mm512_slli_epi32(_mm512_loadu_si512(panel0 + p * stride + 64), 7);  // 128 * row sums
    for (int i = 0; i < kM; ++i) {
      _mm512_storeu_si512(out + (i * kP + p) * 16, _mm512_sub_epi32(acc[p][i], corr));
    }
  }
}

template <int kP, int kM>
void vnni_rows(const PanelMatrix& w, int64_t p, int64_t stride, const int32_t* xu,
               const float* x_scale, int64_t i0, float* y, int64_t ldy) {
  alignas(64) int32_t sums[kP * kM * 16];
  const auto kp = static_cast<size_t>(w.kp);
  vnni_block<kP, kM>(w.data + p * stride, stride, kp / 4, xu + i0 * (kp / 4), sums);
  for (int i = 0; i < kM; ++i) {
    for (int q = 0; q < kP; ++q) {
      const uint8_t* panel = w.data + (p + q) * stride;
      const int64_t n = std::min<int64_t>(16, w.rows - (p + q) * 16);
      for (int64_t r = 0; r < n; ++r) {
        float ws;
        std::memcpy(&ws, panel + 4 * r, 4);
        y[(i0 + i) * ldy + (p + q) * 16 + r] =
            static_cast<float>(sums[(i * kP + q) * 16 + r]) * x_scale[i0 + i] * ws;
      }
    }
  }
}

constexpr int64_t kVnniRows = 12;

// The row blocks of m x rows: blocks of kVnniRows, then of 4, then single rows.
template <class F>
void for_vnni_blocks(int64_t m, F&& f) {
  int64_t i = 0;
  for (; i + kVnniRows <= m; i += kVnniRows) f(i, kVnniRows);
  for (; i + 4 <= m; i += 4) f(i, 4);
  for (; i < m; ++i) f(i, 1);
}

template <int kP>
void vnni_panels(const PanelMatrix& w, int64_t p, int64_t stride, const int32_t* xu,
                 const float* x_scale, int64_t m, float* y, int64_t ldy) {
  for_vnni_blocks(m, [&](int64_t i, int64_t rows) {
    if (rows == kVnniRows) return vnni_rows<kP, kVnniRows>(w, p, stride, xu, x_scale, i, y, ldy);
    if (rows == 4) return vnni_rows<kP, 4>(w, p, stride, xu, x_scale, i, y, ldy);
    vnni_rows<kP, 1>(w, p, stride, xu, x_scale, i, y, ldy);
  });
}

bool use_vnni() {
  if (g_disable_vnni.load(std::memory_order_relaxed)) return false;
  // Only under runtime dispatch to AVX-512 (tests pin other targets with ScopedSimdTarget).
  const int64_t chosen = HWY_DYNAMIC_DISPATCH(W8A8Target)();
  if (chosen != HWY_AVX3 && chosen != HWY_AVX3_DL) return false;
  static const bool has = __builtin_cpu_supports("avx512vnni") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}
#endif

}  // namespace

void qmatmul_w8a8_disable_vnni(bool disable) {
  g_disable_vnni.store(disable);
}

namespace detail {

void qmatmul_w8a8_panels(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const int8_t* xq,
                         const float* x_scale, int64_t m, float* y, int64_t ldy) {
#if HWY_ARCH_X86
  if (use_vnni()) {
    // Row block at i0 holds its quads k-major: xu[i0 * quads + q * rows + i].
    const int64_t quads = w.kp / 4;
    std::vector<int32_t> xu(static_cast<size_t>(m * quads));
    for_vnni_blocks(m, [&](int64_t i0, int64_t rows) {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t q = 0; q < quads; ++q) {
          uint32_t quad;
          std::memcpy(&quad, xq + (i0 + i) * w.kp + 4 * q, 4);
          xu[i0 * quads + q * rows + i] = static_cast<int32_t>(quad ^ 0x80808080u);
        }
      }
    });
    const int64_t stride = panel_bytes(w);
    int64_t p = p_begin;
    for (; p + 2 <= p_end; p += 2) vnni_panels<2>(w, p, stride, xu.data(), x_scale, m, y, ldy);
    for (; p < p_end; ++p) vnni_panels<1>(w, p, stride, xu.data(), x_scale, m, y, ldy);
    return;
  }
#endif
  HWY_DYNAMIC_DISPATCH(W8A8Panels)(w, p_begin, p_end, xq, x_scale, m, y, ldy);
}

}  // namespace detail
}  // namespace qforge::cpu
#endif  // HWY_ONCE
