// GgufValue (typed GGUF metadata values) and the ggml tensor type table.
#include <cmath>
#include <cstring>

#include "io/io_util.h"
#include "qforge/io/gguf.h"

namespace qforge {
namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Element i of raw bytes of integer type `t` as int128-free pair (negative flag, magnitude).
bool load_int(GgufType t, const uint8_t* p, int64_t* out_signed, uint64_t* out_unsigned,
              bool* is_negative) {
  int64_t s = 0;
  uint64_t u = 0;
  bool neg = false;
  switch (t) {
    case GgufType::UINT8:
    case GgufType::BOOL:
      u = load<uint8_t>(p);
      break;
    case GgufType::UINT16:
      u = load<uint16_t>(p);
      break;
    case GgufType::UINT32:
      u = load<uint32_t>(p);
      break;
    case GgufType::UINT64:
      u = load<uint64_t>(p);
      break;
    case GgufType::INT8:
      s = load<int8_t>(p);
      neg = s < 0;
      break;
    case GgufType::INT16:
      s = load<int16_t>(p);
      neg = s < 0;
      break;
    case GgufType::INT32:
      s = load<int32_t>(p);
      neg = s < 0;
      break;
    case GgufType::INT64:
      s = load<int64_t>(p);
      neg = s < 0;
      break;
    default:
      return false;
  }
  const bool is_signed_type =
      t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
  if (is_signed_type) {
    *out_signed = s;
    *out_unsigned = neg ? 0 : static_cast<uint64_t>(s);
  } else {
    *out_unsigned = u;
    *out_signed = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  *is_negative = neg;
  return true;
}

bool is_int_type(GgufType t) {
  return gguf_scalar_size(t) != 0 && t != GgufType::FLOAT32 && t != GgufType::FLOAT64;
}

// ggml type_traits: name, block size, bytes per block, dequantizable by qforge. Index = id.
constexpr GgmlTypeInfo kTypes[] = {
    {"f32", 1, 4, true},         {"f16", 1, 2, true},         {"q4_0", 32, 18, true},
    {"q4_1", 32, 20, true},      {nullptr, 0, 0, false},      {nullptr, 0, 0, false},
    {"q5_0", 32, 22, false},     {"q5_1", 32, 24, false},     {"q8_0", 32, 34, true},
    {"q8_1", 32, 36, false},     {"q2_K", 256, 84, false},    {"q3_K", 256, 110, false},
    {"q4_K", 256, 144, false},   {"q5_K", 256, 176, false},   {"q6_K", 256, 210, false},
    {"q8_K", 256, 292, false},   {"iq2_xxs", 256, 66, false}, {"iq2_xs", 256, 74, false},
    {"iq3_xxs", 256, 98, false}, {"iq1_s", 256, 50, false},   {"iq4_nl", 32, 18, false},
    {"iq3_s", 256, 110, false},  {"iq2_s", 256, 82, false},   {"iq4_xs", 256, 136, false},
    {"i8", 1, 1, false},         {"i16", 1, 2, false},        {"i32", 1, 4, false},
    {"i64", 1, 8, false},        {"f64", 1, 8, false},        {"iq1_m", 256, 56, false},
    {"bf16", 1, 2, true},        {nullptr, 0, 0, false},      {nullptr, 0, 0, false},
    {nullptr, 0, 0, false},      {"tq1_0", 256, 54, false},   {"tq2_0", 256, 66, false},
    {nullptr, 0, 0, false},      {nullptr, 0, 0, false},      {nullptr, 0, 0, false},
    {"mxfp4", 32, 17, false},    {"nvfp4", 64, 36, false},
};

}  // namespace

const char* gguf_type_name(GgufType type) {
  static constexpr const char* kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                           "int32",  "float32", "bool",   "string", "array",
                                           "uint64", "int64",   "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

const GgmlTypeInfo* gguf_tensor_type_info(uint32_t type) {
  if (type >= std::size(kTypes) || kTypes[type].name == nullptr) return nullptr;
  return &kTypes[type];
}

GgufValue GgufValue::scalar(GgufType type, const void* data, size_t n) {
  GgufValue v;
  v.type_ = type;
  v.raw_.resize(n);
  std::memcpy(v.raw_.data(), data, n);
  return v;
}

GgufValue GgufValue::string(std::string s) {
  GgufValue v;
  v.type_ = GgufType::STRING;
  v.string_ = std::move(s);
  return v;
}

GgufValue GgufValue::string_array(std::vector<std::string> values) {
  GgufValue v;
  v.type_ = GgufType::ARRAY;
  v.array_type_ = GgufType::STRING;
  v.strings_ = std::move(values);
  return v;
}

Result<GgufValue> GgufValue::numeric_array(GgufType element_type, std::vector<uint8_t> raw) {
  const size_t size = gguf_scalar_size(element_type);
  if (size == 0 || raw.size() % size != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GgufValue: {} bytes do not form an array of {} (element size {})",
                      raw.size(), gguf_type_name(element_type), size);
  }
  GgufValue v;
  v.type_ = GgufType::ARRAY;
  v.array_type_ = element_type;
  v.raw_ = std::move(raw);
  return v;
}

uint64_t GgufValue::array_size() const {
  if (type_ != GgufType::ARRAY) return 0;
  if (array_type_ == GgufType::STRING) return strings_.size();
  return raw_.size() / gguf_scalar_size(array_type_);
}

std::optional<int64_t> GgufValue::as_int() const {
  int64_t s = 0;
  uint64_t u = 0;
  bool neg = false;
  if (!is_int_type(type_) || !load_int(type_, raw_.data(), &s, &u, &neg)) return std::nullopt;
  if (!neg && u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return s;
}

std::optional<uint64_t> GgufValue::as_uint() const {
  int64_t s = 0;
  uint64_t u = 0;
  bool neg = false;
  if (!is_int_type(type_) || !load_int(type_, raw_.data(), &s, &u, &neg) || neg) {
    return std::nullopt;
  }
  return u;
}

std::optional<double> GgufValue::as_float() const {
  if (type_ == GgufType::FLOAT32) return load<float>(raw_.data());
  if (type_ == GgufType::FLOAT64) return load<double>(raw_.data());
  if (auto i = as_int()) return static_cast<double>(*i);
  if (auto u = as_uint()) return static_cast<double>(*u);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufType::BOOL) return std::nullopt;
  return raw_[0] != 0;
}

const std::string* GgufValue::as_string() const {
  return type_ == GgufType::STRING ? &string_ : nullptr;
}

const std::vector<std::string>* GgufValue::as_string_array() const {
  return is_array() && array_type_ == GgufType::STRING ? &strings_ : nullptr;
}

std::optional<std::vector<float>> GgufValue::as_f32_array() const {
  if (!is_array()) return std::nullopt;
  std::vector<float> out;
  if (array_type_ == GgufType::FLOAT32) {
    out.resize(raw_.size() / 4);
    if (!out.empty()) std::memcpy(out.data(), raw_.data(), raw_.size());
  } else if (array_type_ == GgufType::FLOAT64) {
    out.reserve(raw_.size() / 8);
    for (size_t i = 0; i < raw_.size(); i += 8) {
      out.push_back(static_cast<float>(load<double>(raw_.data() + i)));
    }
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<int64_t>> GgufValue::as_int_array() const {
  if (!is_array() || !is_int_type(array_type_)) return std::nullopt;
  const size_t size = gguf_scalar_size(array_type_);
  std::vector<int64_t> out;
  out.reserve(raw_.size() / size);
  for (size_t i = 0; i < raw_.size(); i += size) {
    int64_t s = 0;
    uint64_t u = 0;
    bool neg = false;
    load_int(array_type_, raw_.data() + i, &s, &u, &neg);
    out.push_back(s);
  }
  return out;
}

std::string GgufValue::to_string() const {
  if (type_ == GgufType::STRING) return fmt::format("\"{}\"", io_detail::printable(string_, 60));
  if (type_ == GgufType::ARRAY) {
    return fmt::format("[{} x {}]", array_size(), gguf_type_name(array_type_));
  }
  if (type_ == GgufType::BOOL) return raw_[0] ? "true" : "false";
  if (type_ == GgufType::FLOAT32) return fmt::format("{}", load<float>(raw_.data()));
  if (type_ == GgufType::FLOAT64) return fmt::format("{}", load<double>(raw_.data()));
  if (auto i = as_int()) return std::to_string(*i);
  if (auto u = as_uint()) return std::to_string(*u);
  return "?";
}

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    default:
      return 0;
  }
}

}  // namespace qforge
