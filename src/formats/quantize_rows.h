// Internal interface of the bulk quantizers (include/qforge/formats/quantize.h): the scale
// recipes shared by the scalar reference and the Highway kernels, the table of row kernels, and
// the one matrix driver both paths run through. docs/FORMATS.md describes each recipe.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "qforge/core/error.h"
#include "qforge/formats/blocks.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"

// Blocks store multi-byte scales little-endian; the kernels memcpy them from host order.
static_assert(std::endian::native == std::endian::little,
              "qforge block formats need little-endian");

namespace qforge::quantize_internal {

// Bit pattern of |x| as an integer: ordered like |x| for finite x, and >= kInfBits exactly when x
// is Inf or NaN. A max over these bits gives the amax AND the finiteness check in one pass.
inline constexpr uint32_t kAbsMask = 0x7FFFFFFFu;
inline constexpr uint32_t kInfBits = 0x7F800000u;

inline uint32_t abs_bits(float x) {
  return std::bit_cast<uint32_t>(x) & kAbsMask;
}
// The amax a recipe should use for a max-abs bit pattern: non-finite groups (rejected later by
// the driver) are treated as all-zero so that no codec ever sees a NaN.
inline float amax_from_bits(uint32_t bits) {
  return bits >= kInfBits ? 0.0f : std::bit_cast<float>(bits);
}

// ---- Scale recipes. Each is the exact op sequence both the ref and the SIMD path execute. ----

// INT8 symmetric (narrow range): scale = amax / 127; codes = clamp(rne(x / scale), -127, 127).
inline float int8_scale(float amax) {
  return amax / 127.0f;
}
// FP8: scale = amax / max_finite(kind); codes = encode(x / scale, satfinite).
inline float fp8_max_finite(ScalarFormat fp8) {
  return static_cast<float>(scalar_format_info(fp8).max_finite);
}
inline float fp8_scale(float amax, ScalarFormat fp8) {
  return amax / fp8_max_finite(fp8);
}

// A group scale as stored (F16/BF16 bits) and as used (the decoded value): codes are computed
// with the decoded value so that dequantization inverts exactly what quantization did.
struct GroupScale {
  uint16_t code;
  float value;
};
inline GroupScale encode_group_scale(float scale, ScaleType type) {
  if (type == ScaleType::F16) {
    const uint16_t code = float_to_f16(scale);
    return {code, f16_to_float(code)};
  }
  const uint16_t code = float_to_bf16(scale);
  return {code, bf16_to_float(code)};
}
inline bool group_scale_overflowed(uint16_t code, ScaleType type) {
  return type == ScaleType::F16 ? (code & 0x7FFFu) >= 0x7C00u : (code & 0x7FFFu) >= 0x7F80u;
}
inline float decode_group_scale(uint16_t code, ScaleType type) {
  return type == ScaleType::F16 ? f16_to_float(code) : bf16_to_float(code);
}

// INT4 symmetric: scale = amax / 7, rounded to the scale type; codes = clamp(rne(x / s'), -8, 7)
// where s' is the decoded stored scale (RTN never produces -8).
inline GroupScale int4_group_scale(float amax, ScaleType type) {
  return encode_group_scale(amax / 7.0f, type);
}

// UINT4 asymmetric over [lo, hi] = [min(0, min x), max(0, max x)] (zero always representable,
// as GPTQ does): scale = (hi - lo) / 15 rounded to the scale type; zero = clamp(rne(-lo / s'),
// 0, 15); codes = clamp(rne(x / s') + zero, 0, 15).
struct Uint4Params {
  uint16_t scale_code;
  float scale;
  int zero;
};
inline Uint4Params uint4_group_params(float min_x, float max_x, ScaleType type) {
  // "+ 0.0f" turns -0 into +0, so that the SIMD path (whose Min/Max may keep either zero)
  // and the scalar path store the same scale bits for an all-zero group.
  const float lo = std::min(min_x, 0.0f) + 0.0f;
  const float hi = std::max(max_x, 0.0f) + 0.0f;
  const GroupScale s = encode_group_scale((hi - lo) / 15.0f, type);
  int zero = 0;
  if (s.value > 0.0f && std::isfinite(s.value)) {
    zero = std::clamp(static_cast<int>(std::nearbyint(-lo / s.value)), 0, 15);
  }
  return {s.code, s.value, zero};
}

// NVFP4 (ModelOpt / TensorRT-LLM two-level scaling):
//   s2      = amax_tensor / (6 * 448)                       (FP32, per tensor)
//   code_b  = e4m3fn(amax_block / (6 * s2), satfinite)      (per 16 elements)
//   div_b   = e4m3fn_to_float(code_b) * s2
//   element = e2m1(x / div_b)                 dequantized: e2m1_to_float(code) * div_b
// s2 == 0 or amax_block == 0 gives code_b = 0, div_b = 0 and all-zero element codes.
inline float nvfp4_tensor_scale_recipe(float amax) {
  return amax / (6.0f * 448.0f);
}
struct Nvfp4BlockScale {
  uint8_t code;
  float divisor;
};
inline float nvfp4_block_divisor(uint8_t code, float tensor_scale) {
  return e4m3fn_to_float(code) * tensor_scale;
}
inline Nvfp4BlockScale nvfp4_block_scale(float amax_block, float tensor_scale) {
  if (!(tensor_scale > 0.0f) || !(amax_block > 0.0f)) return {0, 0.0f};
  const uint8_t code = float_to_e4m3fn(amax_block / (6.0f * tensor_scale), Saturation::kSatFinite);
  return {code, nvfp4_block_divisor(code, tensor_scale)};
}

// OCP MX: scale code = e8m0_scale_for_amax(amax, emax_elem), scale = 2^(code - 127);
// element = encode(x / scale, satfinite). emax_elem: 2 (E2M1), 8 (E4M3FN), 15 (E5M2).
inline int mx_element_emax(ScalarFormat element) {
  switch (element) {
    case ScalarFormat::E2M1:
      return 2;
    case ScalarFormat::E5M2:
      return 15;
    default:
      return 8;
  }
}

// Encodes / decodes one FP8 element of any supported kind (the reference codecs).
uint8_t encode_fp8_ref(ScalarFormat fp8, float x);
float decode_fp8_ref(ScalarFormat fp8, uint8_t code);

// Decode tables built from the scalar codecs: 256 floats per FP8 kind, 16 for E2M1.
const float* fp8_decode_table(ScalarFormat fp8);
const float* e2m1_decode_table();

// Reads the `i`th 4-bit code of a low-nibble-first packed array.
inline uint8_t nibble(const uint8_t* qs, int64_t i) {
  return (i & 1) ? static_cast<uint8_t>(qs[i >> 1] >> 4) : static_cast<uint8_t>(qs[i >> 1] & 0xF);
}

// ---- Row kernels. Quantizers of grouped formats return the max-abs bits of the row (see
// abs_bits) so that the driver can validate while quantizing. ----
struct RowKernels {
  const char* quantize_name;    // "quantize_matrix" / "quantize_matrix_ref", for error messages
  const char* dequantize_name;  // "dequantize_matrix" / "dequantize_matrix_ref"
  bool parallel;                // may run rows on OpenMP threads
  // Grouped quantizers tolerate non-finite x (garbage codes, no UB), so the driver can skip
  // the separate validation pass and check their returned bits instead.
  bool fused_validation;
  uint32_t (*amax_bits)(const float* x, int64_t n);
  void (*quantize_fp8)(const float* x, int64_t n, float scale, ScalarFormat fp8, uint8_t* codes);
  void (*dequantize_fp8)(const uint8_t* codes, int64_t n, float scale, ScalarFormat fp8,
                         float* out);
  void (*quantize_int8)(const float* x, int64_t n, float scale, int8_t* codes);
  void (*dequantize_int8)(const int8_t* codes, int64_t n, float scale, float* out);
  uint32_t (*quantize_int4)(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks);
  void (*dequantize_int4)(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out);
  uint32_t (*quantize_uint4)(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks);
  void (*dequantize_uint4)(const uint8_t* blocks, int64_t n, int g, ScaleType st, float* out);
  void (*quantize_nvfp4)(const float* x, int64_t n, float tensor_scale, BlockNvfp4* blocks);
  void (*dequantize_nvfp4)(const BlockNvfp4* blocks, int64_t n, float tensor_scale, float* out);
  uint32_t (*quantize_mxfp4)(const float* x, int64_t n, BlockMxfp4* blocks);
  void (*dequantize_mxfp4)(const BlockMxfp4* blocks, int64_t n, float* out);
  uint32_t (*quantize_mxfp8)(const float* x, int64_t n, ScalarFormat fp8, BlockMxfp8* blocks);
  void (*dequantize_mxfp8)(const BlockMxfp8* blocks, int64_t n, ScalarFormat fp8, float* out);
};

const RowKernels& ref_row_kernels();   // quantize_ref.cpp
const RowKernels& simd_row_kernels();  // quantize_rows.cpp

// Scalar reference quantizers returning max-abs bits (the SIMD kernels fall back to them for
// group sizes their vectors cannot tile).
uint32_t amax_bits_ref(const float* x, int64_t n);
uint32_t quantize_int4_row_ref(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks);
uint32_t quantize_uint4_row_ref(const float* x, int64_t n, int g, ScaleType st, uint8_t* blocks);

// The E2M1 element encoder of the SIMD NVFP4 kernel on the dispatched target (a test hook:
// must equal float_to_e2m1 for every float): codes[i] = E2M1 code of x[i].
void encode_e2m1_simd(const float* x, int64_t n, uint8_t* codes);

// The matrix driver (quantize_rows_driver.cpp): validation, layout, per-tensor/per-tile scale
// passes and the parallel row loop, parameterised by the row kernels.
Result<QuantizedMatrix> quantize_matrix_with(const RowKernels& kernels, const float* x,
                                             int64_t rows, int64_t cols, const QuantSpec& spec);
Status dequantize_matrix_with(const RowKernels& kernels, const QuantizedMatrix& q, float* out);

}  // namespace qforge::quantize_internal
