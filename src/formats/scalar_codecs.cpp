// Generic, table-driven scalar codecs (IEEE binary16, bfloat16, OCP OFP8 r1.0, AMD FNUZ FP8,
// OCP MX v1.0 FP6/FP4/E8M0): the format table, name parsing, and bit-exact round-to-nearest-even
// encode/decode for every ScalarFormat. The specialised hot-path codecs live in scalar_fast.cpp.
#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

constexpr std::array<ScalarFormat, 10> kAllFormats = {
    ScalarFormat::F16,  ScalarFormat::BF16,     ScalarFormat::E4M3FN, ScalarFormat::E4M3FNUZ,
    ScalarFormat::E5M2, ScalarFormat::E5M2FNUZ, ScalarFormat::E2M3,   ScalarFormat::E3M2,
    ScalarFormat::E2M1, ScalarFormat::E8M0,
};

// Indexed by ScalarFormat. Values are written out (hex-float literals) rather than computed so
// that the table reads like the specs it comes from.
constexpr std::array<ScalarFormatInfo, 10> kInfo = {{
    //  format, name, bits, e, m, bias, sign, inf, nan, -0, max, min normal, min subnormal
    {ScalarFormat::F16, "f16", 16, 5, 10, 15, true, true, true, true, 65504.0, 0x1p-14, 0x1p-24},
    {ScalarFormat::BF16, "bf16", 16, 8, 7, 127, true, true, true, true, 0x1.fep127, 0x1p-126,
     0x1p-133},
    {ScalarFormat::E4M3FN, "e4m3fn", 8, 4, 3, 7, true, false, true, true, 448.0, 0x1p-6, 0x1p-9},
    {ScalarFormat::E4M3FNUZ, "e4m3fnuz", 8, 4, 3, 8, true, false, true, false, 240.0, 0x1p-7,
     0x1p-10},
    {ScalarFormat::E5M2, "e5m2", 8, 5, 2, 15, true, true, true, true, 57344.0, 0x1p-14, 0x1p-16},
    {ScalarFormat::E5M2FNUZ, "e5m2fnuz", 8, 5, 2, 16, true, false, true, false, 57344.0, 0x1p-15,
     0x1p-17},
    {ScalarFormat::E2M3, "e2m3", 6, 2, 3, 1, true, false, false, true, 7.5, 1.0, 0.125},
    {ScalarFormat::E3M2, "e3m2", 6, 3, 2, 3, true, false, false, true, 28.0, 0.25, 0.0625},
    {ScalarFormat::E2M1, "e2m1", 4, 2, 1, 1, true, false, false, true, 6.0, 1.0, 0.5},
    {ScalarFormat::E8M0, "e8m0", 8, 8, 0, 127, false, false, true, false, 0x1p127, 0x1p-127,
     0x1p-127},
}};

constexpr bool info_in_enum_order() {
  for (std::size_t i = 0; i < kInfo.size(); ++i) {
    if (static_cast<std::size_t>(kInfo[i].format) != i) return false;
  }
  return true;
}
static_assert(info_in_enum_order(), "kInfo and kLayout are indexed by ScalarFormat");

// Code-level facts the generic codec needs besides ScalarFormatInfo. Magnitude codes are the
// code without its sign bit; for every format they increase with the value they encode.
struct CodeLayout {
  uint16_t max_magnitude;  // magnitude code of max_finite
  uint16_t inf_magnitude;  // magnitude code of Inf (has_inf only)
  uint16_t nan_code;       // canonical positive NaN (FNUZ: the whole code 0x80)
};

constexpr std::array<CodeLayout, 10> kLayout = {{
    {0x7BFF, 0x7C00, 0x7E00},  // F16
    {0x7F7F, 0x7F80, 0x7FC0},  // BF16
    {0x7E, 0, 0x7F},           // E4M3FN: S.1111.111 is NaN, so S.1111.110 is max
    {0x7F, 0, 0x80},           // E4M3FNUZ
    {0x7B, 0x7C, 0x7E},        // E5M2
    {0x7F, 0, 0x80},           // E5M2FNUZ
    {0x1F, 0, 0},              // E2M3
    {0x1F, 0, 0},              // E3M2
    {0x7, 0, 0},               // E2M1
    {0xFE, 0, 0xFF},           // E8M0
}};

