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

// E4M3FN magnitude code (0..0x7E: no sign, no NaN) -> float, exactly e4m3fn_to_float: codes
// 8..0x7E are normal (rebias the exponent from 7 to 127), codes 0..7 are code * 2^-9.
HWY_INLINE VF DecodeE4m3fnMagnitude(VU code) {
  const DF df;
  const DU du;
  const DI di;
  const VF normal = hn::BitCast(df, hn::Add(hn::ShiftLeft<20>(code), hn::Set(du, 120u << 23)));
  const VF subnormal = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, code)), hn::Set(df, Pow2(-9)));
  return hn::IfThenElse(hn::RebindMask(df, hn::Lt(hn::BitCast(di, code), hn::Set(di, 8))),
                        subnormal, normal);
}

// E2M1 encoder, equal to float_to_e2m1 for every float (NaN too: sign | 7). With a = |q|
// clamped to [0.125, 6] and e = clamp(floor(log2 a), 0, 2), the code is rne(a / 2^(e-1)) + 2e:
// rne(2a) in 0..4 below 2 (E2M1's subnormals 0, 0.5 and its binade [1, 2) share the step 0.5),
// 2 + {2, 3, 4} in [2, 4), 4 + {2, 3} in [4, 6]. The FPU does that rounding: the float
// M_e = 2^(22+e) + 2e * 2^(e-1) has spacing 2^(e-1) around it, so a + M_e rounds (nearest-even,
// exactly once) to M_e + rne(a / 2^(e-1)) * 2^(e-1), whose mantissa field is the code (it stays
// below 8, and its parity is the parity of rne(...) because 2e is even, so the FPU's ties-to-even
// is E2M1's). Clamping to 6 saturates (|q| >= 6 encodes as 7) and sends Inf and NaN (unsigned
// bits above Inf's) to 7 as float_to_e2m1 does; every |q| below 0.125 encodes as 0 like 0.125.
// tests/formats/test_nvfp4_encoder.cpp checks it against the scalar codec on every target (all
// 2^32 floats in its Slow suite).
constexpr uint32_t kE2m1Magic0 = 0x4A800000u;  // 2^22
constexpr uint32_t kE2m1Magic1 = 0x4B000002u;  // 2^23 + 2 * 1
constexpr uint32_t kE2m1Magic2 = 0x4B800004u;  // 2^24 + 4 * 2
constexpr uint32_t kE2m1Low = 0x3E000000u;     // 0.125
constexpr uint32_t kE2m1High = 0x40C00000u;    // 6.0

// M_e for clamped |q| bits a (see EncodeE2m1).
HWY_INLINE VU E2m1Magic(VU a) {
  const DU du;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // One lane permute indexed by the exponent field E = 124..129, which VPERMD reads modulo the
  // lane count (16: 12..15, 0, 1; 8: 4..7, 0, 1). Raw intrinsics: Highway's IndicesFromVec
  // wants indices below the lane count.
  alignas(64) static constexpr uint32_t kTable[16] = {
      kE2m1Magic1, kE2m1Magic2, 0, 0, kE2m1Magic0, kE2m1Magic0, kE2m1Magic0, kE2m1Magic0,
      0,           0,           0, 0, kE2m1Magic0, kE2m1Magic0, kE2m1Magic0, kE2m1Magic0};
  const VU index = hn::ShiftRight<23>(a);
#if HWY_TARGET <= HWY_AVX3
  return VU{_mm512_permutexvar_epi32(index.raw, hn::Load(du, kTable).raw)};
#else
  return VU{_mm256_permutevar8x32_epi32(hn::Load(du, kTable).raw, index.raw)};
#endif
#else
  // 2^(127+e) as bits, e in 0..2; (pow >> 22) - 254 = 2e.
  const VU pow = hn::Max(hn::And(a, hn::Set(du, 0x7F800000u)), hn::Set(du, 127u << 23));
  return hn::Add(hn::Add(pow, hn::ShiftRight<22>(pow)), hn::Set(du, (22u << 23) - 254u));
#endif
}

