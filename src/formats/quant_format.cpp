// Quantized storage formats: names, parsing, validation and storage cost (scales included).
#include "qforge/formats/quant_format.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>

namespace qforge {
namespace {

constexpr std::array kFormatInfos = {
    QuantFormatInfo{QuantFormat::F32, "f32", "32-bit float, unquantized", 32},
    QuantFormatInfo{QuantFormat::F16, "f16", "IEEE half, unquantized", 16},
    QuantFormatInfo{QuantFormat::BF16, "bf16", "bfloat16, unquantized", 16},
    QuantFormatInfo{QuantFormat::INT8_PER_TENSOR, "int8", "int8, one FP32 scale per tensor", 8},
    QuantFormatInfo{QuantFormat::INT8_PER_CHANNEL, "int8_per_channel",
                    "int8, one FP32 scale per output channel (row)", 8},
    QuantFormatInfo{QuantFormat::INT8_PER_TOKEN, "int8_per_token",
                    "int8, one FP32 scale per token (row), computed at run time", 8},
    QuantFormatInfo{QuantFormat::INT4_GROUP, "int4", "signed int4, one scale per group", 4},
    QuantFormatInfo{QuantFormat::UINT4_GROUP, "uint4",
                    "unsigned int4 + zero point, one scale and zero per group", 4},
    QuantFormatInfo{QuantFormat::FP8_PER_TENSOR, "fp8", "FP8, one FP32 scale per tensor", 8},
    QuantFormatInfo{QuantFormat::FP8_PER_CHANNEL, "fp8_per_channel",
                    "FP8, one FP32 scale per output channel (row)", 8},
    QuantFormatInfo{QuantFormat::FP8_BLOCK128, "fp8_block128",
                    "FP8, one FP32 scale per 128x128 tile (DeepSeek-V3)", 8},
    QuantFormatInfo{QuantFormat::NVFP4, "nvfp4",
                    "E2M1, E4M3 scale per 16, FP32 scale per tensor (NVIDIA)", 4},
    QuantFormatInfo{QuantFormat::MXFP4, "mxfp4", "E2M1, E8M0 scale per 32 (OCP MX v1.0)", 4},
    QuantFormatInfo{QuantFormat::MXFP8, "mxfp8", "E4M3FN, E8M0 scale per 32 (OCP MX v1.0)", 8},
};

constexpr std::array kAllFormats = {
    QuantFormat::F32,
    QuantFormat::F16,
    QuantFormat::BF16,
    QuantFormat::INT8_PER_TENSOR,
    QuantFormat::INT8_PER_CHANNEL,
    QuantFormat::INT8_PER_TOKEN,
    QuantFormat::INT4_GROUP,
    QuantFormat::UINT4_GROUP,
    QuantFormat::FP8_PER_TENSOR,
    QuantFormat::FP8_PER_CHANNEL,
    QuantFormat::FP8_BLOCK128,
    QuantFormat::NVFP4,
    QuantFormat::MXFP4,
    QuantFormat::MXFP8,
};

bool is_group_format(QuantFormat f) {
  return f == QuantFormat::INT4_GROUP || f == QuantFormat::UINT4_GROUP;
}

bool is_fp8_format(QuantFormat f) {
  return f == QuantFormat::FP8_PER_TENSOR || f == QuantFormat::FP8_PER_CHANNEL ||
         f == QuantFormat::FP8_BLOCK128;
}

bool is_fp8_element(ScalarFormat f) {
  return f == ScalarFormat::E4M3FN || f == ScalarFormat::E5M2 || f == ScalarFormat::E4M3FNUZ ||
         f == ScalarFormat::E5M2FNUZ;
}

// Block sizes fixed by the format's definition; 0 where the user chooses (or none applies).
int fixed_group_size(QuantFormat f) {
  switch (f) {
    case QuantFormat::NVFP4:
      return 16;
    case QuantFormat::MXFP4:
    case QuantFormat::MXFP8:
      return 32;
    case QuantFormat::FP8_BLOCK128:
      return 128;
    default:
      return 0;
  }
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool consume_suffix(std::string& text, std::string_view suffix) {
  if (text.size() < suffix.size() ||
      text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  text.resize(text.size() - suffix.size());
  return true;
}

std::string valid_names_hint() {
  return "valid: f32, f16, bf16, int8, int8_per_channel, int8_per_token, int4_g<N>, uint4_g<N> "
         "(N a power of two >= 16, optional _bf16 scale suffix), fp8, fp8_per_channel, "
         "fp8_block128 (optional _e5m2/_e4m3fnuz/_e5m2fnuz element suffix), nvfp4, mxfp4, mxfp8";
}

uint64_t ceil_div(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

const QuantFormatInfo& quant_format_info(QuantFormat format) {
  for (const auto& info : kFormatInfos) {
    if (info.format == format) return info;
  }
  QF_CHECK(false && "QuantFormat missing from kFormatInfos");
  return kFormatInfos[0];
}

std::span<const QuantFormat> all_quant_formats() {
  return kAllFormats;
}

QuantSpec default_quant_spec(QuantFormat format) {
  QuantSpec spec;
  spec.format = format;
  spec.group_size = is_group_format(format) ? 128 : fixed_group_size(format);
  return spec;
}

std::vector<QuantSpec> common_quant_specs() {
  std::vector<QuantSpec> specs;
  for (QuantFormat f : all_quant_formats()) {
    if (is_group_format(f)) {
      for (int g : {32, 64, 128}) {
        QuantSpec s = default_quant_spec(f);
        s.group_size = g;
        specs.push_back(s);
      }
    } else {
      specs.push_back(default_quant_spec(f));
    }
  }
  return specs;
}

Status validate_quant_spec(const QuantSpec& spec) {
  const char* name = quant_format_info(spec.format).name;
  if (is_group_format(spec.format)) {
    const int g = spec.group_size;
    if (g < 16 || g > 4096 || (g & (g - 1)) != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: group size {} is invalid; expected a power of two in [16, 4096] "
                        "(common: 32, 64, 128)",
                        name, g);
    }
  } else if (const int fixed = fixed_group_size(spec.format); fixed != 0) {
    if (spec.group_size != fixed) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: block size is fixed at {} by the format, got group size {}", name,
                        fixed, spec.group_size);
    }
  }
  if (is_fp8_format(spec.format) && !is_fp8_element(spec.fp8)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: element format {} is not an FP8 format (expected e4m3fn, e5m2, "
                      "e4m3fnuz or e5m2fnuz)",
                      name, scalar_format_info(spec.fp8).name);
  }
  return ok_status();
}

Result<QuantSpec> parse_quant_spec(std::string_view text) {
  std::string s = lower(text);
  QuantSpec spec;
  // Element-format suffixes for the FP8 family.
  if (s.rfind("fp8", 0) == 0) {
    if (consume_suffix(s, "_e5m2fnuz")) {
      spec.fp8 = ScalarFormat::E5M2FNUZ;
    } else if (consume_suffix(s, "_e4m3fnuz")) {
      spec.fp8 = ScalarFormat::E4M3FNUZ;
    } else if (consume_suffix(s, "_e5m2")) {
      spec.fp8 = ScalarFormat::E5M2;
    } else {
      consume_suffix(s, "_e4m3fn") || consume_suffix(s, "_e4m3");
    }
  }
  const bool bf16_scale = consume_suffix(s, "_bf16");

  if (s == "f32" || s == "fp32" || s == "float32") {
    spec.format = QuantFormat::F32;
  } else if (s == "f16" || s == "fp16" || s == "float16") {
    spec.format = QuantFormat::F16;
  } else if (s == "bf16" || s == "bfloat16") {
    spec.format = QuantFormat::BF16;
  } else if (s == "int8" || s == "int8_per_tensor") {
    spec.format = QuantFormat::INT8_PER_TENSOR;
  } else if (s == "int8_per_channel") {
    spec.format = QuantFormat::INT8_PER_CHANNEL;
  } else if (s == "int8_per_token") {
    spec.format = QuantFormat::INT8_PER_TOKEN;
  } else if (s == "fp8" || s == "fp8_per_tensor") {
    spec.format = QuantFormat::FP8_PER_TENSOR;
  } else if (s == "fp8_per_channel") {
    spec.format = QuantFormat::FP8_PER_CHANNEL;
  } else if (s == "fp8_block128" || s == "fp8_block") {
    spec.format = QuantFormat::FP8_BLOCK128;
  } else if (s == "nvfp4") {
    spec.format = QuantFormat::NVFP4;
  } else if (s == "mxfp4") {
    spec.format = QuantFormat::MXFP4;
  } else if (s == "mxfp8") {
    spec.format = QuantFormat::MXFP8;
  } else if (s.rfind("int4", 0) == 0 || s.rfind("uint4", 0) == 0) {
    const bool is_unsigned = s[0] == 'u';
    spec.format = is_unsigned ? QuantFormat::UINT4_GROUP : QuantFormat::INT4_GROUP;
    std::string_view rest = std::string_view(s).substr(is_unsigned ? 5 : 4);
    spec.group_size = 128;
    if (!rest.empty()) {
      if (rest.rfind("_g", 0) != 0) {
        return make_error(ErrorCode::kInvalidArgument, "unknown format '{}'; {}", text,
                          valid_names_hint());
      }
      rest.remove_prefix(2);
      int g = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), g);
      if (ec != std::errc() || ptr != rest.data() + rest.size()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "format '{}': group size '{}' is not an integer", text, rest);
      }
      spec.group_size = g;
    }
  } else {
    return make_error(ErrorCode::kInvalidArgument, "unknown format '{}'; {}", text,
                      valid_names_hint());
  }
  if (bf16_scale) {
    if (!is_group_format(spec.format)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "format '{}': the _bf16 scale suffix applies only to int4/uint4 group "
                        "formats",
                        text);
    }
    spec.scale_type = ScaleType::BF16;
  }
  if (!is_group_format(spec.format)) spec.group_size = fixed_group_size(spec.format);
  QF_TRY(validate_quant_spec(spec).context(fmt::format("format '{}'", text)));
  return spec;
}

