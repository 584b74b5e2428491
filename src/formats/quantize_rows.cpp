// Runtime dispatch of the bulk quantization row kernels (quantize_rows-inl.h,
// quantize_rows_int4-inl.h, quantize_rows_fp4-inl.h) over every Highway target compiled in, and
// the public entry points of include/qforge/formats/quantize.h that use them.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "formats/quantize_rows.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "formats/quantize_rows-inl.h"
#include "formats/quantize_rows_fp4-inl.h"
#include "formats/quantize_rows_int4-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace qforge {

HWY_EXPORT(AmaxBits);
HWY_EXPORT(QuantizeFp8);
HWY_EXPORT(DequantizeFp8);
HWY_EXPORT(QuantizeInt8);
HWY_EXPORT(DequantizeInt8);
HWY_EXPORT(QuantizeInt4);
HWY_EXPORT(DequantizeInt4);
HWY_EXPORT(QuantizeUint4);
HWY_EXPORT(DequantizeUint4);
HWY_EXPORT(QuantizeNvfp4);
HWY_EXPORT(DequantizeNvfp4);
HWY_EXPORT(QuantizeMxfp4);
HWY_EXPORT(DequantizeMxfp4);
HWY_EXPORT(QuantizeMxfp8);
HWY_EXPORT(DequantizeMxfp8);
HWY_EXPORT(EncodeE2m1Row);

namespace quantize_internal {
namespace {

// Each wrapper re-reads the dispatch table, so a test that forces a target (ScopedSimdTarget)
// switches every kernel at once.
uint32_t amax_bits_simd(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(AmaxBits)(x, n);
}
void quantize_fp8_simd(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes) {
  HWY_DYNAMIC_DISPATCH(QuantizeFp8)(x, n, scale, fp8, codes);
}
void dequantize_fp8_simd(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                         float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeFp8)(codes, n, scale, fp8, out);
}
void quantize_int8_simd(const float* x, int64_t n, float scale, int8_t* codes) {
  HWY_DYNAMIC_DISPATCH(QuantizeInt8)(x, n, scale, codes);
}
void dequantize_int8_simd(const int8_t* codes, int64_t n, float scale, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeInt8)(codes, n, scale, out);
}
uint32_t quantize_int4_simd(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  return HWY_DYNAMIC_DISPATCH(QuantizeInt4)(x, n, g, st, blocks);
}
void dequantize_int4_simd(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeInt4)(blocks, n, g, st, out);
}
uint32_t quantize_uint4_simd(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks) {
  return HWY_DYNAMIC_DISPATCH(QuantizeUint4)(x, n, g, st, blocks);
}
void dequantize_uint4_simd(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeUint4)(blocks, n, g, st, out);
}
void quantize_nvfp4_simd(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks) {
  HWY_DYNAMIC_DISPATCH(QuantizeNvfp4)(x, n, tensor_scale, blocks);
}
void dequantize_nvfp4_simd(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeNvfp4)(blocks, n, tensor_scale, out);
}
uint32_t quantize_mxfp4_simd(const float* x, int64_t n, BlockMxfp4* blocks) {
  return HWY_DYNAMIC_DISPATCH(QuantizeMxfp4)(x, n, blocks);
}
void dequantize_mxfp4_simd(const BlockMxfp4* blocks, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeMxfp4)(blocks, n, out);
}
uint32_t quantize_mxfp8_simd(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks) {
  return HWY_DYNAMIC_DISPATCH(QuantizeMxfp8)(x, n, fp8, blocks);
}
void dequantize_mxfp8_simd(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeMxfp8)(blocks, n, fp8, out);
}

}  // namespace

void encode_e2m1_simd(const float* x, int64_t n, uint8_t* codes) {
  HWY_DYNAMIC_DISPATCH(EncodeE2m1Row)(x, n, codes);
}

