// Per-target Highway kernels for the microscaled block formats: NVFP4 (E2M1 x16, E4M3 scale,
// FP32 tensor scale) and OCP MX v1.0 MXFP4 / MXFP8 (E8M0 scale per 32). Equal to the scalar
// reference in quantize_ref.cpp bit for bit. Included per target after quantize_rows-inl.h.

#if defined(QFORGE_FORMATS_QUANTIZE_ROWS_FP4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_FORMATS_QUANTIZE_ROWS_FP4_INL_H_
#undef QFORGE_FORMATS_QUANTIZE_ROWS_FP4_INL_H_
#else
#define QFORGE_FORMATS_QUANTIZE_ROWS_FP4_INL_H_
#endif

#include <cstring>

#include "formats/quantize_rows-inl.h"
#include "formats/quantize_rows.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {

// True when a block of kG values is a whole number of (even-lane) vectors.
template <size_t kG>
HWY_INLINE bool BlockTiles() {
  const size_t N = hn::Lanes(DF());
  return N % 2 == 0 && kG % N == 0;
}

// Max-abs bits of one block p: [kG] (kG % Lanes == 0).
template <size_t kG>
HWY_INLINE uint32_t BlockAmaxBits(const float* HWY_RESTRICT p) {
  const DF df;
  const DU du;
  const size_t N = hn::Lanes(df);
  VU m = hn::Zero(du);
  for (size_t i = 0; i < kG; i += N) {
    m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(df, p + i)), hn::Set(du, qi::kAbsMask)));
  }
  return hn::GetLane(hn::MaxOfLanes(du, m));
}

// bits[j] = max-abs bits of block j of p: [count, kG].
template <size_t kG>
HWY_INLINE void BlockAmaxBitsBatch(const float* HWY_RESTRICT p, size_t count,
                                   uint32_t* HWY_RESTRICT bits) {
  GroupAmaxBits(p, count, kG, bits);
}

// Calls batch(pointer to count * kG values, first block index, count) over the blocks of a
// row x: [n] in batches of at most Lanes blocks; the last, partial block is zero-padded in a
// stack buffer and passed as a batch of its own.
template <size_t kG, class Fn>
HWY_INLINE void ForEachBlockBatch(const float* HWY_RESTRICT x, int64_t n, const Fn& batch) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t g = static_cast<int64_t>(kG);
  const int64_t full = n / g;
  for (int64_t b = 0; b < full; b += N) {
    batch(x + b * g, b, static_cast<size_t>(std::min(N, full - b)));
  }
  const int64_t tail = n - full * g;
  if (tail > 0) {
    HWY_ALIGN float buf[kG] = {};
    std::memcpy(buf, x + full * g, static_cast<size_t>(tail) * sizeof(float));
    batch(buf, full, size_t{1});
  }
}

// Encodes `count` blocks of 16 values p: [count, 16] with enc(v) -> 4-bit codes, block j's
// codes going to qs(j) (8 bytes). Pairs vectors for PackNibbles2: within a block when a block
// spans two or more vectors, across neighbouring blocks when one vector holds a whole block.
template <class Enc, class Qs>
HWY_INLINE void EncodeBlocks16(const float* HWY_RESTRICT p, size_t count, const Enc& enc,
                               const Qs& qs) {
  const DF df;
  const size_t N = hn::Lanes(df);
  if (N < 16) {
    for (size_t j = 0; j < count; ++j) {
      for (size_t i = 0; i < 16; i += 2 * N) {
        PackNibbles2(enc(j, hn::LoadU(df, p + 16 * j + i)),
                     enc(j, hn::LoadU(df, p + 16 * j + i + N)), qs(j) + i / 2);
      }
    }
    return;
  }
  size_t j = 0;
  for (; j + 2 <= count; j += 2) {
    HWY_ALIGN uint8_t buf[kMaxFloatLanes];
    PackNibbles2(enc(j, hn::LoadU(df, p + 16 * j)), enc(j + 1, hn::LoadU(df, p + 16 * j + 16)),
                 buf);
    std::memcpy(qs(j), buf, 8);
    std::memcpy(qs(j + 1), buf + 8, 8);
  }
  if (j < count) PackNibbles(enc(j, hn::LoadU(df, p + 16 * j)), qs(j));
}

