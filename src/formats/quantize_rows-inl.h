// Per-target Highway kernels (included per target by quantize_rows.cpp): shared building blocks
// (amax, exact mini-float encoder, nibble packing, group maxima) and the FP8 and INT8 rows, each
// replaying the scalar recipe of quantize_rows.h op for op so it equals quantize_ref.cpp exactly.

#if defined(QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#undef QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#else
#define QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#endif

#include <algorithm>
#include <cstring>

#include "formats/quantize_rows.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace qi = quantize_internal;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DF>;  // one byte per float lane
using DI8 = hn::Rebind<int8_t, DF>;   // one int8 per float lane
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;

// Lanes of the widest vector on any target, for stack buffers that hold one vector.
constexpr size_t kMaxFloatLanes = HWY_MAX_BYTES / sizeof(float);

// Loads count < Lanes(df) floats and zero-fills the remaining lanes.
HWY_INLINE VF LoadTail(const float* x, size_t count) {
  const DF df;
  HWY_ALIGN float buf[kMaxFloatLanes] = {};
  std::memcpy(buf, x, count * sizeof(float));
  return hn::Load(df, buf);
}

// Max over the bit patterns of |x| (see qi::abs_bits); n >= 0.
HWY_INLINE uint32_t AmaxBitsImpl(const float* HWY_RESTRICT x, size_t n) {
  const DF df;
  const DU du;
  const size_t N = hn::Lanes(df);
  const VU mask = hn::Set(du, qi::kAbsMask);
  // Four independent accumulators hide the latency of Max.
  VU m0 = hn::Zero(du), m1 = hn::Zero(du), m2 = hn::Zero(du), m3 = hn::Zero(du);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    m0 = hn::Max(m0, hn::And(hn::BitCast(du, hn::LoadU(df, x + i)), mask));
    m1 = hn::Max(m1, hn::And(hn::BitCast(du, hn::LoadU(df, x + i + N)), mask));
    m2 = hn::Max(m2, hn::And(hn::BitCast(du, hn::LoadU(df, x + i + 2 * N)), mask));
    m3 = hn::Max(m3, hn::And(hn::BitCast(du, hn::LoadU(df, x + i + 3 * N)), mask));
  }
  for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::And(hn::BitCast(du, hn::LoadU(df, x + i)), mask));
  if (i < n) m1 = hn::Max(m1, hn::And(hn::BitCast(du, LoadTail(x + i, n - i)), mask));
  m0 = hn::Max(hn::Max(m0, m1), hn::Max(m2, m3));
  return hn::GetLane(hn::MaxOfLanes(du, m0));
}

uint32_t AmaxBits(const float* HWY_RESTRICT x, int64_t n) {
  return AmaxBitsImpl(x, static_cast<size_t>(n));
}

// amax_from_bits for a vector of max-abs bit patterns.
HWY_INLINE VF AmaxFromBits(VU bits) {
  const DF df;
  const DI di;
  const auto non_finite = hn::Gt(hn::BitCast(di, bits), hn::Set(di, 0x7F7FFFFF));
  return hn::BitCast(df, hn::IfThenZeroElse(hn::RebindMask(DU(), non_finite), bits));
}

// ---- Mini-float encoder: the FP8 kinds, E2M1 and the F16/BF16 group scales share one
// bit-exact round-to-nearest-even path.

constexpr float Pow2(int e) {
  float r = 1.0f;
  for (; e > 0; --e) r *= 2.0f;
  for (; e < 0; ++e) r *= 0.5f;
  return r;
}