const RowKernels& simd_row_kernels() {
  static const RowKernels kernels = {
      .quantize_name = "quantize_matrix",
      .dequantize_name = "dequantize_matrix",
      .parallel = true,
      .fused_validation = true,
      .amax_bits = amax_bits_simd,
      .quantize_fp8 = quantize_fp8_simd,
      .dequantize_fp8 = dequantize_fp8_simd,
      .quantize_int8 = quantize_int8_simd,
      .dequantize_int8 = dequantize_int8_simd,
      .quantize_int4 = quantize_int4_simd,
      .dequantize_int4 = dequantize_int4_simd,
      .quantize_uint4 = quantize_uint4_simd,
      .dequantize_uint4 = dequantize_uint4_simd,
      .quantize_nvfp4 = quantize_nvfp4_simd,
      .dequantize_nvfp4 = dequantize_nvfp4_simd,
      .quantize_mxfp4 = quantize_mxfp4_simd,
      .dequantize_mxfp4 = dequantize_mxfp4_simd,
      .quantize_mxfp8 = quantize_mxfp8_simd,
      .dequantize_mxfp8 = dequantize_mxfp8_simd,
  };
  return kernels;
}

}  // namespace quantize_internal

namespace qi = quantize_internal;

Result<QuantizedMatrix> quantize_matrix(const float* x, int64_t rows, int64_t cols,
                                        const QuantSpec& spec) {
  return qi::quantize_matrix_with(qi::simd_row_kernels(), x, rows, cols, spec);
}

Status dequantize_matrix(const QuantizedMatrix& q, float* out) {
  return qi::dequantize_matrix_with(qi::simd_row_kernels(), q, out);
}

float row_amax(const float* x, int64_t n) {
  return std::bit_cast<float>(HWY_DYNAMIC_DISPATCH(AmaxBits)(x, n));
}

void quantize_row_fp8(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes) {
  HWY_DYNAMIC_DISPATCH(QuantizeFp8)(x, n, scale, fp8, codes);
}
void dequantize_row_fp8(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                        float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeFp8)(codes, n, scale, fp8, out);
}
void quantize_row_int8(const float* x, int64_t n, float scale, int8_t* codes) {
  HWY_DYNAMIC_DISPATCH(QuantizeInt8)(x, n, scale, codes);
}
void dequantize_row_int8(const int8_t* codes, int64_t n, float scale, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeInt8)(codes, n, scale, out);
}
void quantize_row_int4(const float* x, int64_t n, int group_size, ScaleType scale_type,
                       uint8_t* blocks) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  HWY_DYNAMIC_DISPATCH(QuantizeInt4)(x, n, group_size, scale_type, blocks);
}
void dequantize_row_int4(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                         float* out) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  HWY_DYNAMIC_DISPATCH(DequantizeInt4)(blocks, n, group_size, scale_type, out);
}
void quantize_row_uint4(const float* x, int64_t n, int group_size, ScaleType scale_type,
                        uint8_t* blocks) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  HWY_DYNAMIC_DISPATCH(QuantizeUint4)(x, n, group_size, scale_type, blocks);
}
void dequantize_row_uint4(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                          float* out) {
  QF_CHECK(group_size >= 2 && group_size % 2 == 0 && n >= 0);
  HWY_DYNAMIC_DISPATCH(DequantizeUint4)(blocks, n, group_size, scale_type, out);
}
float nvfp4_tensor_scale(float tensor_amax) {
  return qi::nvfp4_tensor_scale_recipe(tensor_amax);
}
void quantize_row_nvfp4(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks) {
  HWY_DYNAMIC_DISPATCH(QuantizeNvfp4)(x, n, tensor_scale, blocks);
}
void dequantize_row_nvfp4(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeNvfp4)(blocks, n, tensor_scale, out);
}
void quantize_row_mxfp4(const float* x, int64_t n, BlockMxfp4* blocks) {
  HWY_DYNAMIC_DISPATCH(QuantizeMxfp4)(x, n, blocks);
}
void dequantize_row_mxfp4(const BlockMxfp4* blocks, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeMxfp4)(blocks, n, out);
}
void quantize_row_mxfp8(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks) {
  HWY_DYNAMIC_DISPATCH(QuantizeMxfp8)(x, n, fp8, blocks);
}
void dequantize_row_mxfp8(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeMxfp8)(blocks, n, fp8, out);
}

}  // namespace qforge
#endif  // HWY_ONCE
