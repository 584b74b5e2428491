// Widening loads shared by the per-target kernels: F16/BF16/F32 weights to F32 vectors, exact
// for every input. HWY_INLINE helpers only (no exported symbols), so several kernel families can
// include it. Included per target from other -inl.h files; no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_WIDEN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_WIDEN_INL_H_
#undef QFORGE_BACKEND_CPU_WIDEN_INL_H_
#else
#define QFORGE_BACKEND_CPU_WIDEN_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "qforge/formats/scalar.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// N F16 values widened to F32, exactly, Inf and NaN included. AVX2 and better convert in hardware
// (F16C); Highway 1.0.3's emulation on older targets turns Inf into 65536, so there we rebias
// the bits ourselves: (h & 0x7FFF) << 13 read as a float, times 2^112, is exact for every finite
// F16 (normals and subnormals alike); the all-ones exponent is patched to Inf/NaN afterwards.
template <class DF>
HWY_INLINE hn::Vec<DF> PromoteF16(DF df, const hwy::float16_t* HWY_RESTRICT p) {
#if HWY_TARGET <= HWY_AVX2
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
#else
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto em = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  hn::Vec<DF> mag = hn::Mul(hn::BitCast(df, hn::ShiftLeft<13>(em)), hn::Set(df, 0x1.0p112f));
  const auto special =
      hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(hn::And(em, hn::Set(du, 0x3FFu))));
  mag = hn::IfThenElse(hn::RebindMask(df, hn::BitCast(di, em) > hn::Set(di, 0x7BFF)),
                       hn::BitCast(df, special), mag);
  return hn::Or(mag, hn::BitCast(df, sign));
#endif
}

// One vector of weights widened to F32.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const float* p) {
  return hn::LoadU(df, p);
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::float16_t* p) {
  return PromoteF16(df, p);
}

HWY_INLINE float WeightToFloat(const float* p) {
  return *p;
}
HWY_INLINE float WeightToFloat(const hwy::bfloat16_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bf16_to_float(bits);
}
HWY_INLINE float WeightToFloat(const hwy::float16_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_to_float(bits);
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
