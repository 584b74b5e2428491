// Per-target FP8 E4M3FN panel decoders: codes decoded by bit moves (exact, no table) and
// multiplied by an F32 scale per row (per-tensor, per-channel, 128x128 tile) or by the E8M0 block
// scale of MXFP8 - exactly decode(code) * scale as the reference computes it.
// Included once per target by qmatmul_fp8.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_FP8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_FP8_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_FP8_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_FP8_INL_H_
#endif

#include "backend/cpu/qmatmul_panel-inl.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kMx>
struct DecFp8 {
  static constexpr size_t kHeader = kMx ? 16 : 64;  // 16 E8M0 codes or 16 F32 scales
  static constexpr size_t kPairBytes = 32;
  struct State {
    PVF s;
  };
  HWY_INLINE State Prepare(const uint8_t* blk, size_t c) const {
    if constexpr (kMx) {
      return {DecodeE8m0(LoadU8(blk + c * kPN))};
    } else {
      return {hn::LoadU(PDF(), reinterpret_cast<const float*>(blk) + c * kPN)};
    }
  }
  HWY_INLINE void Pair(const State& st, const uint8_t* codes, size_t t, size_t c, PVF& w0,
                       PVF& w1) const {
    const uint8_t* p = codes + t * kPairBytes + c * kPN;
    w0 = hn::Mul(DecodeE4m3(LoadU8(p)), st.s);
    w1 = hn::Mul(DecodeE4m3(LoadU8(p + 16)), st.s);
  }
};

template <class F>
HWY_INLINE void WithFp8Decoder(const PanelMatrix& w, F&& f) {
  if (w.format == PanelFormat::kMxfp8) return f(DecFp8<true>{});
  return f(DecFp8<false>{});
}

void QGemvFp8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
              float* y, int64_t ldy) {
  WithFp8Decoder(w, [&](const auto& dec) { GemvPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QGemmFp8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
              float* y, int64_t ldy) {
  WithFp8Decoder(w, [&](const auto& dec) { GemmPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QDequantFp8(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  WithFp8Decoder(w, [&](const auto& dec) { DequantPanelT(dec, w, p, k0, k1, dst); });
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