// Stores the first count lanes of v at out (count <= Lanes).
HWY_INLINE void StorePartial(VF v, size_t count, float* HWY_RESTRICT out) {
  const DF df;
  if (count == hn::Lanes(df)) {
    hn::StoreU(v, df, out);
    return;
  }
  HWY_ALIGN float buf[kMaxFloatLanes];
  hn::Store(v, df, buf);
  std::memcpy(out, buf, count * sizeof(float));
}

// ---- NVFP4.

// Quantizes `count` <= Lanes consecutive blocks p: [count, 16]. The block scales of the whole
// batch come from one vector evaluation of the nvfp4_block_scale recipe (quantize_rows.h).
HWY_INLINE void QuantizeNvfp4Batch(const float* HWY_RESTRICT p, size_t count, float tensor_scale,
                                   BlockNvfp4* HWY_RESTRICT blocks) {
  constexpr size_t kG = BlockNvfp4::kBlockSize;
  const DF df;
  const DU du;
  const DI di;
  HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
  HWY_ALIGN uint32_t codes[kMaxFloatLanes] = {};
  HWY_ALIGN float divisors[kMaxFloatLanes] = {};
  BlockAmaxBitsBatch<kG>(p, count, bits);
  if (tensor_scale > 0.0f) {
    const VF amax = AmaxFromBits(hn::Load(du, bits));
    // code = e4m3fn(amax / (6 * s2), satfinite), 0 for an all-zero block; divisor = e4m3(code) *
    // s2.
    const VF sb = hn::Div(amax, hn::Set(df, 6.0f * tensor_scale));
    const VU code = hn::IfThenZeroElse(hn::RebindMask(du, hn::Not(hn::Gt(amax, hn::Zero(df)))),
                                       EncodeMiniFloat<E4M3FN>(sb));
    const VF decoded =
        hn::GatherIndex(df, qi::fp8_decode_table(ScalarFormat::E4M3FN), hn::BitCast(di, code));
    hn::Store(code, du, codes);
    hn::Store(hn::Mul(decoded, hn::Set(df, tensor_scale)), df, divisors);
  }
  for (size_t j = 0; j < count; ++j) blocks[j].scale_e4m3 = static_cast<uint8_t>(codes[j]);
  const auto enc = [&](size_t j, VF x) {
    // A zero divisor (all-zero block, or a scale that underflowed) gives all-zero codes.
    if (!(divisors[j] > 0.0f)) return hn::Zero(du);
    return EncodeMiniFloat<E2M1>(hn::Div(x, hn::Set(df, divisors[j])));
  };
  EncodeBlocks16(p, count, enc, [&](size_t j) { return blocks[j].qs; });
}

void QuantizeNvfp4(const float* HWY_RESTRICT x, int64_t n, float tensor_scale,
                   BlockNvfp4* HWY_RESTRICT blocks) {
  if (!BlockTiles<BlockNvfp4::kBlockSize>())
    return quantize_row_nvfp4_ref(x, n, tensor_scale, blocks);
  ForEachBlockBatch<BlockNvfp4::kBlockSize>(x, n, [&](const float* p, int64_t b, size_t count) {
    QuantizeNvfp4Batch(p, count, tensor_scale, blocks + b);
  });
}

// Decodes N packed E2M1 codes (N/2 bytes) to floats through the 16-entry table.
HWY_INLINE VF DecodeE2m1(const uint8_t* HWY_RESTRICT qs) {
  const DF df;
  const DI di;
  return hn::GatherIndex(df, qi::e2m1_decode_table(), hn::BitCast(di, UnpackNibbles(qs)));
}

