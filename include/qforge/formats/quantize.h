// Bulk quantization of FP32 matrices into every QuantFormat, and back. Scale recipes follow
// TensorRT-LLM / ModelOpt (docs/FORMATS.md has each one, op by op); the Highway kernels equal the
// scalar *_ref oracles bit for bit on every SIMD target.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/blocks.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/scalar.h"

namespace qforge {

// A quantized [rows, cols] matrix that owns its bytes.
//
// `data` holds `rows` rows of `row_bytes` bytes each (row r starts at r * row_bytes):
//   F32 / F16 / BF16                 cols values, little-endian
//   INT8_*                           cols int8 codes
//   FP8_PER_TENSOR/CHANNEL/BLOCK128  cols FP8 codes (spec.fp8)
//   INT4_GROUP                       padded_cols / g blocks of int4_block_bytes(g)  (BlockInt4<g>)
//   UINT4_GROUP                      padded_cols / g blocks of uint4_block_bytes(g) (BlockUint4<g>)
//   NVFP4                            padded_cols / 16 BlockNvfp4
//   MXFP4                            padded_cols / 32 BlockMxfp4
//   MXFP8                            padded_cols / 32 BlockMxfp8
// `scales` (FP32, dequantization multipliers):
//   INT8_PER_TENSOR, FP8_PER_TENSOR                 [1]
//   INT8_PER_CHANNEL, INT8_PER_TOKEN, FP8_PER_CHANNEL  [rows]
//   FP8_BLOCK128    [ceil(rows/128), ceil(cols/128)] row-major: tile (i, j) covers rows
//                   128i..128i+127 and cols 128j..128j+127 (the last tiles are partial)
//   all other formats: empty (block formats keep their scales inside the blocks)
// `tensor_scale` is the NVFP4 per-tensor FP32 scale (ModelOpt's weight_scale_2); 0 otherwise.
struct QuantizedMatrix {
  QuantSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;         // the true number of columns; dequantize returns exactly these
  int64_t padded_cols = 0;  // cols rounded up to a whole group (== cols for ungrouped formats)
  int64_t row_bytes = 0;    // bytes of one row in `data`
  std::vector<uint8_t> data;
  std::vector<float> scales;
  float tensor_scale = 0.0f;

