// Per-target W4A16 panel decoders: one 16-byte column pair widens to u32 lanes whose low and
// high nibbles are the two columns; INT4 (offset-binary c + 8) through a 16-entry table on
// AVX-512 (one permute) or convert-and-subtract elsewhere, UINT4 as (u - zero); times the F16 or
// BF16 group scale. Every value equals the reference's float(code - zero) * scale exactly.
// Included once per target by qmatmul_int4.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_QMATMUL_INT4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_INT4_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_INT4_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_INT4_INL_H_
#endif

#include "backend/cpu/qmatmul_panel-inl.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <ScaleType kST>
HWY_INLINE PVF LoadScales16(const uint8_t* p) {
  const PDF df;
  if constexpr (kST == ScaleType::F16) {
    return PromoteF16(df, reinterpret_cast<const hwy::float16_t*>(p));
  } else {
    const hn::Rebind<uint16_t, PDF> d16;
    const PVU u = hn::PromoteTo(PDU(), hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p)));
    return hn::BitCast(df, hn::ShiftLeft<16>(u));
  }
}

HWY_ALIGN constexpr float kInt4Values[16] = {-8, -7, -6, -5, -4, -3, -2, -1,
                                             0,  1,  2,  3,  4,  5,  6,  7};

template <bool kZp, ScaleType kST>
struct DecInt4 {
  static constexpr size_t kHeader = kZp ? 48 : 32;  // 16 scales (+ 16 zero points)
  static constexpr size_t kPairBytes = 16;
  struct State {
    PVF s;
    PVF z;
  };
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
  Lut16 lut{kInt4Values};
#endif
  HWY_INLINE State Prepare(const uint8_t* blk, size_t c) const {
    State st;
    st.s = LoadScales16<kST>(blk + 2 * c * kPN);
    if constexpr (kZp) {
      st.z = hn::ConvertTo(PDF(), hn::BitCast(PDI(), LoadU8(blk + 32 + c * kPN)));
    } else {
      st.z = hn::Set(PDF(), 8.0f);
    }
    return st;
  }
  HWY_INLINE PVF Value(const State& st, PVU u) const {
    const PDF df;
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
    if constexpr (!kZp) return hn::Mul(lut(u), st.s);
#endif
    return hn::Mul(hn::Sub(hn::ConvertTo(df, hn::BitCast(PDI(), u)), st.z), st.s);
  }
  HWY_INLINE void Pair(const State& st, const uint8_t* codes, size_t t, size_t c, PVF& w0,
                       PVF& w1) const {
    const PVU u = LoadU8(codes + t * kPairBytes + c * kPN);
    w0 = Value(st, hn::And(u, hn::Set(PDU(), 0xFu)));
    w1 = Value(st, hn::ShiftRight<4>(u));
  }
};

template <class F>
HWY_INLINE void WithInt4Decoder(const PanelMatrix& w, F&& f) {
  const bool zp = w.format == PanelFormat::kW4A16Zp;
  if (w.scale_type == ScaleType::F16) {
    if (zp) return f(DecInt4<true, ScaleType::F16>{});
    return f(DecInt4<false, ScaleType::F16>{});
  }
  if (zp) return f(DecInt4<true, ScaleType::BF16>{});
  return f(DecInt4<false, ScaleType::BF16>{});
}

void QGemvInt4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  WithInt4Decoder(w, [&](const auto& dec) { GemvPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QGemmInt4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  WithInt4Decoder(w, [&](const auto& dec) { GemmPanelsT(dec, w, p_begin, p_end, x, m, y, ldy); });
}
void QDequantInt4(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  WithInt4Decoder(w, [&](const auto& dec) { DequantPanelT(dec, w, p, k0, k1, dst); });
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
