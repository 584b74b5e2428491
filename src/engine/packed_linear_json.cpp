// JSON form of PackedLinearInfo (engine/packed_linear_json.h). Keys: kernel, variant,
// layout_version, rows, cols, weight (quant_spec_name spelling, e.g. "int4_g128"), activation
// (activation_quant_name), input_scale, tensor_scale, has_pre_quant_scale.
#include "engine/packed_linear_json.h"

#include <array>
#include <cmath>
#include <limits>

#include "engine/packed_linear_kernels.h"

namespace qforge {
namespace {

constexpr std::array kActivations = {
    ActivationQuant::kNone,          ActivationQuant::kFp8PerTensor,
    ActivationQuant::kFp8PerToken,   ActivationQuant::kFp8PerGroup128,
    ActivationQuant::kInt8PerTensor, ActivationQuant::kInt8PerToken,
    ActivationQuant::kNvfp4,
};

Result<const nlohmann::json*> field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear JSON: missing field '{}'", key);
  }
  return &*it;
}

Result<int64_t> int_field(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
  QF_ASSIGN_OR_RETURN(const nlohmann::json* v, field(j, key));
  if (!v->is_number_integer()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field '{}' must be an integer, got {}", key, v->dump());
  }
  const auto x = v->get<int64_t>();
  if (x < lo || x > hi) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field '{}' = {} is out of range [{}, {}]", key, x, lo,
                      hi);
  }
  return x;
}

Result<float> float_field(const nlohmann::json& j, const char* key) {
  QF_ASSIGN_OR_RETURN(const nlohmann::json* v, field(j, key));
  if (!v->is_number()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field '{}' must be a number, got {}", key, v->dump());
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field '{}' = {} is not a finite float", key, d);
  }
  return static_cast<float>(d);
}

Result<std::string> string_field(const nlohmann::json& j, const char* key) {
  QF_ASSIGN_OR_RETURN(const nlohmann::json* v, field(j, key));
  if (!v->is_string()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field '{}' must be a string, got {}", key, v->dump());
  }
  return v->get<std::string>();
}

}  // namespace

nlohmann::json packed_linear_info_to_json(const PackedLinearInfo& info) {
  nlohmann::json j;
  j["kernel"] = info.kernel;
  j["variant"] = info.variant;
  j["layout_version"] = info.layout_version;
  j["rows"] = info.rows;
  j["cols"] = info.cols;
  j["weight"] = quant_spec_name(info.weight);
  j["activation"] = std::string(activation_quant_name(info.activation));
  // Floats as doubles: every float is exactly a double, so the round trip is exact.
  j["input_scale"] = static_cast<double>(info.input_scale);
  j["tensor_scale"] = static_cast<double>(info.tensor_scale);
  j["has_pre_quant_scale"] = info.has_pre_quant_scale;
  return j;
}

Result<PackedLinearInfo> packed_linear_info_from_json(const nlohmann::json& j) {
  if (!j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear JSON: expected an object, got {}",
                      j.type_name());
  }
  PackedLinearInfo info;
  QF_ASSIGN_OR_RETURN(info.kernel, string_field(j, "kernel"));
  if (find_packed_kernel(info.kernel) == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear JSON: unknown kernel '{}' ({})",
                      info.kernel, packed_kernel_names());
  }
  QF_ASSIGN_OR_RETURN(const int64_t variant, int_field(j, "variant", 0, 1 << 20));
  info.variant = static_cast<int>(variant);
  QF_ASSIGN_OR_RETURN(const int64_t version, int_field(j, "layout_version", 0, 1 << 20));
  info.layout_version = static_cast<int>(version);
  QF_ASSIGN_OR_RETURN(info.rows, int_field(j, "rows", 1, (int64_t{1} << 31) - 1));
  QF_ASSIGN_OR_RETURN(info.cols, int_field(j, "cols", 1, (int64_t{1} << 31) - 1));
  QF_ASSIGN_OR_RETURN(const std::string weight, string_field(j, "weight"));
  QF_ASSIGN_OR_RETURN(info.weight,
                      parse_quant_spec(weight).context("packed linear JSON: field 'weight'"));
  QF_ASSIGN_OR_RETURN(const std::string act, string_field(j, "activation"));
  bool found = false;
  for (ActivationQuant a : kActivations) {
    if (act == activation_quant_name(a)) {
      info.activation = a;
      found = true;
    }
  }
  if (!found) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: unknown activation scheme '{}'", act);
  }
  QF_ASSIGN_OR_RETURN(info.input_scale, float_field(j, "input_scale"));
  QF_ASSIGN_OR_RETURN(info.tensor_scale, float_field(j, "tensor_scale"));
  QF_ASSIGN_OR_RETURN(const nlohmann::json* pqs, field(j, "has_pre_quant_scale"));
  if (!pqs->is_boolean()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear JSON: field 'has_pre_quant_scale' must be a boolean, got {}",
                      pqs->dump());
  }
  info.has_pre_quant_scale = pqs->get<bool>();
  QF_TRY(validate_packed_linear_info(info));
  return info;
}

}  // namespace qforge