HWY_INLINE VU EncodeE2m1(VF q) {
  const DF df;
  const DU du;
  const VU bits = hn::BitCast(du, q);
  const VU a = hn::Max(hn::Min(hn::And(bits, hn::Set(du, qi::kAbsMask)), hn::Set(du, kE2m1High)),
                       hn::Set(du, kE2m1Low));
  const VU sum = hn::BitCast(du, hn::Add(hn::BitCast(df, a), hn::BitCast(df, E2m1Magic(a))));
  // Low 3 bits from the sum, the sign (bit 31 -> bit 3) from q.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  // Bitwise select (one VPTERNLOGD): bits 0..2 of sum, bit 3 of q >> 28 (nothing above it).
  return VU{
      _mm512_ternarylogic_epi32(hn::Set(du, 7u).raw, sum.raw, hn::ShiftRight<28>(bits).raw, 0xCA)};
#else
  return hn::OrAnd(hn::And(hn::ShiftRight<28>(bits), hn::Set(du, 8u)), sum, hn::Set(du, 7u));
#endif
}

// codes[i] = EncodeE2m1(x[i]) for x: [n] (the test hook quantize_internal::encode_e2m1_simd).
void EncodeE2m1Row(const float* HWY_RESTRICT x, int64_t n, uint8_t* HWY_RESTRICT codes) {
  const DF df;
  const DU8 d8;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    hn::StoreU(hn::TruncateTo(d8, EncodeE2m1(hn::LoadU(df, x + i))), d8, codes + i);
  }
  if (i < count) {
    HWY_ALIGN uint8_t buf[kMaxFloatLanes];
    hn::Store(hn::TruncateTo(d8, EncodeE2m1(LoadTail(x + i, count - i))), d8, buf);
    std::memcpy(codes + i, buf, count - i);
  }
}

// Encodes the 16 values at p with divisor vd and writes the 8 code bytes to qs.
HWY_INLINE void EncodeNvfp4Block(const float* HWY_RESTRICT p, VF vd, uint8_t* HWY_RESTRICT qs) {
  const DF df;
  const size_t N = hn::Lanes(df);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if (N == 16) {
    // One vector per block: pair lanes as u64 (code 2i+1 to bits 4..7) and narrow with VPMOVQB.
    const __m512i c = EncodeE2m1(hn::Div(hn::LoadU(df, p), vd)).raw;
    const __m128i bytes = _mm512_cvtepi64_epi8(_mm512_or_si512(c, _mm512_srli_epi64(c, 28)));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(qs), bytes);
    return;
  }
#endif
  for (size_t i = 0; i < 16; i += 2 * N) {
    PackNibbles2(EncodeE2m1(hn::Div(hn::LoadU(df, p + i), vd)),
                 EncodeE2m1(hn::Div(hn::LoadU(df, p + i + N), vd)), qs + i / 2);
  }
}

// Block scales of `count` <= Lanes consecutive blocks p: [count, 16], one vector evaluation of
// the nvfp4_block_scale recipe (quantize_rows.h): codes[j] = e4m3fn(amax_j / (6 * s2),
// satfinite) (0 for an all-zero block), divisors[j] = e4m3fn_to_float(codes[j]) * s2, or 1 where
// that is not positive (zeroed[j] = 0xFF then: the block's element codes must be all zero). All
// Lanes entries are written (unused lanes are zeroed). Returns whether no block is zeroed.
HWY_INLINE bool Nvfp4Scales(const float* HWY_RESTRICT p, size_t count, float tensor_scale,
                            uint8_t* HWY_RESTRICT codes, float* HWY_RESTRICT divisors,
                            uint8_t* HWY_RESTRICT zeroed) {
  constexpr size_t kG = BlockNvfp4::kBlockSize;
  const DF df;
  const DU du;
  const DU8 d8;
  if (!(tensor_scale > 0.0f)) {
    hn::StoreU(hn::Zero(d8), d8, codes);
    hn::StoreU(hn::Set(df, 1.0f), df, divisors);
    hn::StoreU(hn::Set(d8, 0xFF), d8, zeroed);
    return false;
  }
  HWY_ALIGN uint32_t bits[kMaxFloatLanes] = {};
  BlockAmaxBitsBatch<kG>(p, count, bits);
  const VF amax = AmaxFromBits(hn::Load(du, bits));
  const VF sb = hn::Div(amax, hn::Set(df, 6.0f * tensor_scale));
  const VU code = hn::IfThenZeroElse(hn::RebindMask(du, hn::Not(hn::Gt(amax, hn::Zero(df)))),
                                     EncodeMiniFloat<E4M3FN>(sb));
  const VF divisor = hn::Mul(DecodeE4m3fnMagnitude(code), hn::Set(df, tensor_scale));
  const auto positive = hn::Gt(divisor, hn::Zero(df));
  hn::StoreU(hn::TruncateTo(d8, code), d8, codes);
  hn::StoreU(hn::IfThenElse(positive, divisor, hn::Set(df, 1.0f)), df, divisors);
  hn::StoreU(hn::TruncateTo(d8, hn::VecFromMask(du, hn::RebindMask(du, hn::Not(positive)))), d8,
             zeroed);
  return hn::AllTrue(df, positive);
}