// kMant mantissa bits, exponent bias kBias, magnitude codes clamped to kMaxMag (the largest
// finite code for saturating encoders, the Inf code for F16/BF16, which overflow to Inf), sign
// at bit kSignBit; kFnuz formats have no -0 (negative values that round to zero encode as 0).
template <int kMantBits, int kExpBias, uint32_t kMaxMagCode, int kSignBitPos, bool kFnuz>
struct MiniFloat {
  static constexpr int kMant = kMantBits;
  static constexpr int kBias = kExpBias;
  static constexpr uint32_t kMaxMag = kMaxMagCode;
  static constexpr int kSignBit = kSignBitPos;
  static constexpr bool kNoNegativeZero = kFnuz;
  static constexpr int kShift = 23 - kMant;
  // A format with float's exponent range (BF16) has float's subnormals: no separate path.
  static constexpr bool kHasOwnSubnormals = kBias != 127;
  static constexpr float kMinNormal = Pow2(1 - kBias);
  static constexpr float kInvMinSubnormal = kHasOwnSubnormals ? Pow2(kBias - 1 + kMant) : 1.0f;
};
using E4M3FN = MiniFloat<3, 7, 0x7E, 7, false>;     // satfinite
using E4M3FNUZ = MiniFloat<3, 8, 0x7F, 7, true>;    // satfinite
using E5M2 = MiniFloat<2, 15, 0x7B, 7, false>;      // satfinite
using E5M2FNUZ = MiniFloat<2, 16, 0x7F, 7, true>;   // satfinite
using E2M1 = MiniFloat<1, 1, 0x7, 3, false>;        // always saturates
using F16 = MiniFloat<10, 15, 0x7C00, 15, false>;   // overflow -> Inf (as float_to_f16)
using BF16 = MiniFloat<7, 127, 0x7F80, 15, false>;  // overflow -> Inf (as float_to_bf16)

// 2^23 and 1.5 * 2^23: adding them to a float of small magnitude lands the sum where float
// spacing is exactly 1, so the FPU's own round-to-nearest-even produces the integer, which is
// then read from the low mantissa bits. Exact for |v| < 2^22 on every target, unlike
// NearestInt, whose EMU128 emulation misrounds values just below 0.5.
constexpr float kRoundMagic = 8388608.0f;  // 2^23, for v in [0, 2^23)
constexpr uint32_t kRoundMagicBits = 0x4B000000u;
constexpr float kSignedRoundMagic = 12582912.0f;  // 1.5 * 2^23, for |v| < 2^22
constexpr uint32_t kSignedRoundMagicBits = 0x4B400000u;

// rne(v) for |v| < 2^22, as two's complement bits in u32 lanes.
HWY_INLINE VU RoundToIntBits(VF v) {
  const DF df;
  const DU du;
  return hn::Sub(hn::BitCast(du, hn::Add(v, hn::Set(df, kSignedRoundMagic))),
                 hn::Set(du, kSignedRoundMagicBits));
}

// encode(v) with round-to-nearest-even; returns the code in the low bits of u32 lanes. v may be
// any finite value or +-Inf (NaN gives an unspecified code, never UB).
template <class Fmt>
HWY_INLINE VU EncodeMiniFloat(VF v) {
  const DF df;
  const DU du;
  const VF a = hn::Abs(v);
  const VU bits = hn::BitCast(du, a);
  // Normal range: round the 23-bit mantissa to kMant bits (nearest-even) with an integer add;
  // a carry out of the mantissa bumps the exponent, exactly as rounding should. Then rebias.
  const VU lsb = hn::And(hn::ShiftRight<Fmt::kShift>(bits), hn::Set(du, 1u));
  const VU rounded = hn::Add(bits, hn::Add(hn::Set(du, (1u << (Fmt::kShift - 1)) - 1u), lsb));
  VU mag = hn::Sub(hn::ShiftRight<Fmt::kShift>(rounded),
                   hn::Set(du, static_cast<uint32_t>(127 - Fmt::kBias) << Fmt::kMant));
  if constexpr (Fmt::kHasOwnSubnormals) {
    // Subnormal range: code = rne(a / min_subnormal). The scaling by a power of two is exact,
    // so it does not matter that GCC fuses this multiply with the add below (it ignores
    // -std=c++20's implied -ffp-contract=off inside Highway's target pragmas).
    const VF scaled = hn::Mul(a, hn::Set(df, Fmt::kInvMinSubnormal));
    const VU sub = hn::Sub(hn::BitCast(du, hn::Add(scaled, hn::Set(df, kRoundMagic))),
                           hn::Set(du, kRoundMagicBits));
    mag = hn::IfThenElse(hn::RebindMask(du, hn::Lt(a, hn::Set(df, Fmt::kMinNormal))), sub, mag);
  }
  // Everything that rounds past the clamp (and +-Inf) becomes the clamp code.
  mag = hn::Min(mag, hn::Set(du, Fmt::kMaxMag));
  VU sign = hn::ShiftLeft<Fmt::kSignBit>(hn::ShiftRight<31>(hn::BitCast(du, v)));
  if (Fmt::kNoNegativeZero) sign = hn::IfThenZeroElse(hn::Eq(mag, hn::Zero(du)), sign);
  return hn::Or(mag, sign);
}

