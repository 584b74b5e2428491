// Per-target Highway kernels for the bulk quantizers: amax, FP8 (all four kinds), INT8 and the
// INT4/UINT4 group formats. Each kernel reproduces the scalar recipe of quantize_rows.h exactly
// (IEEE division, no fused multiply-add) so that it equals quantize_ref.cpp bit for bit.
// Included once per target by quantize_rows.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#undef QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#else
#define QFORGE_FORMATS_QUANTIZE_ROWS_INL_H_
#endif

#include <algorithm>
#include <cstring>

#include "formats/quantize_rows.h"
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace qi = quantize_internal;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DF>;   // one byte per float lane
using DI8 = hn::Rebind<int8_t, DF>;    // one int8 per float lane
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

// ---- Mini-float encoder: FP8 kinds and E2M1 share one bit-exact round-to-nearest-even path.

constexpr float Pow2(int e) {
  float r = 1.0f;
  for (; e > 0; --e) r *= 2.0f;
  for (; e < 0; ++e) r *= 0.5f;
  return r;
}

// kMant mantissa bits, exponent bias kBias, largest finite magnitude code kMaxMag, sign at bit
// kSignBit; kFnuz formats have no -0 (negative values that round to zero encode as 0x00).
template <int kMantBits, int kExpBias, uint32_t kMaxMagCode, int kSignBitPos, bool kFnuz>
struct MiniFloat {
  static constexpr int kMant = kMantBits;
  static constexpr int kBias = kExpBias;
  static constexpr uint32_t kMaxMag = kMaxMagCode;
  static constexpr int kSignBit = kSignBitPos;
  static constexpr bool kNoNegativeZero = kFnuz;
  static constexpr int kShift = 23 - kMant;
  static constexpr float kMinNormal = Pow2(1 - kBias);
  static constexpr float kInvMinSubnormal = Pow2(kBias - 1 + kMant);
};
using E4M3FN = MiniFloat<3, 7, 0x7E, 7, false>;
using E4M3FNUZ = MiniFloat<3, 8, 0x7F, 7, true>;
using E5M2 = MiniFloat<2, 15, 0x7B, 7, false>;
using E5M2FNUZ = MiniFloat<2, 16, 0x7F, 7, true>;
using E2M1 = MiniFloat<1, 1, 0x7, 3, false>;

// 2^23 and 1.5 * 2^23: adding them to a float of small magnitude lands the sum where float
// spacing is exactly 1, so the FPU's own round-to-nearest-even produces the integer, which is
// then read from the low mantissa bits. Exact for |v| < 2^22 on every target, unlike
// NearestInt, whose EMU128 emulation misrounds values just below 0.5.
constexpr float kRoundMagic = 8388608.0f;          // 2^23, for v in [0, 2^23)
constexpr uint32_t kRoundMagicBits = 0x4B000000u;
constexpr float kSignedRoundMagic = 12582912.0f;   // 1.5 * 2^23, for |v| < 2^22
constexpr uint32_t kSignedRoundMagicBits = 0x4B400000u;

// rne(v) for |v| < 2^22, as two's complement bits in u32 lanes.
HWY_INLINE VU RoundToIntBits(VF v) {
  const DF df;
  const DU du;
  return hn::Sub(hn::BitCast(du, hn::Add(v, hn::Set(df, kSignedRoundMagic))),
                 hn::Set(du, kSignedRoundMagicBits));
}

// encode(v, satfinite) with round-to-nearest-even; returns the code in the low bits of u32 lanes.
// v may be any finite value or +-Inf (NaN gives an unspecified code, never UB).
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
  const VU normal = hn::Sub(hn::ShiftRight<Fmt::kShift>(rounded),
                            hn::Set(du, static_cast<uint32_t>(127 - Fmt::kBias) << Fmt::kMant));
  // Subnormal range: code = rne(a / min_subnormal); the scaling by a power of two is exact.
  const VF scaled = hn::Mul(a, hn::Set(df, Fmt::kInvMinSubnormal));
  const VU sub = hn::Sub(hn::BitCast(du, hn::Add(scaled, hn::Set(df, kRoundMagic))),
                         hn::Set(du, kRoundMagicBits));
  const auto is_sub = hn::RebindMask(du, hn::Lt(a, hn::Set(df, Fmt::kMinNormal)));
  // Saturate: everything that rounds past the largest finite value (and +-Inf) clamps to it.
  const VU mag = hn::Min(hn::IfThenElse(is_sub, sub, normal), hn::Set(du, Fmt::kMaxMag));
  VU sign = hn::ShiftLeft<Fmt::kSignBit>(hn::ShiftRight<31>(hn::BitCast(du, v)));
  if (Fmt::kNoNegativeZero) sign = hn::IfThenZeroElse(hn::Eq(mag, hn::Zero(du)), sign);
  return hn::Or(mag, sign);
}

