// engine_metadata.h: JSON forms of the engine's build config, model config and KV-cache scales.
#include "engine/engine_metadata.h"

#include <cmath>

#include "qforge/io/hf_config.h"
#include "qforge/model/synthetic.h"

namespace qforge::engine_detail {
namespace {

constexpr const char* kRopeLayoutKey = "qforge_rope_layout";

template <typename T>
Result<T> get_field(const nlohmann::json& j, const char* key, const char* where) {
  auto it = j.find(key);
  if (it == j.end()) {
    return make_error(ErrorCode::kFormat, "engine {}: key '{}' is missing", where, key);
  }
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return make_error(ErrorCode::kFormat, "engine {}: key '{}' has the wrong type ({})", where, key,
                      it->type_name());
  }
}

}  // namespace

Result<nlohmann::json> parse_metadata_json(const std::string& key, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(ErrorCode::kFormat, "engine metadata '{}' is not valid JSON", key);
  }
  return j;
}

nlohmann::json build_config_to_json(const BuildConfig& c) {
  nlohmann::json j;
  j["max_input_len"] = c.max_input_len;
  j["max_seq_len"] = c.max_seq_len;
  j["max_batch_size"] = c.max_batch_size;
  j["max_num_tokens"] = c.max_num_tokens;
  j["precision"] = std::string(dtype_name(c.precision));
  j["kv_cache_block_size"] = c.kv_cache_block_size;
  j["kv_cache_blocks"] = c.kv_cache_blocks;
  j["kv_cache_storage"] =
      c.kv_cache_storage ? std::string(kv_cache_storage_name(*c.kv_cache_storage)) : "";
  j["backend"] = std::string(backend_name(c.backend));
  j["kernel_selection"] = c.kernel_selection;
  j["memory_budget_bytes"] = c.memory_budget_bytes;
  if (c.quant_config) j["quant_algo"] = std::string(quant_algo_name(c.quant_config->quant_algo));
  return j;
}

Result<BuildConfig> build_config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return make_error(ErrorCode::kFormat, "engine build config is not an object");
  const char* w = "build config";
  BuildConfig c;
  QF_ASSIGN_OR_RETURN(c.max_input_len, get_field<int64_t>(j, "max_input_len", w));
  QF_ASSIGN_OR_RETURN(c.max_seq_len, get_field<int64_t>(j, "max_seq_len", w));
  QF_ASSIGN_OR_RETURN(c.max_batch_size, get_field<int64_t>(j, "max_batch_size", w));
  QF_ASSIGN_OR_RETURN(c.max_num_tokens, get_field<int64_t>(j, "max_num_tokens", w));
  QF_ASSIGN_OR_RETURN(c.kv_cache_block_size, get_field<int64_t>(j, "kv_cache_block_size", w));
  QF_ASSIGN_OR_RETURN(c.kv_cache_blocks, get_field<int64_t>(j, "kv_cache_blocks", w));
  QF_ASSIGN_OR_RETURN(c.kernel_selection, get_field<bool>(j, "kernel_selection", w));
  QF_ASSIGN_OR_RETURN(c.memory_budget_bytes, get_field<uint64_t>(j, "memory_budget_bytes", w));
  QF_ASSIGN_OR_RETURN(std::string precision, get_field<std::string>(j, "precision", w));
  QF_ASSIGN_OR_RETURN(c.precision, parse_dtype(precision));
  QF_ASSIGN_OR_RETURN(std::string kv, get_field<std::string>(j, "kv_cache_storage", w));
  if (!kv.empty()) {
    QF_ASSIGN_OR_RETURN(KvCacheStorage s, parse_kv_cache_storage(kv));
    c.kv_cache_storage = s;
  }
  QF_ASSIGN_OR_RETURN(std::string backend, get_field<std::string>(j, "backend", w));
  QF_ASSIGN_OR_RETURN(c.backend, parse_backend(backend));
  QF_TRY(validate_build_config(c).context("engine build config"));
  return c;
}

std::string model_config_to_text(const ModelConfig& config) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(hf_config_json(config));
  j[kRopeLayoutKey] = config.rope_layout == RopeLayout::Interleaved ? "interleaved" : "half_split";
  if (config.pad_token_id >= 0) j["pad_token_id"] = config.pad_token_id;
  return j.dump();
}

Result<ModelConfig> model_config_from_text(const std::string& text) {
  QF_ASSIGN_OR_RETURN(ModelConfig c, parse_hf_config(text, "engine model config"));
  QF_ASSIGN_OR_RETURN(nlohmann::json j, parse_metadata_json(kModelConfigKey, text));
  QF_ASSIGN_OR_RETURN(std::string layout,
                      get_field<std::string>(j, kRopeLayoutKey, "model config"));
  if (layout == "interleaved") {
    c.rope_layout = RopeLayout::Interleaved;
  } else if (layout == "half_split") {
    c.rope_layout = RopeLayout::HalfSplit;
  } else {
    return make_error(ErrorCode::kFormat,
                      "engine model config: {} '{}' is not interleaved or "
                      "half_split",
                      kRopeLayoutKey, layout);
  }
  QF_TRY(validate_model_config(c).context("engine model config"));
  return c;
}

nlohmann::json kv_cache_quant_to_json(const KvCacheQuant& kv) {
  nlohmann::json j;
  j["dtype"] = std::string(kv_cache_dtype_name(kv.dtype));
  j["per_head"] = kv.per_head;
  j["k_scale"] = kv.k_scale;
  j["v_scale"] = kv.v_scale;
  return j;
}

Result<KvCacheQuant> kv_cache_quant_from_json(const nlohmann::json& j) {
  if (!j.is_object())
    return make_error(ErrorCode::kFormat, "engine KV-cache entry is not an object");
  const char* w = "KV-cache entry";
  KvCacheQuant kv;
  QF_ASSIGN_OR_RETURN(std::string dtype, get_field<std::string>(j, "dtype", w));
  if (dtype == "f32") {
    kv.dtype = KvCacheDType::kF32;
  } else if (dtype == "fp8") {
    kv.dtype = KvCacheDType::kFp8;
  } else if (dtype == "int8") {
    kv.dtype = KvCacheDType::kInt8;
  } else {
    return make_error(ErrorCode::kFormat, "engine KV-cache dtype '{}' is not f32, fp8 or int8",
                      dtype);
  }
  QF_ASSIGN_OR_RETURN(kv.per_head, get_field<bool>(j, "per_head", w));
  QF_ASSIGN_OR_RETURN(kv.k_scale, get_field<std::vector<float>>(j, "k_scale", w));
  QF_ASSIGN_OR_RETURN(kv.v_scale, get_field<std::vector<float>>(j, "v_scale", w));
  return kv;
}

}  // namespace qforge::engine_detail