// Exact F16 / BF16 bits (low 16 bits of u32 lanes) -> float, equal to f16_to_float /
// bf16_to_float for the non-negative, non-NaN codes group scales take.
HWY_INLINE VF DecodeF16(VU code) {
  const DF df;
  const DU du;
  const DI di;
  const VU mag = hn::And(code, hn::Set(du, 0x7FFFu));
  const VU exp = hn::ShiftRight<10>(mag);
  // Normal: rebias the exponent from 15 to 127. Inf (exponent 31) rebias to 255 instead.
  VU bits = hn::Add(hn::ShiftLeft<13>(mag), hn::Set(du, 112u << 23));
  bits = hn::IfThenElse(hn::Eq(exp, hn::Set(du, 31u)), hn::Set(du, 0x7F800000u), bits);
  // Subnormal: mantissa * 2^-24, exact.
  const VF sub = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mag)), hn::Set(df, Pow2(-24)));
  return hn::IfThenElse(hn::RebindMask(df, hn::Eq(exp, hn::Zero(du))), sub, hn::BitCast(df, bits));
}
HWY_INLINE VF DecodeBf16(VU code) {
  return hn::BitCast(DF(), hn::ShiftLeft<16>(code));
}

// ---- Nibble packing (low nibble = even element).

#if HWY_TARGET == HWY_SCALAR
// One-lane vectors cannot hold a nibble pair: on HWY_SCALAR the 4-bit kernels take the
// reference path (GroupTiles / BlockTiles are false), so these are never called.
HWY_INLINE void PackNibbles(VU, uint8_t*) {}
HWY_INLINE void PackNibbles2(VU, VU, uint8_t*) {}
HWY_INLINE VU UnpackNibbles(const uint8_t*) {
  return hn::Zero(DU());
}
#else
using DU64 = hn::Repartition<uint64_t, DF>;  // pairs of float lanes
using DU8H = hn::Rebind<uint8_t, DU64>;      // one byte per lane pair (packed nibbles)
using DU32H = hn::Rebind<uint32_t, DU64>;    // half a vector of u32

// codes: N lanes of values 0..15 -> N/2 bytes at out.
HWY_INLINE void PackNibbles(VU codes, uint8_t* HWY_RESTRICT out) {
  const DU64 d64;
  const DU8H d8h;
  // Lane pair j as one u64 holds code 2j in bits 0..3 and code 2j+1 in bits 32..35; shifting
  // the pair right by 28 moves code 2j+1 to bits 4..7, and truncation keeps the low byte.
  const auto w = hn::BitCast(d64, codes);
  hn::StoreU(hn::TruncateTo(d8h, hn::Or(w, hn::ShiftRight<28>(w))), d8h, out);
}

// Two vectors of codes (elements 0..N-1 in a, N..2N-1 in b) -> N bytes at out. Half the
// shuffles of two PackNibbles: one even/odd split and one narrowing per N bytes.
HWY_INLINE void PackNibbles2(VU a, VU b, uint8_t* HWY_RESTRICT out) {
  const DU du;
  const DU8 d8;
  const VU bytes = hn::Or(hn::ConcatEven(du, b, a), hn::ShiftLeft<4>(hn::ConcatOdd(du, b, a)));
  hn::StoreU(hn::TruncateTo(d8, bytes), d8, out);
}

// N/2 bytes at in -> N lanes of 4-bit codes in element order.
HWY_INLINE VU UnpackNibbles(const uint8_t* HWY_RESTRICT in) {
  const DU du;
  const DU64 d64;
  const DU8H d8h;
  const DU32H d32h;
  const auto b = hn::PromoteTo(d64, hn::PromoteTo(d32h, hn::LoadU(d8h, in)));
  // Low nibble stays in bits 0..3 (lane 2j), high nibble moves to bits 32..35 (lane 2j+1).
  const auto w = hn::Or(hn::And(b, hn::Set(d64, uint64_t{0xF})),
                        hn::ShiftLeft<28>(hn::And(b, hn::Set(d64, uint64_t{0xF0}))));
  return hn::BitCast(du, w);
}
#endif  // HWY_TARGET == HWY_SCALAR