void DequantizeNvfp4(const BlockNvfp4* HWY_RESTRICT blocks, int64_t n, float tensor_scale,
                     float* HWY_RESTRICT out) {
  constexpr int64_t kG = BlockNvfp4::kBlockSize;
  if (!BlockTiles<kG>()) return dequantize_row_nvfp4_ref(blocks, n, tensor_scale, out);
  const DF df;
  const size_t N = hn::Lanes(df);
  for (int64_t b = 0; b * kG < n; ++b) {
    const VF vd = hn::Set(df, qi::nvfp4_block_divisor(blocks[b].scale_e4m3, tensor_scale));
    const size_t count = static_cast<size_t>(std::min(kG, n - b * kG));
    for (size_t i = 0; i < count; i += N) {
      StorePartial(hn::Mul(DecodeE2m1(blocks[b].qs + i / 2), vd), std::min(N, count - i),
                   out + b * kG + i);
    }
  }
}

// ---- OCP MX. The element is encode(x / 2^e); the kernels multiply by 2^-e instead, which is
// bit-identical: 2^-e is an exact float for every scale the recipe produces, and x * 2^-e and
// x / 2^e are both the correctly rounded value of the same real number.

// E8M0 scale codes of a batch: e8m0_scale_for_amax(amax, emax) = clamp(floor(log2(amax)) - emax
// + 127, 0, 254), where floor(log2(amax)) + 127 is float's exponent field (0 for subnormals and
// zero, which clamp to code 0 as ilogb would); and the exact inverse scales 2^(127 - code)
// (code <= 254 - emax < 254, so 2^(127 - code) is a normal float).
HWY_INLINE void MxScales(const uint32_t* HWY_RESTRICT bits, int emax, uint32_t* HWY_RESTRICT codes,
                         float* HWY_RESTRICT inverse) {
  const DF df;
  const DU du;
  const DI di;
  const auto exponent =
      hn::BitCast(di, hn::ShiftRight<23>(hn::BitCast(du, AmaxFromBits(hn::Load(du, bits)))));
  const auto code =
      hn::Min(hn::Max(hn::Sub(exponent, hn::Set(di, emax)), hn::Zero(di)), hn::Set(di, 254));
  hn::Store(hn::BitCast(du, code), du, codes);
  hn::Store(hn::BitCast(df, hn::ShiftLeft<23>(hn::Sub(hn::Set(di, 254), code))), df, inverse);
}

uint32_t QuantizeMxfp4(const float* HWY_RESTRICT x, int64_t n, BlockMxfp4* HWY_RESTRICT blocks) {
  constexpr size_t kG = BlockMxfp4::kBlockSize;
  if (!BlockTiles<kG>()) {
    quantize_row_mxfp4_ref(x, n, blocks);
    return qi::amax_bits_ref(x, n);
  }
  const DF df;
  const size_t N = hn::Lanes(df);
  uint32_t row_bits = 0;
  ForEachBlockBatch<kG>(x, n, [&](const float* p, int64_t b0, size_t count) {
    HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
    HWY_ALIGN uint32_t codes[kMaxFloatLanes];
    HWY_ALIGN float inverse[kMaxFloatLanes];
    BlockAmaxBitsBatch<kG>(p, count, bits);
    for (size_t j = 0; j < count; ++j) row_bits = std::max(row_bits, bits[j]);
    MxScales(bits, 2, codes, inverse);
    for (size_t j = 0; j < count; ++j) {
      BlockMxfp4& block = blocks[b0 + static_cast<int64_t>(j)];
      block.scale_e8m0 = static_cast<uint8_t>(codes[j]);
      if (bits[j] >= qi::kInfBits) {
        std::memset(block.qs, 0, sizeof(block.qs));
        continue;
      }
      const VF inv = hn::Set(df, inverse[j]);
      const float* q = p + j * kG;
      for (size_t i = 0; i < kG; i += 2 * N) {
        PackNibbles2(EncodeMiniFloat<E2M1>(hn::Mul(hn::LoadU(df, q + i), inv)),
                     EncodeMiniFloat<E2M1>(hn::Mul(hn::LoadU(df, q + i + N), inv)),
                     block.qs + i / 2);
      }
    }
  });
  return row_bits;
}

