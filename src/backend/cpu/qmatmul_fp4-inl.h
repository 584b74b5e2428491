// Per-target NVFP4 / MXFP4 panel decoders: E2M1 nibbles through a 16-entry table on AVX-512
// (one permute) or bit moves elsewhere, times the block scale (E4M3FN x tensor scale for NVFP4,
// E8M0 for MXFP4) - exactly e2m1(code) * scale as the reference computes it.
// Included once per target by qmatmul_fp4.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_FP4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_FP4_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_FP4_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_FP4_INL_H_
#endif

#include "backend/cpu/qmatmul_panel-inl.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_ALIGN constexpr float kE2m1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,
                                             4.0f,  6.0f,  -0.0f, -0.5f, -1.0f, -1.5f,
                                             -2.0f, -3.0f, -4.0f, -6.0f};

template <bool kNv>
struct DecFp4 {
  static constexpr size_t kHeader = 16;  // 16 E4M3FN or E8M0 block scales
  static constexpr size_t kPairBytes = 16;
  struct State {
    PVF s;
  };
  float tensor_scale = 0.0f;
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
  Lut16 lut{kE2m1Values};
#endif
  HWY_INLINE State Prepare(const uint8_t* blk, size_t c) const {
    const PVU e = LoadU8(blk + c * kPN);
    if constexpr (kNv) {
      return {hn::Mul(DecodeE4m3(e), hn::Set(PDF(), tensor_scale))};
    } else {
      return {DecodeE8m0(e)};
    }
  }
  // E2M1 s.ee.m: the magnitude bits moved to float bits 24..22 are the value times 2^-126.
  HWY_INLINE PVF Value(PVU u) const {
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
    return lut(u);
#else
    const PDF df;
    const PDU du;
    const PVF mag = hn::Mul(hn::BitCast(df, hn::ShiftLeft<22>(hn::And(u, hn::Set(du, 7u)))),
                            hn::Set(df, 0x1.0p126f));
    return hn::Or(mag, hn::BitCast(df, hn::ShiftLeft<28>(hn::And(u, hn::Set(du, 8u)))));
#endif
  }
  HWY_INLINE void Pair(const State& st, const uint8_t* codes, size_t t, size_t c, PVF& w0,
                       PVF& w1) const {
    const PVU u = LoadU8(codes + t * kPairBytes + c * kPN);
    w0 = hn::Mul(Value(hn::And(u, hn::Set(PDU(), 0xFu))), st.s);
    w1 = hn::Mul(Value(hn::ShiftRight<4>(u)), st.s);
  }
};

template <class F>
HWY_INLINE void WithFp4Decoder(const PanelMatrix& w, F&& f) {
  if (w.format == PanelFormat::kNvfp4) {
    DecFp4<true> dec;
    dec.tensor_scale = w.tensor_scale;
    return f(dec);
  }
  return f(DecFp4<false>{});
}

void QGemvFp4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
              float* y, int64_t ldy) {
  WithFp4Decoder(w, [&](const auto& dec) { GemvPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QGemmFp4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
              float* y, int64_t ldy) {
  WithFp4Decoder(w, [&](const auto& dec) { GemmPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QDequantFp4(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  WithFp4Decoder(w, [&](const auto& dec) { DequantPanelT(dec, w, p, k0, k1, dst); });
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