// ---- Nibble packing (low nibble = even element).

#if HWY_TARGET == HWY_SCALAR
// One-lane vectors cannot hold a nibble pair: on HWY_SCALAR the 4-bit kernels take the
// reference path (GroupTiles / BlockTiles are false), so these are never called.
HWY_INLINE void PackNibbles(VU, uint8_t*) {}
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
  for (; i + N <= count; i += N) hn::StoreU(QuantizeInt8Vec(hn::LoadU(df, x + i), vs), di8, codes + i);
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

// ---- INT4 / UINT4 groups. A group of g values is tiled by whole vectors (g % Lanes == 0);
// the kernels fall back to the reference for group sizes that do not tile.

HWY_INLINE bool GroupTiles(int g) {
  const size_t N = hn::Lanes(DF());
  return g > 0 && N % 2 == 0 && static_cast<size_t>(g) % N == 0;
}

// Quantizes one symmetric INT4 group p: [g] into block (int4_block_bytes(g) bytes).
HWY_INLINE uint32_t QuantizeInt4Group(const float* HWY_RESTRICT p, size_t g, ScaleType st,
                                      uint8_t* HWY_RESTRICT block) {
  const DF df;
  const DU du;
  const size_t N = hn::Lanes(df);
  const uint32_t bits = AmaxBitsImpl(p, g);
  const qi::GroupScale s{static_cast<uint16_t>(bits>>16), qi::amax_from_bits(bits)/7.0f};
  std::memcpy(block, &s.code, sizeof(s.code));
  uint8_t* qs = block + 2;
  if (!(s.value > 0.0f) || bits >= qi::kInfBits) {
    std::memset(qs, 0, g / 2);
    return bits;
  }
  const VF vs = hn::Set(df, s.value);
  const VF lo = hn::Set(df, -8.0f);
  const VF hi = hn::Set(df, 7.0f);
  const VU nibble = hn::Set(du, 0xFu);
  for (size_t i = 0; i < g; i += N) {
    const VF v = hn::Min(hn::Max(hn::Div(hn::LoadU(df, p + i), vs), lo), hi);
    PackNibbles(hn::And(RoundToIntBits(v), nibble), qs + i / 2);
  }
  return bits;
}

// Quantizes one asymmetric UINT4 group p: [g] into block (uint4_block_bytes(g) bytes).
HWY_INLINE uint32_t QuantizeUint4Group(const float* HWY_RESTRICT p, size_t g, ScaleType st,
                                       uint8_t* HWY_RESTRICT block) {
  const DF df;
  const DU du;
  const size_t N = hn::Lanes(df);
  const VU mask = hn::Set(du, qi::kAbsMask);
  VF vmin = hn::Zero(df);
  VF vmax = hn::Zero(df);
  VU m = hn::Zero(du);
  for (size_t i = 0; i < g; i += N) {
    const VF v = hn::LoadU(df, p + i);
    vmin = hn::Min(vmin, v);
    vmax = hn::Max(vmax, v);
    m = hn::Max(m, hn::And(hn::BitCast(du, v), mask));
  }
  const uint32_t bits = hn::GetLane(hn::MaxOfLanes(du, m));
  const bool finite = bits < qi::kInfBits;
  const float lo = finite ? hn::GetLane(hn::MinOfLanes(df, vmin)) : 0.0f;
  const float hi = finite ? hn::GetLane(hn::MaxOfLanes(df, vmax)) : 0.0f;
  const qi::Uint4Params prm = qi::uint4_group_params(lo, hi, st);
  std::memcpy(block, &prm.scale_code, sizeof(prm.scale_code));
  block[2] = static_cast<uint8_t>(prm.zero);
  block[3] = 0;
  uint8_t* qs = block + 4;
  if (!(prm.scale > 0.0f) || !finite) {
    std::memset(qs, 0, g / 2);
    return bits;
  }
  const VF vs = hn::Set(df, prm.scale);
  // clamp(rne(v) + z, 0, 15) == rne(clamp(v, -z, 15 - z)) + z for an integer z.
  const VF vlo = hn::Set(df, static_cast<float>(-prm.zero));
  const VF vhi = hn::Set(df, static_cast<float>(15 - prm.zero));
  const VU vz = hn::Set(du, static_cast<uint32_t>(prm.zero));
  for (size_t i = 0; i < g; i += N) {
    const VF v = hn::Min(hn::Max(hn::Div(hn::LoadU(df, p + i), vs), vlo), vhi);
    PackNibbles(hn::Add(RoundToIntBits(v), vz), qs + i / 2);
  }
  return bits;
}