// Quantizes `count` whole blocks p: [count, 16] (count <= kNvfp4Chunk) in two passes: every
// block scale first (independent per batch, so the long amax -> scale -> divisor chains of
// neighbouring batches overlap), then the elements, re-read from L1. The element division stays
// an IEEE division x / div_b: a multiply by a reciprocal would round differently for some x.
constexpr size_t kNvfp4Chunk = 4 * kMaxFloatLanes;
HWY_INLINE void QuantizeNvfp4Chunk(const float* HWY_RESTRICT p, size_t count, float tensor_scale,
                                   BlockNvfp4* HWY_RESTRICT blocks) {
  constexpr size_t kG = BlockNvfp4::kBlockSize;
  const DF df;
  const size_t N = hn::Lanes(df);
  HWY_ALIGN uint8_t codes[kNvfp4Chunk];
  HWY_ALIGN float divisors[kNvfp4Chunk];
  HWY_ALIGN uint8_t zeroed[kNvfp4Chunk];
  bool none_zeroed = true;
  for (size_t j = 0; j < count; j += N) {
    none_zeroed &= Nvfp4Scales(p + kG * j, std::min(N, count - j), tensor_scale, codes + j,
                               divisors + j, zeroed + j);
  }
#pragma GCC unroll 4
  for (size_t j = 0; j < count; ++j) {
    blocks[j].scale_e4m3 = codes[j];
    EncodeNvfp4Block(p + kG * j, hn::Set(df, divisors[j]), blocks[j].qs);
  }
  if (none_zeroed) return;
  // A divisor that is not positive (all-zero or non-finite block, a block scale that underflowed
  // E4M3 or a product with s2 that did) gives all-zero codes, as in the reference.
  for (size_t j = 0; j < count; ++j) {
    if (zeroed[j]) std::memset(blocks[j].qs, 0, sizeof(blocks[j].qs));
  }
}

void QuantizeNvfp4(const float* HWY_RESTRICT x, int64_t n, float tensor_scale,
                   BlockNvfp4* HWY_RESTRICT blocks) {
  constexpr int64_t kG = BlockNvfp4::kBlockSize;
  if (!BlockTiles<kG>()) return quantize_row_nvfp4_ref(x, n, tensor_scale, blocks);
  const int64_t full = n / kG;
  constexpr int64_t kChunk = static_cast<int64_t>(kNvfp4Chunk);
  for (int64_t b = 0; b < full; b += kChunk) {
    QuantizeNvfp4Chunk(x + b * kG, static_cast<size_t>(std::min(kChunk, full - b)), tensor_scale,
                       blocks + b);
  }
  const int64_t tail = n - full * kG;
  if (tail > 0) {
    HWY_ALIGN float buf[kG] = {};
    std::memcpy(buf, x + full * kG, static_cast<size_t>(tail) * sizeof(float));
    QuantizeNvfp4Chunk(buf, 1, tensor_scale, blocks + full);
  }
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