// ---- FP8 rows (per-tensor / per-channel / per-tile scale given).

template <class Fmt>
HWY_INLINE void QuantizeFp8Impl(const float* HWY_RESTRICT x, size_t n, float scale,
                                uint8_t* HWY_RESTRICT codes) {
  const DF df;
  const DU8 d8;
  const size_t N = hn::Lanes(df);
  const VF vs = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VU c = EncodeMiniFloat<Fmt>(hn::Div(hn::LoadU(df, x + i), vs));
    hn::StoreU(hn::TruncateTo(d8, c), d8, codes + i);
  }
  if (i < n) {
    HWY_ALIGN uint8_t buf[kMaxFloatLanes];
    const VU c = EncodeMiniFloat<Fmt>(hn::Div(LoadTail(x + i, n - i), vs));
    hn::Store(hn::TruncateTo(d8, c), d8, buf);
    std::memcpy(codes + i, buf, n - i);
  }
}

void QuantizeFp8(const float* HWY_RESTRICT x, int64_t n, float scale, ScalarFormat fp8,
                 uint8_t* HWY_RESTRICT codes) {
  const size_t count = static_cast<size_t>(n);
  if (!(scale > 0.0f)) {
    std::memset(codes, 0, count);
    return;
  }
  switch (fp8) {
    case ScalarFormat::E4M3FN:
      return QuantizeFp8Impl<E4M3FN>(x, count, scale, codes);
    case ScalarFormat::E4M3FNUZ:
      return QuantizeFp8Impl<E4M3FNUZ>(x, count, scale, codes);
    case ScalarFormat::E5M2:
      return QuantizeFp8Impl<E5M2>(x, count, scale, codes);
    case ScalarFormat::E5M2FNUZ:
      return QuantizeFp8Impl<E5M2FNUZ>(x, count, scale, codes);
    default:
      return quantize_row_fp8_ref(x, n, scale, fp8, codes);
  }
}

// Decodes N codes through a 256-entry table (exact for every code, NaN codes included).
HWY_INLINE VF DecodeFp8(const float* HWY_RESTRICT table, const uint8_t* HWY_RESTRICT codes) {
  const DF df;
  const DI di;
  const DU du;
  const DU8 d8;
  return hn::GatherIndex(df, table, hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, codes))));
}

void DequantizeFp8(const uint8_t* HWY_RESTRICT codes, int64_t n, float scale, ScalarFormat fp8,
                   float* HWY_RESTRICT out) {
  const float* table = qi::fp8_decode_table(fp8);
  if (table == nullptr) return dequantize_row_fp8_ref(codes, n, scale, fp8, out);
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const VF vs = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= count; i += N) hn::StoreU(hn::Mul(DecodeFp8(table, codes + i), vs), df, out + i);
  if (i < count) {
    HWY_ALIGN uint8_t in[kMaxFloatLanes] = {};
    HWY_ALIGN float buf[kMaxFloatLanes];
    std::memcpy(in, codes + i, count - i);
    hn::Store(hn::Mul(DecodeFp8(table, in), vs), df, buf);
    std::memcpy(out + i, buf, (count - i) * sizeof(float));
  }
}

// ---- INT8 rows.

HWY_INLINE hn::Vec<DI8> QuantizeInt8Vec(VF x, VF vs) {
  const DF df;
  const DI di;
  const DI8 di8;
  // Clamping before rounding equals clamping after: the bounds are integers and rne is monotone.
  const VF v = hn::Min(hn::Max(hn::Div(x, vs), hn::Set(df, -127.0f)), hn::Set(df, 127.0f));
  return hn::DemoteTo(di8, hn::BitCast(di, RoundToIntBits(v)));
}

