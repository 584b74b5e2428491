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

// Calls fn(pointer to kG values, block index) for every block of a row x: [n], zero-padding
// the last, partial block in a stack buffer.
template <size_t kG, class Fn>
HWY_INLINE void ForEachBlock(const float* HWY_RESTRICT x, int64_t n, const Fn& fn) {
  const int64_t full = n / static_cast<int64_t>(kG);
  for (int64_t b = 0; b < full; ++b) fn(x + b * static_cast<int64_t>(kG), b);
  const int64_t tail = n - full * static_cast<int64_t>(kG);
  if (tail > 0) {
    HWY_ALIGN float buf[kG] = {};
    std::memcpy(buf, x + full * static_cast<int64_t>(kG), static_cast<size_t>(tail) * sizeof(float));
    fn(buf, full);
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

void QuantizeNvfp4(const float* HWY_RESTRICT x, int64_t n, float tensor_scale,
                   BlockNvfp4* HWY_RESTRICT blocks) {
  constexpr size_t kG = BlockNvfp4::kBlockSize;
  if (!BlockTiles<kG>()) return quantize_row_nvfp4_ref(x, n, tensor_scale, blocks);
  const DF df;
  const size_t N = hn::Lanes(df);
  ForEachBlock<kG>(x, n, [&](const float* p, int64_t b) {
    BlockNvfp4& block = blocks[b];
    const qi::Nvfp4BlockScale s =
        qi::nvfp4_block_scale(qi::amax_from_bits(BlockAmaxBits<kG>(p)), tensor_scale);
    block.scale_e4m3 = s.code;
    if (!(s.divisor > 0.0f)) {
      std::memset(block.qs, 0, sizeof(block.qs));
      return;
    }
    const VF vd = hn::Set(df, s.divisor);
    for (size_t i = 0; i < kG; i += N) {
      PackNibbles(EncodeMiniFloat<E2M1>(hn::Div(hn::LoadU(df, p + i), vd)), block.qs + i / 2);
    }
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
// bit-identical: 2^-e is exact for every E8M0 scale (2^-127..2^127), and x * 2^-e and x / 2^e
// are both the correctly rounded value of the same real number.

HWY_INLINE float MxInverseScale(uint8_t code) {
  return 1.0f / e8m0_to_float(code);
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
  ForEachBlock<kG>(x, n, [&](const float* p, int64_t b) {
    BlockMxfp4& block = blocks[b];
    const uint32_t bits = BlockAmaxBits<kG>(p);
    row_bits = std::max(row_bits, bits);
    block.scale_e8m0 = e8m0_scale_for_amax(qi::amax_from_bits(bits), 2);
    if (bits >= qi::kInfBits) {
      std::memset(block.qs, 0, sizeof(block.qs));
      return;
    }
    const VF inv = hn::Set(df, MxInverseScale(block.scale_e8m0));
    for (size_t i = 0; i < kG; i += N) {
      PackNibbles(EncodeMiniFloat<E2M1>(hn::Mul(hn::LoadU(df, p + i), inv)), block.qs + i / 2);
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
  ForEachBlock<kG>(x, n, [&](const float* p, int64_t b) {
    BlockMxfp8& block = blocks[b];
    const uint32_t bits = BlockAmaxBits<kG>(p);
    row_bits = std::max(row_bits, bits);
    block.scale_e8m0 = e8m0_scale_for_amax(qi::amax_from_bits(bits), emax);
    if (bits >= qi::kInfBits) {
      std::memset(block.qs, 0, sizeof(block.qs));
      return;
    }
    const VF inv = hn::Set(df, MxInverseScale(block.scale_e8m0));
    for (size_t i = 0; i < kG; i += N) {
      const VU c = EncodeMiniFloat<Fmt>(hn::Mul(hn::LoadU(df, p + i), inv));
      hn::StoreU(hn::TruncateTo(d8, c), d8, block.qs + i);
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