void DequantizeMxfp4(const BlockMxfp4* HWY_RESTRICT blocks, int64_t n, float* HWY_RESTRICT out) {
  constexpr int64_t kG = BlockMxfp4::kBlockSize;
  if (!BlockTiles<kG>()) return dequantize_row_mxfp4_ref(blocks, n, out);
  const DF df;
  const size_t N = hn::Lanes(df);
  for (int64_t b = 0; b * kG < n; ++b) {
    const VF vs = hn::Set(df, e8m0_to_float(blocks[b].scale_e8m0));
    const size_t count = static_cast<size_t>(std::min(kG, n - b * kG));
    for (size_t i = 0; i < count; i += N) {
      StorePartial(hn::Mul(DecodeE2m1(blocks[b].qs + i / 2), vs), std::min(N, count - i),
                   out + b * kG + i);
    }
  }
}

template <class Fmt>
HWY_INLINE uint32_t QuantizeMxfp8Impl(const float* HWY_RESTRICT x, int64_t n, int emax,
                                      BlockMxfp8* HWY_RESTRICT blocks) {
  constexpr size_t kG = BlockMxfp8::kBlockSize;
  const DF df;
  const DU8 d8;
  const size_t N = hn::Lanes(df);
  uint32_t row_bits = 0;
  ForEachBlockBatch<kG>(x, n, [&](const float* p, int64_t b0, size_t count) {
    HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
    HWY_ALIGN uint32_t codes[kMaxFloatLanes];
    HWY_ALIGN float inverse[kMaxFloatLanes];
    BlockAmaxBitsBatch<kG>(p, count, bits);
    for (size_t j = 0; j < count; ++j) row_bits = std::max(row_bits, bits[j]);
    MxScales(bits, emax, codes, inverse);
    for (size_t j = 0; j < count; ++j) {
      BlockMxfp8& block = blocks[b0 + static_cast<int64_t>(j)];
      block.scale_e8m0 = static_cast<uint8_t>(codes[j]);
      if (bits[j] >= qi::kInfBits) {
        std::memset(block.qs, 0, sizeof(block.qs));
        continue;
      }
      const VF inv = hn::Set(df, inverse[j]);
      for (size_t i = 0; i < kG; i += N) {
        const VU c = EncodeMiniFloat<Fmt>(hn::Mul(hn::LoadU(df, p + j * kG + i), inv));
        hn::StoreU(hn::TruncateTo(d8, c), d8, block.qs + i);
      }
    }
  });
  return row_bits;
}

uint32_t QuantizeMxfp8(const float* HWY_RESTRICT x, int64_t n, ScalarFormat fp8,
                       BlockMxfp8* HWY_RESTRICT blocks) {
  if (BlockTiles<BlockMxfp8::kBlockSize>()) {
    if (fp8 == ScalarFormat::E4M3FN) return QuantizeMxfp8Impl<E4M3FN>(x, n, 8, blocks);
    if (fp8 == ScalarFormat::E5M2) return QuantizeMxfp8Impl<E5M2>(x, n, 15, blocks);
  }
  quantize_row_mxfp8_ref(x, n, fp8, blocks);
  return qi::amax_bits_ref(x, n);
}

void DequantizeMxfp8(const BlockMxfp8* HWY_RESTRICT blocks, int64_t n, ScalarFormat fp8,
                     float* HWY_RESTRICT out) {
  constexpr int64_t kG = BlockMxfp8::kBlockSize;
  const float* table = qi::fp8_decode_table(fp8);
  if (table == nullptr || !BlockTiles<kG>()) return dequantize_row_mxfp8_ref(blocks, n, fp8, out);
  const DF df;
  const size_t N = hn::Lanes(df);
  for (int64_t b = 0; b * kG < n; ++b) {
    const VF vs = hn::Set(df, e8m0_to_float(blocks[b].scale_e8m0));
    const size_t count = static_cast<size_t>(std::min(kG, n - b * kG));
    for (size_t i = 0; i < count; i += N) {
      StorePartial(hn::Mul(DecodeFp8(table, blocks[b].qs + i), vs), std::min(N, count - i),
                   out + b * kG + i);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