  const uint8_t* row_data(int64_t row) const { return data.data() + row * row_bytes; }
  uint8_t* row_data(int64_t row) { return data.data() + row * row_bytes; }
  // Bytes of codes, blocks and scales together (what a checkpoint stores for this matrix).
  uint64_t storage_bytes() const;
};

// Quantizes x: [rows, cols] row-major (FP32) into `spec`. Runtime-dispatched Highway kernels,
// OpenMP over rows when the matrix is large. Errors: rows/cols <= 0 or too large, an invalid or
// unsupported spec, NaN/Inf in x (naming the first bad element), a group scale that overflows
// its F16 scale type, a value that overflows an F16/BF16 cast.
Result<QuantizedMatrix> quantize_matrix(const float* x, int64_t rows, int64_t cols,
                                        const QuantSpec& spec);
// The same in plain scalar C++ (one thread): the oracle the Highway kernels must equal bit for
// bit.
Result<QuantizedMatrix> quantize_matrix_ref(const float* x, int64_t rows, int64_t cols,
                                            const QuantSpec& spec);

// out: [rows, cols] row-major, exactly q.rows * q.cols floats (never the padding). Errors when q
// is internally inconsistent (sizes that do not match its shape and spec).
Status dequantize_matrix(const QuantizedMatrix& q, float* out);
Status dequantize_matrix_ref(const QuantizedMatrix& q, float* out);

// ---------------------------------------------------------------------------------------------
// Row kernels: the building blocks of the matrix functions, for callers that manage their own
// scales (calibrated activation scales, KV cache, GPTQ's column-by-column updates).
// Each one quantizes or dequantizes ONE row of n > 0 values; x must be finite (the matrix
// functions check that; a non-finite x gives unspecified codes, never a crash). Grouped rows
// are padded with zeros to a whole number of groups, so a quantized row of n values occupies
// ceil(n / g) blocks; dequantization writes exactly n values. The *_ref twins are the scalar
// oracles. A zero scale (or an all-zero group) gives all-zero codes.
// ---------------------------------------------------------------------------------------------

// max |x[i]| over x: [n]. +Inf if x holds an Inf, NaN if it holds a NaN.
float row_amax(const float* x, int64_t n);
float row_amax_ref(const float* x, int64_t n);

// codes[i] = encode_fp8(x[i] / scale, satfinite); fp8 is E4M3FN, E4M3FNUZ, E5M2 or E5M2FNUZ.
// x: [n], codes: [n].
void quantize_row_fp8(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes);
void quantize_row_fp8_ref(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes);
// out[i] = decode_fp8(codes[i]) * scale.
void dequantize_row_fp8(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8, float* out);
void dequantize_row_fp8_ref(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                            float* out);

// codes[i] = clamp(rne(x[i] / scale), -127, 127); out[i] = codes[i] * scale.
void quantize_row_int8(const float* x, int64_t n, float scale, int8_t* codes);
void quantize_row_int8_ref(const float* x, int64_t n, float scale, int8_t* codes);
void dequantize_row_int8(const int8_t* codes, int64_t n, float scale, float* out);
void dequantize_row_int8_ref(const int8_t* codes, int64_t n, float scale, float* out);

// Symmetric INT4 groups of g = `group_size` values (even, >= 2; anything else is a programmer
// error caught by QF_CHECK); blocks: ceil(n / g) * int4_block_bytes(g) bytes laid out as
// BlockInt4<g>. Scale recipe: docs/FORMATS.md "INT4_GROUP". The SIMD kernels need g to be a
// multiple of the vector length (every power of two >= 16 is) and use the reference otherwise.
void quantize_row_int4(const float* x, int64_t n, int group_size, ScaleType scale_type,
                       uint8_t* blocks);
void quantize_row_int4_ref(const float* x, int64_t n, int group_size, ScaleType scale_type,
                           uint8_t* blocks);
void dequantize_row_int4(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                         float* out);
void dequantize_row_int4_ref(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                             float* out);

// Asymmetric UINT4 groups; blocks: ceil(n / g) * uint4_block_bytes(g) bytes (BlockUint4<g>).
void quantize_row_uint4(const float* x, int64_t n, int group_size, ScaleType scale_type,
                        uint8_t* blocks);
void quantize_row_uint4_ref(const float* x, int64_t n, int group_size, ScaleType scale_type,
                            uint8_t* blocks);
void dequantize_row_uint4(const uint8_t* blocks, int64_t n, int group_size, ScaleType scale_type,
                          float* out);
void dequantize_row_uint4_ref(const uint8_t* blocks, int64_t n, int group_size,
                              ScaleType scale_type, float* out);

// NVFP4 given the per-tensor scale s2 (= nvfp4_tensor_scale(amax of the whole tensor));
// blocks: [ceil(n / 16)].
float nvfp4_tensor_scale(float tensor_amax);
void quantize_row_nvfp4(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks);
void quantize_row_nvfp4_ref(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks);
void dequantize_row_nvfp4(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out);
void dequantize_row_nvfp4_ref(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out);

// MXFP4; blocks: [ceil(n / 32)].
void quantize_row_mxfp4(const float* x, int64_t n, BlockMxfp4* blocks);
void quantize_row_mxfp4_ref(const float* x, int64_t n, BlockMxfp4* blocks);
void dequantize_row_mxfp4(const BlockMxfp4* blocks, int64_t n, float* out);
void dequantize_row_mxfp4_ref(const BlockMxfp4* blocks, int64_t n, float* out);

// MXFP8 with E4M3FN (or E5M2) elements; blocks: [ceil(n / 32)].
void quantize_row_mxfp8(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks);
void quantize_row_mxfp8_ref(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks);
void dequantize_row_mxfp8(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out);
void dequantize_row_mxfp8_ref(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out);

}  // namespace qforge
