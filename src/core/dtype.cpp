// DType names, parsing (canonical, safetensors and PyTorch spellings) and storage sizes.
#include "qforge/core/dtype.h"

#include <array>
#include <cctype>
#include <string>

namespace qforge {
namespace {

struct DTypeAlias {
  std::string_view name;  // compared case-insensitively
  DType dtype;
};

// Canonical names, indexed by the enum value.
constexpr std::array<std::string_view, kNumDTypes> kCanonicalNames = {
    "f64",         "f32",     "f16",     "bf16",    "f8_e4m3fn", "f8_e4m3fnuz", "f8_e5m2",
    "f8_e5m2fnuz", "f6_e2m3", "f6_e3m2", "f4_e2m1", "e8m0",      "i64",         "i32",
    "i16",         "i8",      "u8",      "i4",      "u4",        "bool",
};

// Other spellings seen in the wild. safetensors "F8_E4M3" is the OCP E4M3FN format (what
// torch.float8_e4m3fn serializes as); "F4" is E2M1.
constexpr DTypeAlias kAliases[] = {
    {"f8_e4m3", DType::F8_E4M3FN},
    {"f8_e8m0", DType::E8M0},
    {"f8_e8m0fnu", DType::E8M0},
    {"f4", DType::F4_E2M1},
    {"float64", DType::F64},
    {"double", DType::F64},
    {"float32", DType::F32},
    {"float", DType::F32},
    {"fp32", DType::F32},
    {"float16", DType::F16},
    {"half", DType::F16},
    {"fp16", DType::F16},
    {"bfloat16", DType::BF16},
    {"float8_e4m3fn", DType::F8_E4M3FN},
    {"float8_e4m3fnuz", DType::F8_E4M3FNUZ},
    {"float8_e5m2", DType::F8_E5M2},
    {"float8_e5m2fnuz", DType::F8_E5M2FNUZ},
    {"float8_e8m0fnu", DType::E8M0},
    {"e4m3fn", DType::F8_E4M3FN},
    {"e4m3fnuz", DType::F8_E4M3FNUZ},
    {"e5m2", DType::F8_E5M2},
    {"e5m2fnuz", DType::F8_E5M2FNUZ},
    {"e2m3", DType::F6_E2M3},
    {"e3m2", DType::F6_E3M2},
    {"e2m1", DType::F4_E2M1},
    {"int64", DType::I64},
    {"int32", DType::I32},
    {"int16", DType::I16},
    {"int8", DType::I8},
    {"uint8", DType::U8},
    {"int4", DType::I4},
    {"uint4", DType::U4},
};

// Valid safetensors/PyTorch types that qforge does not represent.
constexpr std::string_view kKnownUnsupported[] = {"u16",    "u32",    "u64", "uint16",
                                                  "uint32", "uint64", "c64", "complex64"};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string all_canonical_names() {
  std::string out;
  for (std::string_view name : kCanonicalNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::string_view dtype_name(DType dtype) {
  const auto index = static_cast<size_t>(dtype);
  return index < kCanonicalNames.size() ? kCanonicalNames[index] : std::string_view("invalid");
}

Result<DType> parse_dtype(std::string_view text) {
  for (size_t i = 0; i < kCanonicalNames.size(); ++i) {
    if (iequals(text, kCanonicalNames[i])) return static_cast<DType>(i);
  }
  for (const DTypeAlias& alias : kAliases) {
    if (iequals(text, alias.name)) return alias.dtype;
  }
  for (std::string_view name : kKnownUnsupported) {
    if (iequals(text, name)) {
      return make_error(ErrorCode::kUnsupported,
                        "parse_dtype: dtype '{}' is valid but qforge does not support it "
                        "(supported: {}; convert the tensor, e.g. u16 -> i32)",
                        text, all_canonical_names());
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "parse_dtype: unknown dtype '{}' (expected one of {}; safetensors spellings "
                    "such as BF16, F8_E4M3, I8 and PyTorch names such as bfloat16 work too)",
                    text, all_canonical_names());
}

Result<uint64_t> dtype_storage_bytes(DType dtype, int64_t n_elements) {
  if (n_elements < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dtype_storage_bytes: element count {} for dtype {} is negative "
                      "(expected >= 0; a shape dimension is probably corrupt)",
                      n_elements, dtype);
  }
  const auto n = static_cast<uint64_t>(n_elements);
  const auto bits = static_cast<uint64_t>(dtype_bits(dtype));
  if (bits == 0) {
    return make_error(ErrorCode::kInternal, "dtype_storage_bytes: invalid dtype value {}",
                      static_cast<int>(dtype));
  }
  // ceil(n * bits / 8) = (n / 8) * bits + ceil((n % 8) * bits / 8), without forming n * bits,
  // so that every count whose byte size fits in 64 bits is accepted.
  uint64_t whole = 0;
  uint64_t total = 0;
  if (__builtin_mul_overflow(n / 8, bits, &whole) ||
      __builtin_add_overflow(whole, ((n % 8) * bits + 7) / 8, &total)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dtype_storage_bytes: {} elements of dtype {} ({} bits each) overflow a "
                      "64-bit byte count (the shape is probably corrupt)",
                      n_elements, dtype, bits);
  }
  return total;
}

}  // namespace qforge