// Aliases seen in checkpoints and other toolkits (HF/PyTorch dtype names, ml_dtypes names,
// TensorRT-LLM/ModelOpt CLI spellings). Lookup is case-insensitive with '-' read as '_'.
struct Alias {
  const char* name;
  ScalarFormat format;
};
constexpr Alias kAliases[] = {
    {"fp16", ScalarFormat::F16},
    {"float16", ScalarFormat::F16},
    {"half", ScalarFormat::F16},
    {"bfloat16", ScalarFormat::BF16},
    {"fp8", ScalarFormat::E4M3FN},
    {"e4m3", ScalarFormat::E4M3FN},
    {"fp8_e4m3", ScalarFormat::E4M3FN},
    {"fp8_e4m3fn", ScalarFormat::E4M3FN},
    {"float8_e4m3", ScalarFormat::E4M3FN},
    {"float8_e4m3fn", ScalarFormat::E4M3FN},
    {"fp8_e4m3fnuz", ScalarFormat::E4M3FNUZ},
    {"float8_e4m3fnuz", ScalarFormat::E4M3FNUZ},
    {"fp8_e5m2", ScalarFormat::E5M2},
    {"float8_e5m2", ScalarFormat::E5M2},
    {"fp8_e5m2fnuz", ScalarFormat::E5M2FNUZ},
    {"float8_e5m2fnuz", ScalarFormat::E5M2FNUZ},
    {"fp6_e2m3", ScalarFormat::E2M3},
    {"e2m3fn", ScalarFormat::E2M3},
    {"float6_e2m3fn", ScalarFormat::E2M3},
    {"fp6_e3m2", ScalarFormat::E3M2},
    {"e3m2fn", ScalarFormat::E3M2},
    {"float6_e3m2fn", ScalarFormat::E3M2},
    {"fp4", ScalarFormat::E2M1},
    {"fp4_e2m1", ScalarFormat::E2M1},
    {"e2m1fn", ScalarFormat::E2M1},
    {"float4_e2m1fn", ScalarFormat::E2M1},
    {"nvfp4_e2m1", ScalarFormat::E2M1},
    {"mxfp4_e2m1", ScalarFormat::E2M1},
    {"ue8m0", ScalarFormat::E8M0},
    {"e8m0fnu", ScalarFormat::E8M0},
    {"float8_e8m0fnu", ScalarFormat::E8M0},
};

std::size_t index_of(ScalarFormat format) {
  return static_cast<std::size_t>(format);
}

std::string normalize_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// |x| of a finite float as an exact double, built from the bits by integer conversion so that
// a denormals-are-zero FP mode cannot flush float subnormal inputs. Every float is a normal
// double, so the arithmetic below never meets a subnormal.
double abs_as_double(uint32_t bits) {
  const int exponent_field = static_cast<int>((bits >> 23) & 0xFF);
  const uint32_t mantissa = bits & 0x7FFFFF;
  if (exponent_field == 0) return std::ldexp(static_cast<double>(mantissa), -149);
  return std::ldexp(static_cast<double>(mantissa | 0x800000), exponent_field - 150);
}

// Magnitude code of a finite a > 0 rounded to nearest-even with `mantissa_bits` and minimum
// normal exponent `emin`, as if the exponent range had no top: the caller compares the result
// with the largest finite code. Magnitude codes of these formats are (exponent - emin) << m plus
// the integer significand, which also covers subnormals (exponent emin, no implicit bit) and a
// significand that rounds up into the next binade.
uint32_t round_magnitude(double a, int mantissa_bits, int emin) {
  const int exponent = std::max(std::ilogb(a), emin);
  const int quantum_exponent = exponent - mantissa_bits;
  // Scaling by a power of two is exact; nearbyint rounds ties to even in the default mode.
  const double significand = std::nearbyint(std::ldexp(a, -quantum_exponent));
  return (static_cast<uint32_t>(exponent - emin) << mantissa_bits) +
         static_cast<uint32_t>(significand);
}

// E8M0 is unsigned with no mantissa: the nearest power of two, ties (1.5 * 2^k) up to 2^(k+1)
// (as PyTorch's float8_e8m0fnu and ml_dtypes convert), everything below 2^-127 (zero included)
// clamped up to 2^-127.
uint16_t encode_e8m0(float x, Saturation saturation) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return 0xFF;
  if (bits == 0x80000000u) return 0x00;  // -0 is zero, not a negative value
  if (bits >> 31) return 0xFF;
  if (std::isinf(x)) return saturation == Saturation::kSatFinite ? 0xFE : 0xFF;
  if (bits == 0) return 0x00;
  const double a = abs_as_double(bits);
  const int k = std::ilogb(a);
  if (k < -127) return 0x00;
  const double fraction = std::ldexp(a, -k);  // in [1, 2)
  int code = k + 127;
  if (fraction >= 1.5) ++code;
  if (code > 0xFE) return saturation == Saturation::kSatFinite ? 0xFE : 0xFF;
  return static_cast<uint16_t>(code);
}

}  // namespace

const ScalarFormatInfo& scalar_format_info(ScalarFormat format) {
  return kInfo[index_of(format)];
}

std::span<const ScalarFormat> all_scalar_formats() {
  return kAllFormats;
}