std::string quant_spec_name(const QuantSpec& spec) {
  std::string name = quant_format_info(spec.format).name;
  if (is_group_format(spec.format)) name += fmt::format("_g{}", spec.group_size);
  if (is_fp8_format(spec.format) && spec.fp8 != ScalarFormat::E4M3FN) {
    name += "_";
    name += scalar_format_info(spec.fp8).name;
  }
  if (is_group_format(spec.format) && spec.scale_type == ScaleType::BF16) name += "_bf16";
  return name;
}

uint64_t quantized_bytes(const QuantSpec& spec, int64_t rows, int64_t cols) {
  const uint64_t r = static_cast<uint64_t>(std::max<int64_t>(rows, 0));
  const uint64_t c = static_cast<uint64_t>(std::max<int64_t>(cols, 0));
  const uint64_t n = r * c;
  const uint64_t g = static_cast<uint64_t>(std::max(spec.group_size, 1));
  switch (spec.format) {
    case QuantFormat::F32:
      return 4 * n;
    case QuantFormat::F16:
    case QuantFormat::BF16:
      return 2 * n;
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::FP8_PER_TENSOR:
      return n + 4;
    case QuantFormat::INT8_PER_CHANNEL:
    case QuantFormat::INT8_PER_TOKEN:
    case QuantFormat::FP8_PER_CHANNEL:
      return n + 4 * r;
    case QuantFormat::FP8_BLOCK128:
      return n + 4 * ceil_div(r, 128) * ceil_div(c, 128);
    // Group formats: each group is a block of g/2 code bytes + a 2-byte scale (+ a zero-point
    // byte and a reserved byte for UINT4); the last group of a row is zero-padded.
    case QuantFormat::INT4_GROUP:
      return r * ceil_div(c, g) * (g / 2 + 2);
    case QuantFormat::UINT4_GROUP:
      return r * ceil_div(c, g) * (g / 2 + 4);
    case QuantFormat::NVFP4:
      return r * ceil_div(c, 16) * 9 + 4;
    case QuantFormat::MXFP4:
      return r * ceil_div(c, 32) * 17;
    case QuantFormat::MXFP8:
      return r * ceil_div(c, 32) * 33;
  }
  return 0;
}

double bits_per_weight(const QuantSpec& spec) {
  const double element = quant_format_info(spec.format).element_bits;
  const double g = spec.group_size;
  switch (spec.format) {
    case QuantFormat::INT4_GROUP:
      return element + 16.0 / g;
    case QuantFormat::UINT4_GROUP:
      return element + 32.0 / g;
    case QuantFormat::NVFP4:
      return element + 8.0 / 16.0;
    case QuantFormat::MXFP4:
    case QuantFormat::MXFP8:
      return element + 8.0 / 32.0;
    case QuantFormat::FP8_BLOCK128:
      return element + 32.0 / (128.0 * 128.0);
    default:
      return element;
  }
}

}  // namespace qforge