void QuantizeInt8(const float* HWY_RESTRICT x, int64_t n, float scale, int8_t* HWY_RESTRICT codes) {
  const size_t count = static_cast<size_t>(n);
  if (!(scale > 0.0f)) {
    std::memset(codes, 0, count);
    return;
  }
  const DF df;
  const DI8 di8;
  const size_t N = hn::Lanes(df);
  const VF vs = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= count; i += N)
    hn::StoreU(QuantizeInt8Vec(hn::LoadU(df, x + i), vs), di8, codes + i);
  if (i < count) {
    HWY_ALIGN int8_t buf[kMaxFloatLanes];
    hn::Store(QuantizeInt8Vec(LoadTail(x + i, count - i), vs), di8, buf);
    std::memcpy(codes + i, buf, count - i);
  }
}

void DequantizeInt8(const int8_t* HWY_RESTRICT codes, int64_t n, float scale,
                    float* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const DI8 di8;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const VF vs = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    const VF q = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, codes + i)));
    hn::StoreU(hn::Mul(q, vs), df, out + i);
  }
  if (i < count) {
    HWY_ALIGN int8_t in[kMaxFloatLanes] = {};
    HWY_ALIGN float buf[kMaxFloatLanes];
    std::memcpy(in, codes + i, count - i);
    hn::Store(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::Load(di8, in))), vs), df, buf);
    std::memcpy(out + i, buf, (count - i) * sizeof(float));
  }
}

// ---- Max-abs bits of many groups at once.

#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
// Lanes of DF as a compile-time constant (fixed-width targets only).
constexpr size_t kLanes = hn::MaxLanes(DF());
constexpr int Log2(size_t v) {
  return v <= 1 ? 0 : 1 + Log2(v / 2);
}

// Max-abs bits of the 2^L consecutive groups of g values at p (g % kLanes == 0), each group
// reduced to kLanes >> L lanes, groups in order across the vector. Why: MaxOfLanes per group
// spends log2(kLanes) shuffles on ONE maximum; this tree spends about as many on kLanes maxima
// (each level halves the lanes per group with one even/odd split of two vectors).
template <int L>
HWY_INLINE VU GroupMaxTree(const float* HWY_RESTRICT p, size_t g) {
  const DF df;
  const DU du;
  if constexpr (L == 0) {
    const VU mask = hn::Set(du, qi::kAbsMask);
    VU m = hn::And(hn::BitCast(du, hn::LoadU(df, p)), mask);
    for (size_t i = kLanes; i < g; i += kLanes) {
      m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(df, p + i)), mask));
    }
    return m;
  } else {
    const VU a = GroupMaxTree<L - 1>(p, g);
    const VU b = GroupMaxTree<L - 1>(p + (size_t{1} << (L - 1)) * g, g);
    if constexpr ((kLanes >> (L - 1)) > 2) {
      // >= 2 u64 lanes per group: pair neighbouring u64 lanes (each holds two u32 partials).
      const DU64 d64;
      const auto a64 = hn::BitCast(d64, a);
      const auto b64 = hn::BitCast(d64, b);
      return hn::Max(hn::BitCast(du, hn::ConcatEven(d64, b64, a64)),
                     hn::BitCast(du, hn::ConcatOdd(d64, b64, a64)));
    } else {
      return hn::Max(hn::ConcatEven(du, b, a), hn::ConcatOdd(du, b, a));
    }
  }
}
#else
constexpr size_t kLanes = 0;  // no compile-time lane count: the tree is not used
template <int L>
HWY_INLINE VU GroupMaxTree(const float*, size_t) {
  return hn::Zero(DU());
}
constexpr int Log2(size_t) {
  return 0;
}
#endif  // HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE

// bits[j] = max-abs bits of group j of p: [count, g] (g % Lanes == 0).
HWY_INLINE void GroupAmaxBits(const float* HWY_RESTRICT p, size_t count, size_t g,
                              uint32_t* HWY_RESTRICT bits) {
  // For large groups the per-group MaxOfLanes is amortized and the plain loop measured faster.
  if (kLanes != 0 && count == kLanes && hn::Lanes(DF()) == kLanes && g <= 2 * kLanes) {
    hn::Store(GroupMaxTree<Log2(kLanes)>(p, g), DU(), bits);
    return;
  }
  for (size_t j = 0; j < count; ++j) bits[j] = AmaxBitsImpl(p + j * g, g);
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