Result<ScalarFormat> parse_scalar_format(std::string_view name) {
  std::string key = normalize_name(name);
  for (const ScalarFormatInfo& info : kInfo) {
    if (key == info.name) return info.format;
  }
  for (const Alias& alias : kAliases) {
    if (key == alias.name) return alias.format;
  }
  std::string canonical;
  for (const ScalarFormatInfo& info : kInfo) {
    canonical += canonical.empty() ? "" : ", ";
    canonical += info.name;
  }
  std::string aliases;
  for (const Alias& alias : kAliases) {
    aliases += aliases.empty() ? "" : ", ";
    aliases += alias.name;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown scalar format '{}'; valid names: {} (aliases: {}; case-insensitive)",
                    name, canonical, aliases);
}

uint16_t encode_scalar(ScalarFormat format, float x, Saturation saturation) {
  if (format == ScalarFormat::E8M0) return encode_e8m0(x, saturation);
  const ScalarFormatInfo& info = kInfo[index_of(format)];
  const CodeLayout& layout = kLayout[index_of(format)];
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const bool negative = (bits >> 31) != 0;
  const uint16_t sign = negative ? static_cast<uint16_t>(1u << (info.bits - 1)) : 0;
  const bool fnuz = info.has_nan && !info.has_negative_zero;

  const auto nan_code = [&]() -> uint16_t {
    if (!info.has_nan) return sign | layout.max_magnitude;  // as PTX satfinite does
    if (fnuz) return layout.nan_code;
    return sign | layout.nan_code;
  };
  const auto overflow_code = [&]() -> uint16_t {
    if (saturation == Saturation::kSatFinite || (!info.has_inf && !info.has_nan)) {
      return sign | layout.max_magnitude;
    }
    if (info.has_inf) return sign | layout.inf_magnitude;
    return nan_code();
  };

  if (std::isnan(x)) return nan_code();
  if (std::isinf(x)) return overflow_code();
  uint32_t magnitude = 0;
  if ((bits & 0x7FFFFFFFu) != 0) {
    magnitude = round_magnitude(abs_as_double(bits), info.mantissa_bits, 1 - info.bias);
  }
  if (magnitude > layout.max_magnitude) return overflow_code();
  if (magnitude == 0 && !info.has_negative_zero) return 0;
  return sign | static_cast<uint16_t>(magnitude);
}

float decode_scalar(ScalarFormat format, uint16_t code) {
  const ScalarFormatInfo& info = kInfo[index_of(format)];
  const CodeLayout& layout = kLayout[index_of(format)];
  // Bits above the format's width are ignored, so a nibble taken from a wider word decodes.
  code &= static_cast<uint16_t>((1u << info.bits) - 1);
  if (format == ScalarFormat::E8M0) {
    if (code == 0xFF) return std::numeric_limits<float>::quiet_NaN();
    return std::ldexp(1.0f, code - 127);
  }
  const uint16_t sign_bit = static_cast<uint16_t>(1u << (info.bits - 1));
  const bool negative = (code & sign_bit) != 0;
  const uint32_t magnitude = code & (sign_bit - 1u);
  const uint32_t mantissa_mask = (1u << info.mantissa_bits) - 1;
  if (negative && magnitude == 0 && !info.has_negative_zero) {
    return std::numeric_limits<float>::quiet_NaN();  // FNUZ: 0x80 is the NaN
  }
  if (magnitude > layout.max_magnitude) {
    if (info.has_inf && magnitude == layout.inf_magnitude) {
      return negative ? -std::numeric_limits<float>::infinity()
                      : std::numeric_limits<float>::infinity();
    }
    // Quiet NaN keeping sign and payload, as a hardware widening conversion does.
    uint32_t payload = (magnitude & mantissa_mask) << (23 - info.mantissa_bits);
    return std::bit_cast<float>((negative ? 0x80000000u : 0u) | 0x7FC00000u | payload);
  }
  const int exponent_field = static_cast<int>(magnitude >> info.mantissa_bits);
  const uint32_t mantissa = magnitude & mantissa_mask;
  // value = significand * 2^(exponent - mantissa_bits); subnormals have no implicit bit and
  // the exponent of exponent_field == 1. Every value is exact in float.
  uint32_t significand = exponent_field == 0 ? mantissa : mantissa | (mantissa_mask + 1);
  int exponent = std::max(exponent_field, 1) - info.bias - info.mantissa_bits;
  float value = std::ldexp(static_cast<float>(significand), exponent);
  return negative ? -value : value;
}

uint8_t e8m0_scale_for_amax(float amax, int element_emax) {
  if (std::isnan(amax)) return 0xFF;
  float a = std::fabs(amax);
  if (a == 0.0f) return 0x00;
  if (std::isinf(a)) return 0xFE;
  // ilogb is floor(log2(a)) exactly, subnormals included; std::log2 can round up just below a
  // power of two.
  int code = std::ilogb(a) - element_emax + 127;
  return static_cast<uint8_t>(std::clamp(code, 0, 0xFE));
}

}  // namespace qforge
