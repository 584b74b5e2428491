// Quantized storage formats for weights and activations: what a tensor is stored as, how its
// scales are grouped, and how many bits each weight costs including scale overhead.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/scalar.h"

namespace qforge {

enum class QuantFormat : uint8_t {
  F32,               // no quantization, 32-bit float
  F16,               // no quantization, IEEE half
  BF16,              // no quantization, bfloat16
  INT8_PER_TENSOR,   // int8 codes, one FP32 scale per tensor
  INT8_PER_CHANNEL,  // int8 codes, one FP32 scale per row (output channel of a weight)
  INT8_PER_TOKEN,    // int8 codes, one FP32 scale per row (token of an activation)
  INT4_GROUP,        // signed int4 codes, one F16/BF16 scale per `group_size` elements of a row
  UINT4_GROUP,       // unsigned int4 codes + zero point, one scale and zero per group
  FP8_PER_TENSOR,    // FP8 codes (E4M3FN by default), one FP32 scale per tensor
  FP8_PER_CHANNEL,   // FP8 codes, one FP32 scale per row
  FP8_BLOCK128,      // FP8 codes, one FP32 scale per 128x128 tile (DeepSeek-V3 style)
  NVFP4,             // E2M1 codes, E4M3FN scale per 16 elements, FP32 scale per tensor
  MXFP4,             // E2M1 codes, E8M0 scale per 32 elements (OCP MX v1.0)
  MXFP8,             // E4M3FN codes, E8M0 scale per 32 elements (OCP MX v1.0)
};

// The scale storage type of group formats (INT4_GROUP, UINT4_GROUP).
enum class ScaleType : uint8_t { F16, BF16 };

// Full description of a quantized storage format.
struct QuantSpec {
  QuantFormat format = QuantFormat::F32;
  // Elements per scale group along a row. Fixed for NVFP4 (16), MXFP4/MXFP8 (32) and
  // FP8_BLOCK128 (128); chosen (32/64/128/...) for INT4_GROUP/UINT4_GROUP; unused otherwise.
  int group_size = 0;
  ScaleType scale_type = ScaleType::F16;
  // Element format of FP8 formats: E4M3FN (default) or E5M2; E4M3FNUZ/E5M2FNUZ for AMD.
  ScalarFormat fp8 = ScalarFormat::E4M3FN;
};

// Static facts about a format for the precision table.
struct QuantFormatInfo {
  QuantFormat format;
  const char* name;         // CLI spelling, e.g. "int4_g128", "nvfp4", "fp8"
  const char* description;  // one line for humans
  int element_bits;         // bits of one stored code
};

const QuantFormatInfo& quant_format_info(QuantFormat format);
std::span<const QuantFormat> all_quant_formats();

// Default spec for a format (group size 128 for INT4, the fixed block sizes elsewhere).
QuantSpec default_quant_spec(QuantFormat format);
// The specs that tables list (`qforge formats`, `qforge inspect`): every format at its default,
// plus INT4/UINT4 at group sizes 32, 64 and 128.
std::vector<QuantSpec> common_quant_specs();

// Parses "fp8", "fp8_per_channel", "fp8_block128", "int8", "int8_per_channel", "int4_g128",
// "uint4_g64", "nvfp4", "mxfp4", "mxfp8", "bf16", ... Errors name the bad text and list the
// valid names; group sizes must be powers of two >= 16 (sizes 0, 96, ... are rejected).
Result<QuantSpec> parse_quant_spec(std::string_view text);
// Canonical text for a spec, the inverse of parse_quant_spec ("int4_g128", "nvfp4").
std::string quant_spec_name(const QuantSpec& spec);
// Checks the spec's internal consistency (group size power of two, FP8 kind valid, ...).
Status validate_quant_spec(const QuantSpec& spec);

// Storage cost of a [rows, cols] matrix, scales and padding included (a group format pads each
// row up to a whole number of groups; FP8_BLOCK128 stores codes unpadded and one FP32 scale per
// tile, partial tiles at the edges included).
uint64_t quantized_bytes(const QuantSpec& spec, int64_t rows, int64_t cols);
// Bits per weight including scale overhead, for large matrices whose dimensions the group
// divides (e.g. 4.125 for int4_g128 with F16 scales, 4.5 for NVFP4, 4.25 for MXFP4). Per-tensor
// and per-row scales cost under 0.01 bit/weight at LLM widths and count as zero here.
double bits_per_weight(const QuantSpec& spec);

}  // namespace qforge
