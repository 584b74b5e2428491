// Per-target Highway kernels for the INT4 (symmetric) and UINT4 (asymmetric, zero point) group
// formats, equal to quantize_ref.cpp bit for bit. Included per target after quantize_rows-inl.h.

#if defined(QFORGE_FORMATS_QUANTIZE_ROWS_INT4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_FORMATS_QUANTIZE_ROWS_INT4_INL_H_
#undef QFORGE_FORMATS_QUANTIZE_ROWS_INT4_INL_H_
#else
#define QFORGE_FORMATS_QUANTIZE_ROWS_INT4_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/quantize_rows-inl.h"
#include "formats/quantize_rows.h"
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {

// ---- INT4 / UINT4 groups. A group of g values is tiled by whole vectors (g % Lanes == 0);
// the kernels fall back to the reference for group sizes that do not tile. Groups go in
// batches of Lanes: pass 1 gathers each group's statistics, one vector computes all their
// scales (no scalar codec calls), pass 2 encodes the groups, which are still in L1.

HWY_INLINE bool GroupTiles(int g) {
  const size_t N = hn::Lanes(DF());
  return g > 0 && N % 2 == 0 && static_cast<size_t>(g) % N == 0;
}

// Encodes a group scale vector to F16/BF16 bits (overflow -> Inf, like float_to_f16/bf16) and
// decodes it back: the GroupScale recipe of quantize_rows.h for Lanes groups at once.
HWY_INLINE void EncodeGroupScales(VF scale, ScaleType st, VU& code, VF& value) {
  if (st == ScaleType::F16) {
    code = EncodeMiniFloat<F16>(scale);
    value = DecodeF16(code);
  } else {
    code = EncodeMiniFloat<BF16>(scale);
    value = DecodeBf16(code);
  }
}

// Encodes g values p (g % Lanes == 0) with the 4-bit code function enc(v) -> VU into qs.
// One PackNibbles per vector: measured faster here than PackNibbles2's cross-vector split
// (bench_quantize, INT4 g128 on AVX3: 3.4 vs 3.7 ms per 64 MiB).
template <class Enc>
HWY_INLINE void EncodeNibbleGroup(const float* HWY_RESTRICT p, size_t g, const Enc& enc,
                                  uint8_t* HWY_RESTRICT qs) {
  const DF df;
  const size_t N = hn::Lanes(df);
  for (size_t i = 0; i < g; i += N) PackNibbles(enc(hn::LoadU(df, p + i)), qs + i / 2);
}

// Quantizes `count` <= Lanes consecutive symmetric INT4 groups p: [count, g] into blocks.
HWY_INLINE uint32_t QuantizeInt4Batch(const float* HWY_RESTRICT p, size_t count, size_t g,
                                      ScaleType st, uint8_t* HWY_RESTRICT blocks) {
  const DF df;
  const DU du;
  HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
  HWY_ALIGN uint32_t codes[kMaxFloatLanes];
  HWY_ALIGN float values[kMaxFloatLanes];
  GroupAmaxBits(p, count, g, bits);
  uint32_t batch_bits = 0;
  for (size_t j = 0; j < count; ++j) batch_bits = std::max(batch_bits, bits[j]);
  // scale = amax / 7, stored as F16/BF16; codes use the decoded stored scale.
  VU code;
  VF value;
  EncodeGroupScales(hn::Div(AmaxFromBits(hn::Load(du, bits)), hn::Set(df, 7.0f)), st, code, value);
  hn::Store(code, du, codes);
  hn::Store(value, df, values);
  const size_t block_bytes = static_cast<size_t>(int4_block_bytes(static_cast<int64_t>(g)));
  for (size_t j = 0; j < count; ++j) {
    uint8_t* block = blocks + j * block_bytes;
    const uint16_t c = static_cast<uint16_t>(codes[j]);
    std::memcpy(block, &c, sizeof(c));
    if (!(values[j] > 0.0f) || bits[j] >= qi::kInfBits) {
      std::memset(block + 2, 0, g / 2);
      continue;
    }
    const VF vs = hn::Set(df, values[j]);
    const auto enc = [&](VF x) {
      // clamp(rne(x / s), -8, 7) as a two's complement nibble: the low 4 bits of RoundToIntBits,
      // which are those of the magic sum itself (the magic's bit pattern ends in 0000).
      const VF v = hn::Min(hn::Max(hn::Div(x, vs), hn::Set(df, -8.0f)), hn::Set(df, 7.0f));
      return hn::And(hn::BitCast(du, hn::Add(v, hn::Set(df, kSignedRoundMagic))),
                     hn::Set(du, 0xFu));
    };
    EncodeNibbleGroup(p + j * g, g, enc, block + 2);
  }
  return batch_bits;
}

// Quantizes `count` <= Lanes consecutive asymmetric UINT4 groups p: [count, g] into blocks.
HWY_INLINE uint32_t QuantizeUint4Batch(const float* HWY_RESTRICT p, size_t count, size_t g,
                                       ScaleType st, uint8_t* HWY_RESTRICT blocks) {
  const DF df;
  const DU du;
  const size_t N = hn::Lanes(df);
  const VU abs_mask = hn::Set(du, qi::kAbsMask);
  HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
  HWY_ALIGN float lo[kMaxFloatLanes] = {};
  HWY_ALIGN float hi[kMaxFloatLanes] = {};
  uint32_t batch_bits = 0;
  for (size_t j = 0; j < count; ++j) {
    const float* q = p + j * g;
    // Accumulators start at 0, which folds the "zero is always in range" rule in.
    VF vmin = hn::Zero(df);
    VF vmax = hn::Zero(df);
    VU m = hn::Zero(du);
    for (size_t i = 0; i < g; i += N) {
      const VF v = hn::LoadU(df, q + i);
      vmin = hn::Min(vmin, v);
      vmax = hn::Max(vmax, v);
      m = hn::Max(m, hn::And(hn::BitCast(du, v), abs_mask));
    }
    bits[j] = hn::GetLane(hn::MaxOfLanes(du, m));
    batch_bits = std::max(batch_bits, bits[j]);
    if (bits[j] < qi::kInfBits) {
      lo[j] = hn::GetLane(hn::MinOfLanes(df, vmin));
      hi[j] = hn::GetLane(hn::MaxOfLanes(df, vmax));
    }
  }
  // The Uint4Params recipe for Lanes groups: [lo, hi] with zero inside ("+ 0" makes -0 into
  // +0 as the scalar recipe does), scale = (hi - lo) / 15 stored as F16/BF16, zero =
  // clamp(rne(-lo / s'), 0, 15) where s' is the decoded scale (0 when s' is 0 or Inf).
  const VF zero_f = hn::Zero(df);
  const VF vlo = hn::Add(hn::Min(hn::Load(df, lo), zero_f), zero_f);
  const VF vhi = hn::Add(hn::Max(hn::Load(df, hi), zero_f), zero_f);
  VU code;
  VF value;
  EncodeGroupScales(hn::Div(hn::Sub(vhi, vlo), hn::Set(df, 15.0f)), st, code, value);
  const auto usable = hn::And(hn::Gt(value, zero_f), hn::Lt(value, hn::Set(df, HUGE_VALF)));
  const VF zq = hn::Min(
      hn::Max(hn::Div(hn::Neg(vlo), hn::IfThenElse(usable, value, hn::Set(df, 1.0f))), zero_f),
      hn::Set(df, 15.0f));
  const VU zero = hn::IfThenZeroElse(hn::RebindMask(du, hn::Not(usable)), RoundToIntBits(zq));
  HWY_ALIGN uint32_t codes[kMaxFloatLanes];
  HWY_ALIGN float values[kMaxFloatLanes];
  HWY_ALIGN uint32_t zeros[kMaxFloatLanes];
  hn::Store(code, du, codes);
  hn::Store(value, df, values);
  hn::Store(zero, du, zeros);
  const size_t block_bytes = static_cast<size_t>(uint4_block_bytes(static_cast<int64_t>(g)));
  for (size_t j = 0; j < count; ++j) {
    uint8_t* block = blocks + j * block_bytes;
    const uint16_t c = static_cast<uint16_t>(codes[j]);
    std::memcpy(block, &c, sizeof(c));
    block[2] = static_cast<uint8_t>(zeros[j]);
    block[3] = 0;
    if (!(values[j] > 0.0f) || bits[j] >= qi::kInfBits) {
      std::memset(block + 4, 0, g / 2);
      continue;
    }
    const VF vs = hn::Set(df, values[j]);
    // clamp(rne(v) + z, 0, 15) == rne(clamp(v, -z, 15 - z)) + z for an integer z.
    const VF zlo = hn::Set(df, -static_cast<float>(zeros[j]));
    const VF zhi = hn::Set(df, 15.0f - static_cast<float>(zeros[j]));
    const VU vz = hn::Set(du, zeros[j]);
    const auto enc = [&](VF x) {
      return hn::Add(RoundToIntBits(hn::Min(hn::Max(hn::Div(x, vs), zlo), zhi)), vz);
    };
    EncodeNibbleGroup(p + j * g, g, enc, block + 4);
  }
  return batch_bits;
}

template <bool kAsymmetric>
HWY_INLINE uint32_t Quantize4BitRow(const float* HWY_RESTRICT x, int64_t n, int g, ScaleType st,
                                    uint8_t* HWY_RESTRICT blocks) {
  const size_t N = hn::Lanes(DF());
  const size_t gs = static_cast<size_t>(g);
  const int64_t block_bytes = kAsymmetric ? uint4_block_bytes(g) : int4_block_bytes(g);
  const auto batch = [&](const float* p, size_t count, uint8_t* out) {
    return kAsymmetric ? QuantizeUint4Batch(p, count, gs, st, out)
                       : QuantizeInt4Batch(p, count, gs, st, out);
  };
  const int64_t full = n / g;
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < full; b += static_cast<int64_t>(N)) {
    const size_t count = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(N), full - b));
    row_bits = std::max(row_bits, batch(x + b * g, count, blocks + b * block_bytes));
  }
  if (full * g < n) {
    // The last, partial group: zero-pad it to g values.
    auto buf = hwy::AllocateAligned<float>(gs);
    const size_t tail = static_cast<size_t>(n - full * g);
    std::memcpy(buf.get(), x + full * g, tail * sizeof(float));
    std::memset(buf.get() + tail, 0, (gs - tail) * sizeof(float));
    row_bits = std::max(row_bits, batch(buf.get(), 1, blocks + full * block_bytes));
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
