// DType: the element types a qforge tensor can hold, their sizes, names and parsing.
// Sub-byte types (I4, U4, F4_E2M1, F6_*) are packed densely: a tensor of n elements occupies
// ceil(n * bits / 8) bytes; 4-bit element 2i sits in the low nibble of byte i.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

enum class DType : uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3FN,    // OCP FP8 (NVIDIA): bias 7, max 448, no Inf
  F8_E4M3FNUZ,  // AMD FP8: bias 8, max 240, one NaN at 0x80
  F8_E5M2,      // OCP FP8: bias 15, max 57344, has Inf
  F8_E5M2FNUZ,  // AMD FP8: bias 16, max 57344, one NaN at 0x80
  F6_E2M3,      // OCP MX FP6
  F6_E3M2,      // OCP MX FP6
  F4_E2M1,      // OCP MX / NVFP4 element
  E8M0,         // OCP MX block scale: unsigned power of two
  I64,
  I32,
  I16,
  I8,
  U8,
  I4,    // two's complement, -8..7
  U4,    // 0..15
  BOOL,  // one byte per element, 0 or 1 (as safetensors stores it)
};

inline constexpr int kNumDTypes = static_cast<int>(DType::BOOL) + 1;

// Bits per element (4 for I4/U4/F4_E2M1, 6 for F6_*, 8 for BOOL).
constexpr int dtype_bits(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
      return 64;
    case DType::F32:
    case DType::I32:
      return 32;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 16;
    case DType::F8_E4M3FN:
    case DType::F8_E4M3FNUZ:
    case DType::F8_E5M2:
    case DType::F8_E5M2FNUZ:
    case DType::E8M0:
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return 8;
    case DType::F6_E2M3:
    case DType::F6_E3M2:
      return 6;
    case DType::F4_E2M1:
    case DType::I4:
    case DType::U4:
      return 4;
  }
  return 0;
}

// True for types narrower than a byte; their tensors must be contiguous.
constexpr bool dtype_is_sub_byte(DType dtype) {
  return dtype_bits(dtype) < 8;
}

// Bytes per element for byte-sized types; 0 for sub-byte types (use dtype_storage_bytes).
constexpr int dtype_size(DType dtype) {
  return dtype_is_sub_byte(dtype) ? 0 : dtype_bits(dtype) / 8;
}

// True for F64..E8M0 (every floating-point and microscaling type).
constexpr bool dtype_is_float(DType dtype) {
  return static_cast<uint8_t>(dtype) <= static_cast<uint8_t>(DType::E8M0);
}

// Canonical lower-case name: "f32", "bf16", "f8_e4m3fn", "f4_e2m1", "e8m0", "i4", "bool".
std::string_view dtype_name(DType dtype);

// Parses a canonical name or a common spelling, case-insensitively: safetensors ("F32", "BF16",
// "F8_E4M3", "F8_E8M0", "F4", "I8", "BOOL"), PyTorch ("float32", "bfloat16", "float8_e4m3fn",
// "int8") and the scalar-format names ("e4m3fn", "e2m1"). Unknown names are kInvalidArgument;
// valid safetensors types qforge does not model (U16, U32, U64, C64) are kUnsupported.
Result<DType> parse_dtype(std::string_view text);

// Bytes needed to store n_elements densely: ceil(n * bits / 8). Fails on n < 0 and when the
// byte count would overflow 64 bits (a corrupt shape in a model file can ask for 2^70 bytes).
Result<uint64_t> dtype_storage_bytes(DType dtype, int64_t n_elements);

}  // namespace qforge

template <>
struct fmt::formatter<qforge::DType> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(qforge::DType dtype, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(qforge::dtype_name(dtype), ctx);
  }
};
