// Scalar number formats: bit-exact encode (float -> code) and decode (code -> float).
// Specs: IEEE 754 binary16; bfloat16; OCP 8-bit Floating Point (OFP8) r1.0 for E4M3FN/E5M2;
// the FNUZ variants as AMD MI300 / LLVM define them; OCP Microscaling (MX) v1.0 for E2M3, E3M2,
// E2M1 and E8M0. Encoding always rounds to nearest, ties to even (E8M0: ties up, see below).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

// Codes are stored right-aligned in a uint16_t (an FP4 code uses bits 0..3).
enum class ScalarFormat : uint8_t {
  F16,       // IEEE binary16: 1.5.10, bias 15, Inf, NaN
  BF16,      // bfloat16: 1.8.7, bias 127, Inf, NaN
  E4M3FN,    // OCP FP8: 1.4.3, bias 7, max 448, no Inf, NaN = S.1111.111
  E4M3FNUZ,  // AMD FP8: 1.4.3, bias 8, max 240, no Inf, no -0, one NaN = 0x80
  E5M2,      // OCP FP8: 1.5.2, bias 15, max 57344, Inf = S.11111.00, NaN = S.11111.{01,10,11}
  E5M2FNUZ,  // AMD FP8: 1.5.2, bias 16, max 57344, no Inf, no -0, one NaN = 0x80
  E2M3,      // OCP MX FP6: 1.2.3, bias 1, max 7.5, no Inf/NaN
  E3M2,      // OCP MX FP6: 1.3.2, bias 3, max 28, no Inf/NaN
  E2M1,      // OCP MX FP4: 1.2.1, bias 1, values ±{0,0.5,1,1.5,2,3,4,6}, no Inf/NaN
  E8M0,      // OCP MX scale: unsigned 8-bit exponent, bias 127, 2^-127..2^127, NaN = 0xFF, no zero
};

// What happens to values beyond the largest finite magnitude (after rounding) and to ±Inf.
enum class Saturation : uint8_t {
  // Clamp to ±max finite; ±Inf also become ±max finite (PTX `cvt.rn.satfinite`).
  kSatFinite,
  // Overflow becomes ±Inf where the format has Inf, else NaN. Formats with neither Inf nor NaN
  // (E2M3, E3M2, E2M1) saturate in both modes: there is nothing else to produce.
  kNonSat,
};

// Special-value rules common to all formats (documented here, tested exhaustively):
// - NaN input -> the format's canonical NaN (sign kept where the format has signed NaNs: E4M3FN
//   0x7F/0xFF, E5M2 0x7E/0xFE, F16 0x7E00/0xFE00, BF16 0x7FC0/0xFFC0; FNUZ 0x80; E8M0 0xFF).
//   Formats without NaN (E2M3, E3M2, E2M1) map NaN to ±max finite, as PTX satfinite does;
//   bulk kernels reject NaN input before it gets here.
// - -0 encodes as -0 where the format has it; FNUZ formats have no -0, so -0 and negative values
//   that round to zero encode as 0x00.
// - Subnormals are encoded and decoded (no flush to zero).
// - E8M0 is unsigned and has no zero: negative inputs and NaN -> 0xFF; 0 and values below
//   2^-127 round to 2^-127 (code 0x00); rounding is to the nearest power of two, ties
//   (x = 1.5 * 2^k) up to 2^(k+1), as PyTorch's float8_e8m0fnu and ml_dtypes convert. -0 counts as
//   zero (0x00), not as a negative input.
// - Decoding ignores code bits above the format's width; NaN codes decode to a quiet float NaN
//   (sign kept where the format's NaN is signed).
struct ScalarFormatInfo {
  ScalarFormat format;
  const char* name;  // canonical lower-case name, e.g. "e4m3fn"
  int bits;          // total bits including sign
  int exponent_bits;
  int mantissa_bits;
  int bias;
  bool has_sign;
  bool has_inf;
  bool has_nan;
  bool has_negative_zero;
  double max_finite;     // largest finite value
  double min_normal;     // smallest positive normal value
  double min_subnormal;  // smallest positive value (== min_normal when there are no subnormals)
};

const ScalarFormatInfo& scalar_format_info(ScalarFormat format);
std::span<const ScalarFormat> all_scalar_formats();

// Accepts the canonical names and common aliases ("fp8", "fp8_e4m3", "float8_e4m3fn", "fp4",
// "nvfp4_e2m1", "bf16", "fp16", ...), case-insensitive. Unknown names are an error that lists the
// valid ones.
Result<ScalarFormat> parse_scalar_format(std::string_view name);

// Generic, table-driven codecs valid for every format (reference speed, not hot-path speed).
uint16_t encode_scalar(ScalarFormat format, float x, Saturation saturation);
float decode_scalar(ScalarFormat format, uint16_t code);

// Specialised codecs for hot paths; each equals encode_scalar/decode_scalar for its format.
// Defaults follow convention: F16/BF16 casts overflow to Inf (as IEEE/numpy casts do); FP8
// quantizers saturate (as TensorRT-LLM, ModelOpt and PTX satfinite do).
uint16_t float_to_f16(float x, Saturation saturation = Saturation::kNonSat);
float f16_to_float(uint16_t code);
uint16_t float_to_bf16(float x, Saturation saturation = Saturation::kNonSat);
float bf16_to_float(uint16_t code);
uint8_t float_to_e4m3fn(float x, Saturation saturation = Saturation::kSatFinite);
float e4m3fn_to_float(uint8_t code);
uint8_t float_to_e5m2(float x, Saturation saturation = Saturation::kSatFinite);
float e5m2_to_float(uint8_t code);
uint8_t float_to_e2m1(float x);  // E2M1 saturates in both modes
float e2m1_to_float(uint8_t code);
uint8_t float_to_e8m0(float x);  // == encode_scalar(E8M0, x, kSatFinite): +Inf -> 0xFE
float e8m0_to_float(uint8_t code);

// E8M0 scale for an OCP MX block (MX v1.0 section 6.3): 2^(floor(log2(amax)) - emax_elem),
// where emax_elem is the element format's largest exponent (2 for E2M1, 8 for E4M3FN).
// amax == 0 gives code 0x00 (2^-127) so that all elements quantize to zero. Clamped to 0..254
// (so +Inf gives 0xFE); the sign of amax is ignored; NaN gives 0xFF.
uint8_t e8m0_scale_for_amax(float amax, int element_emax);

// Integer codecs. Rounding is to nearest, ties to even, of x / scale (an IEEE float division).
// Symmetric INT8 uses the narrow range [-127, 127]; INT4 signed [-8, 7]; UINT4 [0, 15] with a
// zero point: q = clamp(rne(x / scale) + zero_point, 0, 15), x' = (q - zero_point) * scale.
// A NaN quotient (NaN x, 0 / 0) quantizes as 0 does; a ±Inf quotient clamps to the range ends.
int8_t quantize_int8(float x, float scale);
int8_t quantize_int4(float x, float scale);
uint8_t quantize_uint4(float x, float scale, int zero_point);
inline float dequantize_int(int q, float scale, int zero_point = 0) {
  return static_cast<float>(q - zero_point) * scale;
}

}  // namespace qforge
