// Scalar reference (oracle) row kernels for every quantized format, in plain C++ on top of the
// scalar codecs of scalar.h. The Highway kernels in quantize_rows-inl.h must equal these bit for
// bit; the recipes themselves live in quantize_rows.h and docs/FORMATS.md.
#include <algorithm>
#include <cstring>
#include <vector>

#include "formats/quantize_rows.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace quantize_internal {

uint8_t encode_fp8_ref(ScalarFormat fp8, float x) {
  switch (fp8) {
    case ScalarFormat::E4M3FN:
      return float_to_e4m3fn(x, Saturation::kSatFinite);
    case ScalarFormat::E5M2:
      return float_to_e5m2(x, Saturation::kSatFinite);
    default:
      return static_cast<uint8_t>(encode_scalar(fp8, x, Saturation::kSatFinite));
  }
}

float decode_fp8_ref(ScalarFormat fp8, uint8_t code) {
  switch (fp8) {
    case ScalarFormat::E4M3FN:
      return e4m3fn_to_float(code);
    case ScalarFormat::E5M2:
      return e5m2_to_float(code);
    default:
      return decode_scalar(fp8, code);
  }
}

uint32_t amax_bits_ref(const float* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, abs_bits(x[i]));
  return m;
}

namespace {

// The g values of group `group` of a row of n, zero-padded past the end of the row.
// x: [n]; group: [g].
void load_group(const float* x, int64_t n, int64_t g, int64_t group, float* out) {
  const int64_t begin = group * g;
  const int64_t count = std::min(g, n - begin);
  std::memcpy(out, x + begin, static_cast<size_t>(count) * sizeof(float));
  std::fill(out + count, out + g, 0.0f);
}

int64_t group_count(int64_t n, int64_t g) {
  return (n + g - 1) / g;
}

void pack_nibbles(const uint8_t* codes, int64_t count, uint8_t* qs) {
  for (int64_t i = 0; i < count; i += 2) {
    qs[i / 2] = static_cast<uint8_t>((codes[i] & 0xF) | ((codes[i + 1] & 0xF) << 4));
  }
}

void quantize_fp8_row(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes) {
  if (!(scale > 0.0f)) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return;
  }
  for (int64_t i = 0; i < n; ++i) codes[i] = encode_fp8_ref(fp8, x[i] / scale);
}

void dequantize_fp8_row(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                        float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = decode_fp8_ref(fp8, codes[i]) * scale;
}

void quantize_int8_row(const float* x, int64_t n, float scale, int8_t* codes) {
  if (!(scale > 0.0f)) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return;
  }
  for (int64_t i = 0; i < n; ++i) codes[i] = quantize_int8(x[i], scale);
}

void dequantize_int8_row(const int8_t* codes, int64_t n, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = dequantize_int(codes[i], scale);
}

uint32_t quantize_int4_row(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  std::vector<float> v(static_cast<size_t>(g));
  std::vector<uint8_t> codes(static_cast<size_t>(g));
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < group_count(n, g); ++b) {
    load_group(x, n, g, b, v.data());
    const uint32_t bits = amax_bits_ref(v.data(), g);
    row_bits = std::max(row_bits, bits);
    const GroupScale s = int4_group_scale(amax_from_bits(bits), st);
    uint8_t* block = blocks + b * int4_block_bytes(g);
    std::memcpy(block, &s.code, sizeof(s.code));
    for (int i = 0; i < g; ++i) {
      const int q = (s.value > 0.0f && bits < kInfBits) ? quantize_int4(v[i], s.value) : 0;
      codes[i] = static_cast<uint8_t>(q & 0xF);
    }
    pack_nibbles(codes.data(), g, block + 2);
  }
  return row_bits;
}

void dequantize_int4_row(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* block = blocks + (i / g) * int4_block_bytes(g);
    uint16_t code;
    std::memcpy(&code, block, sizeof(code));
    const int q = (nibble(block + 2, i % g) ^ 8) - 8;  // sign-extend the 4-bit two's complement
    out[i] = dequantize_int(q, decode_group_scale(code, st));
  }
}

