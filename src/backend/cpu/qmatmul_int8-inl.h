// Per-target W8A16 panel decoder: INT8 codes widened to F32 and multiplied by the row scale,
// exactly code * scale as the reference dequantization computes it.
// Included once per target by qmatmul_int8.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_INT8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_INT8_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_INT8_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_INT8_INL_H_
#endif

#include "backend/cpu/qmatmul_panel-inl.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

struct DecInt8 {
  static constexpr size_t kHeader = 64;     // 16 F32 row scales
  static constexpr size_t kPairBytes = 32;  // two columns of 16 int8 codes
  struct State {
    PVF s;
  };
  HWY_INLINE State Prepare(const uint8_t* blk, size_t c) const {
    return {hn::LoadU(PDF(), reinterpret_cast<const float*>(blk) + c * kPN)};
  }
  HWY_INLINE void Pair(const State& st, const uint8_t* codes, size_t t, size_t c, PVF& w0,
                       PVF& w1) const {
    const PDF df;
    const uint8_t* p = codes + t * kPairBytes + c * kPN;
    w0 = hn::Mul(hn::ConvertTo(df, LoadI8(p)), st.s);
    w1 = hn::Mul(hn::ConvertTo(df, LoadI8(p + 16)), st.s);
  }
};

template <class F>
HWY_INLINE void WithInt8Decoder(const PanelMatrix&, F&& f) {
  f(DecInt8{});
}

void QGemvInt8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  WithInt8Decoder(w, [&](const auto& dec) { GemvPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QGemmInt8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  WithInt8Decoder(w, [&](const auto& dec) { GemmPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QDequantInt8(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  WithInt8Decoder(w, [&](const auto& dec) { DequantPanelT(dec, w, p, k0, k1, dst); });
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