template <bool kAsymmetric>
HWY_INLINE uint32_t Quantize4BitRow(const float* HWY_RESTRICT x, int64_t n, int g, ScaleType st,
                                    uint8_t* HWY_RESTRICT blocks) {
  const size_t gs = static_cast<size_t>(g);
  const int64_t block_bytes = kAsymmetric ? uint4_block_bytes(g) : int4_block_bytes(g);
  const auto group = [&](const float* p, uint8_t* block) {
    return kAsymmetric ? QuantizeUint4Group(p, gs, st, block) : QuantizeInt4Group(p, gs, st, block);
  };
  const int64_t full = n / g;
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < full; ++b) {
    row_bits = std::max(row_bits, group(x + b * g, blocks + b * block_bytes));
  }
  if (full * g < n) {
    // The last, partial group: zero-pad it to g values.
    auto buf = hwy::AllocateAligned<float>(gs);
    const size_t tail = static_cast<size_t>(n - full * g);
    std::memcpy(buf.get(), x + full * g, tail * sizeof(float));
    std::memset(buf.get() + tail, 0, (gs - tail) * sizeof(float));
    row_bits = std::max(row_bits, group(buf.get(), blocks + full * block_bytes));
  }
  return row_bits;
}

uint32_t QuantizeInt4(const float* HWY_RESTRICT x, int64_t n, int g, ScaleType st,
                      uint8_t* HWY_RESTRICT blocks) {
  if (!GroupTiles(g)) return qi::quantize_int4_row_ref(x, n, g, st, blocks);
  return Quantize4BitRow<false>(x, n, g, st, blocks);
}

uint32_t QuantizeUint4(const float* HWY_RESTRICT x, int64_t n, int g, ScaleType st,
                       uint8_t* HWY_RESTRICT blocks) {
  if (!GroupTiles(g)) return qi::quantize_uint4_row_ref(x, n, g, st, blocks);
  return Quantize4BitRow<true>(x, n, g, st, blocks);
}

// Dequantizes 4-bit groups: value(code) = (code - zero) * scale, where INT4 codes are sign-
// extended (zero 0) and UINT4 codes use the block's zero point.
template <bool kAsymmetric>
HWY_INLINE void Dequantize4BitRow(const uint8_t* HWY_RESTRICT blocks, int64_t n, int g,
                                  ScaleType st, float* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const DU du;
  const size_t N = hn::Lanes(df);
  const int64_t block_bytes = kAsymmetric ? uint4_block_bytes(g) : int4_block_bytes(g);
  const int64_t header = kAsymmetric ? 4 : 2;
  for (int64_t b = 0; b * g < n; ++b) {
    const uint8_t* block = blocks + b * block_bytes;
    uint16_t code;
    std::memcpy(&code, block, sizeof(code));
    const VF vs = hn::Set(df, qi::decode_group_scale(code, st));
    // INT4: (q ^ 8) - 8 sign-extends the nibble; UINT4: q - zero.
    const VU flip = hn::Set(du, kAsymmetric ? 0u : 8u);
    const VU offset = hn::Set(du, kAsymmetric ? static_cast<uint32_t>(block[2]) : 8u);
    const size_t count = static_cast<size_t>(std::min<int64_t>(g, n - b * g));
    float* dst = out + b * g;
    for (size_t i = 0; i < count; i += N) {
      const VU q = hn::Sub(hn::Xor(UnpackNibbles(block + header + i / 2), flip), offset);
      const VF v = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, q)), vs);
      if (i + N <= count) {
        hn::StoreU(v, df, dst + i);
      } else {
        HWY_ALIGN float buf[kMaxFloatLanes];
        hn::Store(v, df, buf);
        std::memcpy(dst + i, buf, (count - i) * sizeof(float));
      }
    }
  }
}

void DequantizeInt4(const uint8_t* HWY_RESTRICT blocks, int64_t n, int g, ScaleType st,
                    float* HWY_RESTRICT out) {
  if (!GroupTiles(g)) return dequantize_row_int4_ref(blocks, n, g, st, out);
  Dequantize4BitRow<false>(blocks, n, g, st, out);
}

void DequantizeUint4(const uint8_t* HWY_RESTRICT blocks, int64_t n, int g, ScaleType st,
                     float* HWY_RESTRICT out) {
  if (!GroupTiles(g)) return dequantize_row_uint4_ref(blocks, n, g, st, out);
  Dequantize4BitRow<true>(blocks, n, g, st, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