uint32_t quantize_uint4_row(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  std::vector<float> v(static_cast<size_t>(g));
  std::vector<uint8_t> codes(static_cast<size_t>(g));
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < group_count(n, g); ++b) {
    load_group(x, n, g, b, v.data());
    const uint32_t bits = amax_bits_ref(v.data(), g);
    row_bits = std::max(row_bits, bits);
    float lo = 0.0f;
    float hi = 0.0f;
    if (bits < kInfBits) {
      for (int i = 0; i < g; ++i) {
        lo = std::min(lo, v[i]);
        hi = std::max(hi, v[i]);
      }
    }
    const Uint4Params p = uint4_group_params(lo, hi, st);
    uint8_t* block = blocks + b * uint4_block_bytes(g);
    std::memcpy(block, &p.scale_code, sizeof(p.scale_code));
    block[2] = static_cast<uint8_t>(p.zero);
    block[3] = 0;
    for (int i = 0; i < g; ++i) {
      codes[i] = (p.scale > 0.0f && bits < kInfBits) ? quantize_uint4(v[i], p.scale, p.zero) : 0;
    }
    pack_nibbles(codes.data(), g, block + 4);
  }
  return row_bits;
}

void dequantize_uint4_row(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* block = blocks + (i / g) * uint4_block_bytes(g);
    uint16_t code;
    std::memcpy(&code, block, sizeof(code));
    out[i] = dequantize_int(nibble(block + 4, i % g), decode_group_scale(code, st), block[2]);
  }
}

void quantize_nvfp4_row(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks) {
  constexpr int kG = BlockNvfp4::kBlockSize;
  float v[kG];
  uint8_t codes[kG];
  for (int64_t b = 0; b < group_count(n, kG); ++b) {
    load_group(x, n, kG, b, v);
    const Nvfp4BlockScale s = nvfp4_block_scale(amax_from_bits(amax_bits_ref(v, kG)), tensor_scale);
    for (int i = 0; i < kG; ++i) codes[i] = s.divisor > 0.0f ? float_to_e2m1(v[i] / s.divisor) : 0;
    blocks[b].scale_e4m3 = s.code;
    pack_nibbles(codes, kG, blocks[b].qs);
  }
}

void dequantize_nvfp4_row(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const BlockNvfp4& block = blocks[i / BlockNvfp4::kBlockSize];
    const float divisor = nvfp4_block_divisor(block.scale_e4m3, tensor_scale);
    out[i] = e2m1_to_float(nibble(block.qs, i % BlockNvfp4::kBlockSize)) * divisor;
  }
}

uint32_t quantize_mxfp4_row(const float* x, int64_t n, BlockMxfp4* blocks) {
  constexpr int kG = BlockMxfp4::kBlockSize;
  float v[kG];
  uint8_t codes[kG];
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < group_count(n, kG); ++b) {
    load_group(x, n, kG, b, v);
    const uint32_t bits = amax_bits_ref(v, kG);
    row_bits = std::max(row_bits, bits);
    const uint8_t k = e8m0_scale_for_amax(amax_from_bits(bits), 2);
    const float scale = e8m0_to_float(k);
    for (int i = 0; i < kG; ++i) codes[i] = bits < kInfBits ? float_to_e2m1(v[i] / scale) : 0;
    blocks[b].scale_e8m0 = k;
    pack_nibbles(codes, kG, blocks[b].qs);
  }
  return row_bits;
}

void dequantize_mxfp4_row(const BlockMxfp4* blocks, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const BlockMxfp4& block = blocks[i / BlockMxfp4::kBlockSize];
    out[i] = e2m1_to_float(nibble(block.qs, i % BlockMxfp4::kBlockSize)) *
             e8m0_to_float(block.scale_e8m0);
  }
}

uint32_t quantize_mxfp8_row(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks) {
  constexpr int kG = BlockMxfp8::kBlockSize;
  float v[kG];
  uint32_t row_bits = 0;
  for (int64_t b = 0; b < group_count(n, kG); ++b) {
    load_group(x, n, kG, b, v);
    const uint32_t bits = amax_bits_ref(v, kG);
    row_bits = std::max(row_bits, bits);
    const uint8_t k = e8m0_scale_for_amax(amax_from_bits(bits), mx_element_emax(fp8));
    const float scale = e8m0_to_float(k);
    for (int i = 0; i < kG; ++i) {
      blocks[b].qs[i] = bits < kInfBits ? encode_fp8_ref(fp8, v[i] / scale) : 0;
    }
    blocks[b].scale_e8m0 = k;
  }
  return row_bits;
}

void dequantize_mxfp8_row(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const BlockMxfp8& block = blocks[i / BlockMxfp8::kBlockSize];
    out[i] =
        decode_fp8_ref(fp8, block.qs[i % BlockMxfp8::kBlockSize]) * e8m0_to_float(block.scale_e8m0);
  }
}

}  // namespace

uint32_t quantize_int4_row_ref(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  return quantize_int4_row(x, n, g, st, blocks);
}
uint32_t quantize_uint4_row_ref(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  return quantize_uint4_row(x, n, g, st, blocks);
}

const RowKernels& ref_row_kernels() {
  static const RowKernels kernels = {
      .quantize_name = "quantize_matrix_ref",
      .dequantize_name = "dequantize_matrix_ref",
      .parallel = false,
      .fused_validation = false,
      .amax_bits = amax_bits_ref,
      .quantize_fp8 = quantize_fp8_row,
      .dequantize_fp8 = dequantize_fp8_row,
      .quantize_int8 = quantize_int8_row,
      .dequantize_int8 = dequantize_int8_row,
      .quantize_int4 = quantize_int4_row,
      .dequantize_int4 = dequantize_int4_row,
      .quantize_uint4 = quantize_uint4_row,
      .dequantize_uint4 = dequantize_uint4_row,
      .quantize_nvfp4 = quantize_nvfp4_row,
      .dequantize_nvfp4 = dequantize_nvfp4_row,
      .quantize_mxfp4 = quantize_mxfp4_row,
      .dequantize_mxfp4 = dequantize_mxfp4_row,
      .quantize_mxfp8 = quantize_mxfp8_row,
      .dequantize_mxfp8 = dequantize_mxfp8_row,
  };
  return kernels;
}

}  // namespace quantize_internal

namespace qi = quantize_internal;

Result<QuantizedMatrix> quantize_matrix_ref(const float* x, int64_t rows, int64_t cols,
                                            const QuantSpec& spec) {
  return qi::quantize_matrix_with(qi::ref_row_kernels(), x, rows, cols, spec);
}

Status dequantize_matrix_ref(const QuantizedMatrix& q, float* out) {
  return qi::dequantize_matrix_with(qi::ref_row_kernels(), q, out);
}

float row_amax_ref(const float* x, int64_t n) {
  const uint32_t bits = qi::amax_bits_ref(x, n);
  return std::bit_cast<float>(bits);
}

void quantize_row_fp8_ref(const float* x, int64_t n, float scale, ScalarFormat fp8,
                          uint8_t* codes) {
  qi::ref_row_kernels().quantize_fp8(x, n, scale, fp8, codes);
}
void dequantize_row_fp8_ref(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                            float* out) {
  qi::ref_row_kernels().dequantize_fp8(codes, n, scale, fp8, out);
}
void quantize_row_int8_ref(const float* x, int64_t n, float scale, int8_t* codes) {
  qi::ref_row_kernels().quantize_int8(x, n, scale, codes);
}
void dequantize_row_int8_ref(const int8_t* codes, int64_t n, float scale, float* out) {
  qi::ref_row_kernels().dequantize_int8(codes, n, scale, out);
}
void quantize_row_int4_ref(const float* x, int64_t n, int group_size, ScaleType scale_type,
                           uint8_t* blocks) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  qi::quantize_int4_row_ref(x, n, group_size, scale_type, blocks);
}
void dequantize_row_int4_ref(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                             float* out) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  qi::ref_row_kernels().dequantize_int4(blocks, n, group_size, scale_type, out);
}
void quantize_row_uint4_ref(const float* x, int64_t n, int group_size, ScaleType scale_type,
                            uint8_t* blocks) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  qi::quantize_uint4_row_ref(x, n, group_size, scale_type, blocks);
}
void dequantize_row_uint4_ref(const uint8_t* blocks, int64_t n, int group_size,
                              ScaleType scale_type, float* out) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  qi::ref_row_kernels().dequantize_uint4(blocks, n, group_size, scale_type, out);
}
void quantize_row_nvfp4_ref(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks) {
  qi::ref_row_kernels().quantize_nvfp4(x, n, tensor_scale, blocks);
}
void dequantize_row_nvfp4_ref(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out) {
  qi::ref_row_kernels().dequantize_nvfp4(blocks, n, tensor_scale, out);
}
void quantize_row_mxfp4_ref(const float* x, int64_t n, BlockMxfp4* blocks) {
  qi::ref_row_kernels().quantize_mxfp4(x, n, blocks);
}
void dequantize_row_mxfp4_ref(const BlockMxfp4* blocks, int64_t n, float* out) {
  qi::ref_row_kernels().dequantize_mxfp4(blocks, n, out);
}
void quantize_row_mxfp8_ref(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks) {
  qi::ref_row_kernels().quantize_mxfp8(x, n, fp8, blocks);
}
void dequantize_row_mxfp8_ref(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out) {
  qi::ref_row_kernels().dequantize_mxfp8(blocks, n, fp8, out);
}

}  // namespace qforge
