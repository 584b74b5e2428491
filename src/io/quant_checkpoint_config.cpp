// Checkpoint-level quantization configs: ModelOpt's hf_quant_config.json and the config.json
// "quantization_config" (ModelOpt's compressed-tensors-style spelling, or compressed-tensors'
// own in quant_checkpoint_config_ct.cpp), written and parsed with errors naming file and key.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "io/io_util.h"
#include "io/quant_checkpoint_internal.h"

namespace qforge {
namespace qckpt {

using nlohmann::json;

namespace {

std::string show(const json& v) {
  return io_detail::printable(v.dump(-1, ' ', false, json::error_handler_t::replace), 48);
}

Error type_error(std::string_view file, const std::string& path, const char* want, const json& v) {
  return make_error(ErrorCode::kFormat, "{}: {} must be {}, got {} ({})", file, path, want,
                    io_detail::json_type_name(v), show(v));
}

std::string join_path(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<const json*> json_opt_object(const json& obj, const char* key, std::string_view file,
                                    const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return type_error(file, join_path(path, key), "an object", *it);
  return &*it;
}

Result<std::optional<std::string>> json_opt_string(const json& obj, const char* key,
                                                   std::string_view file, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return type_error(file, join_path(path, key), "a string", *it);
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<int64_t>> json_opt_int(const json& obj, const char* key, std::string_view file,
                                            const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  QF_ASSIGN_OR_RETURN(int64_t v, io_detail::json_to_int64(*it, file, join_path(path, key)));
  return std::optional<int64_t>(v);
}

Result<std::optional<bool>> json_opt_bool(const json& obj, const char* key, std::string_view file,
                                          const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return type_error(file, join_path(path, key), "true or false", *it);
  return std::optional<bool>(it->get<bool>());
}

Result<std::vector<std::string>> json_opt_strings(const json& obj, const char* key,
                                                  std::string_view file, const std::string& path) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  const std::string p = join_path(path, key);
  if (!it->is_array()) return type_error(file, p, "an array of strings", *it);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_string()) return type_error(file, fmt::format("{}[{}]", p, i), "a string", e);
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<QuantAlgo> algo_from_text(std::string_view text, std::string_view file,
                                 const std::string& path) {
  const std::string up = upper(text);
  if (up == "FP8_PB_WO") return QuantAlgo::FP8_BLOCK_SCALES;
  // ModelOpt algorithms without a qforge counterpart: valid files qforge cannot serve.
  static constexpr std::array<std::string_view, 9> kKnownElsewhere = {
      "W4A16_NVFP4", "NVFP4_AWQ",      "NVFP4_SVD",
      "MXFP8",       "W4A8_NVFP4_FP8", "W4A8_MXFP4_MXFP8",
      "FP8_PB_REAL", "NVFP4_STATIC",   "W4A8_QSERVE_PER_GROUP"};
  for (std::string_view k : kKnownElsewhere) {
    if (up == k) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {} = '{}' is a ModelOpt / TensorRT-LLM algorithm qforge does not "
                        "implement",
                        file, path, text);
    }
  }
  auto a = parse_quant_algo(up);
  if (!a.ok() || *a == QuantAlgo::INT8) {
    std::string names;
    for (int i = 0; i <= static_cast<int>(QuantAlgo::MIXED_PRECISION); ++i) {
      if (!names.empty()) names += ", ";
      names += quant_algo_name(static_cast<QuantAlgo>(i));
    }
    return make_error(ErrorCode::kFormat,
                      "{}: {} = '{}' is not a known quantization algorithm (expected one of {}, or "
                      "fp8_pb_wo)",
                      file, path, io_detail::printable(text), names);
  }
  return *a;
}

// KV-cache fields also accept INT8, which is a KV-cache format only.
Result<QuantAlgo> kv_algo_from_text(const std::string& text, std::string_view file,
                                    const std::string& path) {
  if (upper(text) == "INT8") return QuantAlgo::INT8;
  return algo_from_text(text, file, path);
}

std::string algo_to_text(QuantAlgo algo) {
  // ModelOpt writes FP8_PB_WO lowercase; TensorRT-LLM maps exactly "fp8_pb_wo" to
  // FP8_BLOCK_SCALES and vLLM upper-cases it, so both read this spelling.
  if (algo == QuantAlgo::FP8_BLOCK_SCALES) return "fp8_pb_wo";
  return std::string(quant_algo_name(algo));
}

bool algo_is_int4(QuantAlgo a) {
  return a == QuantAlgo::W4A16 || a == QuantAlgo::W4A16_AWQ || a == QuantAlgo::W4A16_GPTQ ||
         a == QuantAlgo::W4A8_AWQ;
}

bool same_storage(QuantAlgo a, QuantAlgo b) {
  auto family = [](QuantAlgo x) {
    if (x == QuantAlgo::W4A16_AWQ || x == QuantAlgo::W4A16_GPTQ) return QuantAlgo::W4A16;
    if (x == QuantAlgo::W8A16_GPTQ) return QuantAlgo::W8A16;
    return x;
  };
  return family(a) == family(b);
}

namespace {

bool uses_int4(const QuantCheckpointInfo& info) {
  if (algo_is_int4(info.quant_algo)) return true;
  for (const auto& [m, a] : info.layer_algos) {
    if (algo_is_int4(a)) return true;
  }
  return false;
}

}  // namespace

Status check_group_size(int64_t g, std::string_view file, const std::string& path) {
  if (g <= 0) {
    return make_error(ErrorCode::kFormat, "{}: {} = {} must be a positive group size", file, path,
                      g);
  }
  if (g < 16 || g > 4096 || (g & (g - 1)) != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {} = {}: qforge's INT4 groups are powers of two in [16, 4096]", file,
                      path, g);
  }
  return ok_status();
}

Status validate_info(const QuantCheckpointInfo& info) {
  const char* fl = format_label(info.format);
  auto per_layer_ok = [](QuantAlgo a) {
    return a != QuantAlgo::NO_QUANT && a != QuantAlgo::MIXED_PRECISION && a != QuantAlgo::INT8;
  };
  if (info.quant_algo == QuantAlgo::INT8) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} config: quant_algo INT8 is a KV-cache format (use W8A8_SQ_* for "
                      "weights)",
                      fl);
  }
  if (info.kv_cache_quant_algo != QuantAlgo::NO_QUANT &&
      info.kv_cache_quant_algo != QuantAlgo::FP8 && info.kv_cache_quant_algo != QuantAlgo::INT8) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} config: kv_cache_quant_algo {} (expected FP8, INT8 or NO_QUANT)", fl,
                      quant_algo_name(info.kv_cache_quant_algo));
  }
  if (info.quant_algo == QuantAlgo::NO_QUANT && info.kv_cache_quant_algo == QuantAlgo::NO_QUANT) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} config: neither weights nor the KV cache are quantized", fl);
  }
  if (info.kv_cache_per_head && info.kv_cache_quant_algo == QuantAlgo::NO_QUANT) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} config: kv_cache_per_head without a KV-cache algorithm", fl);
  }
  if (info.quant_algo == QuantAlgo::MIXED_PRECISION && info.layer_algos.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} config: MIXED_PRECISION needs layer_algos (module -> algorithm)", fl);
  }
  for (const auto& [module, algo] : info.layer_algos) {
    if (module.empty() || !per_layer_ok(algo)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} config: layer_algos['{}'] = {} (expected a weight algorithm; list "
                        "unquantized modules in exclude_modules)",
                        fl, module, quant_algo_name(algo));
    }
    if (info.quant_algo != QuantAlgo::MIXED_PRECISION && algo != info.quant_algo) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} config: layer_algos['{}'] = {} differs from quant_algo {} (use "
                        "MIXED_PRECISION)",
                        fl, module, quant_algo_name(algo), quant_algo_name(info.quant_algo));
    }
  }
  for (const auto& e : info.exclude_modules) {
    if (e.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "{} config: empty exclude_modules entry", fl);
    }
  }
  if (uses_int4(info)) {
    QF_TRY(check_group_size(info.group_size, fl, "group_size"));
    if (info.has_zero_point &&
        (info.quant_algo == QuantAlgo::W4A8_AWQ ||
         info.layer_algos.end() !=
             std::find_if(info.layer_algos.begin(), info.layer_algos.end(),
                          [](const auto& kv) { return kv.second == QuantAlgo::W4A8_AWQ; }))) {
      return make_error(ErrorCode::kUnsupported,
                        "{} config: W4A8_AWQ is symmetric INT4 (has_zero_point must be false)", fl);
    }
  }
  if (info.format == QuantExportFormat::kModelOpt) {
    if (info.has_zero_point && uses_int4(info)) {
      return make_error(ErrorCode::kUnsupported,
                        "ModelOpt config: has_zero_point INT4 has no ModelOpt layout "
                        "(pack_int4_in_uint8 is symmetric); export as compressed-tensors");
    }
    if (info.kv_cache_per_head) {
      return make_error(ErrorCode::kUnsupported,
                        "ModelOpt config: per-head KV-cache scales have no ModelOpt layout; "
                        "export as compressed-tensors (strategy attn_head)");
    }
  }
  return ok_status();
}

namespace {

// The per-algorithm keys ModelOpt's process_layer_quant_config writes (quant_utils.py).
json modelopt_layer_config(QuantAlgo algo, const QuantCheckpointInfo& info) {
  json c = json::object();
  c["quant_algo"] = algo_to_text(algo);
  if (algo_is_int4(algo)) {
    c["group_size"] = info.group_size;
    c["has_zero_point"] = false;
    c["pre_quant_scale"] = info.pre_quant_scale;
  } else if (algo == QuantAlgo::NVFP4) {
    c["group_size"] = BlockNvfp4::kBlockSize;
  } else if (algo == QuantAlgo::W4A16_MXFP4 || algo == QuantAlgo::W4A8_MXFP4_FP8) {
    c["group_size"] = BlockMxfp4::kBlockSize;
  }
  return c;
}

json producer_json(const QuantCheckpointInfo& info) {
  return json{{"name", info.producer_name}, {"version", info.producer_version}};
}

}  // namespace

Result<json> make_config_groups(const QuantCheckpointInfo& info) {
  json groups = json::object();
  if (info.layer_algos.empty()) {
    if (info.quant_algo == QuantAlgo::NO_QUANT) return groups;
    QF_ASSIGN_OR_RETURN(json g,
                        ct_scheme_for_algo(info.quant_algo, info.group_size, info.has_zero_point));
    g["targets"] = json::array({"Linear"});
    groups["group_0"] = std::move(g);
    return groups;
  }
  std::vector<QuantAlgo> order;
  for (const auto& [m, a] : info.layer_algos) {
    if (std::find(order.begin(), order.end(), a) == order.end()) order.push_back(a);
  }
  for (size_t i = 0; i < order.size(); ++i) {
    QF_ASSIGN_OR_RETURN(json g, ct_scheme_for_algo(order[i], info.group_size, info.has_zero_point));
    json targets = json::array();
    for (const auto& [m, a] : info.layer_algos) {
      if (a == order[i]) targets.push_back(m);  // std::map: sorted module names
    }
    g["targets"] = std::move(targets);
    groups[fmt::format("group_{}", i)] = std::move(g);
  }
  return groups;
}

}  // namespace qckpt

using namespace qckpt;
using nlohmann::json;

Result<json> make_hf_quant_config(const QuantCheckpointInfo& info) {
  if (info.format != QuantExportFormat::kModelOpt) {
    return make_error(ErrorCode::kInvalidArgument,
                      "hf_quant_config.json is ModelOpt's file; compressed-tensors checkpoints "
                      "describe themselves in config.json (make_quantization_config)");
  }
  QF_TRY(validate_info(info));
  json q = json::object();
  q["quant_algo"] =
      info.quant_algo == QuantAlgo::NO_QUANT ? json(nullptr) : json(algo_to_text(info.quant_algo));
  q["kv_cache_quant_algo"] = info.kv_cache_quant_algo == QuantAlgo::NO_QUANT
                                 ? json(nullptr)
                                 : json(quant_algo_name(info.kv_cache_quant_algo));
  if (info.quant_algo != QuantAlgo::MIXED_PRECISION && info.quant_algo != QuantAlgo::NO_QUANT) {
    json layer = modelopt_layer_config(info.quant_algo, info);
    for (auto it = layer.begin(); it != layer.end(); ++it) q[it.key()] = it.value();
  }
  q["exclude_modules"] = info.exclude_modules;
  if (!info.layer_algos.empty()) {
    json layers = json::object();
    for (const auto& [m, a] : info.layer_algos) layers[m] = modelopt_layer_config(a, info);
    q["quantized_layers"] = std::move(layers);
  }
  return json{{"producer", producer_json(info)}, {"quantization", std::move(q)}};
}

Result<json> make_quantization_config(const QuantCheckpointInfo& info) {
  if (info.format == QuantExportFormat::kCompressedTensors) {
    return make_ct_quantization_config(info);
  }
  // ModelOpt's convert_hf_quant_config_format (convert_hf_config.py): the hf_quant_config
  // content re-spelled for config.json, which vLLM prefers over hf_quant_config.json.
  QF_TRY(validate_info(info));
  json qc = json::object();
  QF_ASSIGN_OR_RETURN(qc["config_groups"], make_config_groups(info));
  qc["ignore"] = info.exclude_modules;
  if (info.quant_algo != QuantAlgo::NO_QUANT) qc["quant_algo"] = algo_to_text(info.quant_algo);
  if (info.kv_cache_quant_algo == QuantAlgo::FP8) {
    qc["kv_cache_scheme"] = json{{"dynamic", false}, {"num_bits", 8}, {"type", "float"}};
  } else if (info.kv_cache_quant_algo == QuantAlgo::INT8) {
    qc["kv_cache_scheme"] = "INT8";  // ModelOpt writes non-FP8 KV algorithms as their name
  }
  if (info.quant_algo != QuantAlgo::MIXED_PRECISION && info.quant_algo != QuantAlgo::NO_QUANT) {
    json layer = modelopt_layer_config(info.quant_algo, info);
    layer.erase("quant_algo");
    for (auto it = layer.begin(); it != layer.end(); ++it) qc[it.key()] = it.value();
  }
  if (!info.layer_algos.empty()) {
    json layers = json::object();
    for (const auto& [m, a] : info.layer_algos) layers[m] = modelopt_layer_config(a, info);
    qc["quantized_layers"] = std::move(layers);
  }
  qc["producer"] = producer_json(info);
  qc["quant_method"] = "modelopt";
  return qc;
}

namespace {

// Parses the ModelOpt keys shared by hf_quant_config.json's "quantization" object and the
// config.json quantization_config (quant_method "modelopt").
Result<QuantCheckpointInfo> parse_modelopt_object(const json& q, std::string_view file,
                                                  const std::string& path, bool config_json) {
  QuantCheckpointInfo info;
  info.format = QuantExportFormat::kModelOpt;
  QF_ASSIGN_OR_RETURN(auto algo_text, json_opt_string(q, "quant_algo", file, path));
  if (algo_text) {
    QF_ASSIGN_OR_RETURN(info.quant_algo,
                        algo_from_text(*algo_text, file, join_path(path, "quant_algo")));
  }
  if (config_json) {
    auto it = q.find("kv_cache_scheme");
    if (it != q.end() && !it->is_null()) {
      const std::string kp = join_path(path, "kv_cache_scheme");
      if (it->is_string()) {
        QF_ASSIGN_OR_RETURN(info.kv_cache_quant_algo,
                            kv_algo_from_text(it->get<std::string>(), file, kp));
      } else if (it->is_object()) {
        QF_TRY(parse_ct_kv_cache_scheme(*it, file, kp, info));
      } else {
        return type_error(file, kp, "an object or a string", *it);
      }
    }
    QF_ASSIGN_OR_RETURN(info.exclude_modules, json_opt_strings(q, "ignore", file, path));
  } else {
    QF_ASSIGN_OR_RETURN(auto kv, json_opt_string(q, "kv_cache_quant_algo", file, path));
    if (kv) {
      const std::string kp = join_path(path, "kv_cache_quant_algo");
      if (upper(*kv) == "NVFP4" || upper(*kv) == "NVFP4_AFFINE") {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {} = '{}': qforge's KV cache is FP8 or INT8", file, kp, *kv);
      }
      QF_ASSIGN_OR_RETURN(info.kv_cache_quant_algo, kv_algo_from_text(*kv, file, kp));
    }
    QF_ASSIGN_OR_RETURN(info.exclude_modules, json_opt_strings(q, "exclude_modules", file, path));
  }
  if (info.kv_cache_quant_algo != QuantAlgo::NO_QUANT &&
      info.kv_cache_quant_algo != QuantAlgo::FP8 && info.kv_cache_quant_algo != QuantAlgo::INT8) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {}: KV-cache algorithm {} (expected FP8 or INT8)", file,
                      join_path(path, config_json ? "kv_cache_scheme" : "kv_cache_quant_algo"),
                      quant_algo_name(info.kv_cache_quant_algo));
  }
  if (info.kv_cache_per_head) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {}: per-head KV-cache scales are not a ModelOpt layout", file,
                      join_path(path, "kv_cache_scheme"));
  }
  QF_ASSIGN_OR_RETURN(auto group_size, json_opt_int(q, "group_size", file, path));
  QF_ASSIGN_OR_RETURN(auto zero_point, json_opt_bool(q, "has_zero_point", file, path));
  QF_ASSIGN_OR_RETURN(auto pqs, json_opt_bool(q, "pre_quant_scale", file, path));
  info.pre_quant_scale = pqs.value_or(false);
  bool has_zero_point = zero_point.value_or(false);
  std::optional<int64_t> int4_group;  // the INT4 group size, wherever it is stated
  auto note_group = [&](QuantAlgo algo, std::optional<int64_t> g,
                        const std::string& gpath) -> Status {
    if (!g) return ok_status();
    if (*g <= 0) {
      return make_error(ErrorCode::kFormat, "{}: {} = {} must be a positive group size", file,
                        gpath, *g);
    }
    const int64_t fixed = algo == QuantAlgo::NVFP4 ? BlockNvfp4::kBlockSize
                          : (algo == QuantAlgo::W4A16_MXFP4 || algo == QuantAlgo::W4A8_MXFP4_FP8)
                              ? BlockMxfp4::kBlockSize
                          : algo == QuantAlgo::FP8_BLOCK_SCALES ? kFp8BlockTile
                                                                : 0;
    if (fixed != 0 && *g != fixed) {
      return make_error(ErrorCode::kUnsupported, "{}: {} = {}: {} uses blocks of {}", file, gpath,
                        *g, quant_algo_name(algo), fixed);
    }
    if (algo_is_int4(algo)) {
      QF_TRY(check_group_size(*g, file, gpath));
      if (int4_group && *int4_group != *g) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {} = {} differs from the group size {} of other INT4 layers (qforge "
                          "keeps one INT4 group size per checkpoint)",
                          file, gpath, *g, *int4_group);
      }
      int4_group = *g;
    }
    return ok_status();
  };
  if (info.quant_algo != QuantAlgo::MIXED_PRECISION) {
    QF_TRY(note_group(info.quant_algo, group_size, join_path(path, "group_size")));
  } else if (group_size && *group_size <= 0) {
    return make_error(ErrorCode::kFormat, "{}: {} = {} must be a positive group size", file,
                      join_path(path, "group_size"), *group_size);
  }
  QF_ASSIGN_OR_RETURN(const json* layers, json_opt_object(q, "quantized_layers", file, path));
  if (layers) {
    const std::string lp = join_path(path, "quantized_layers");
    for (auto it = layers->begin(); it != layers->end(); ++it) {
      const std::string ep = lp + "." + it.key();
      if (!it->is_object()) return type_error(file, ep, "an object", *it);
      QF_ASSIGN_OR_RETURN(auto a, json_opt_string(*it, "quant_algo", file, ep));
      if (!a) {
        return make_error(ErrorCode::kFormat, "{}: {}.quant_algo is missing", file, ep);
      }
      QF_ASSIGN_OR_RETURN(QuantAlgo algo, algo_from_text(*a, file, ep + ".quant_algo"));
      if (algo == QuantAlgo::NO_QUANT || algo == QuantAlgo::MIXED_PRECISION) {
        return make_error(ErrorCode::kFormat, "{}: {}.quant_algo = '{}' is not a layer format",
                          file, ep, *a);
      }
      QF_ASSIGN_OR_RETURN(auto g, json_opt_int(*it, "group_size", file, ep));
      QF_TRY(note_group(algo, g, ep + ".group_size"));
      QF_ASSIGN_OR_RETURN(auto z, json_opt_bool(*it, "has_zero_point", file, ep));
      QF_ASSIGN_OR_RETURN(auto p, json_opt_bool(*it, "pre_quant_scale", file, ep));
      has_zero_point = has_zero_point || z.value_or(false);
      info.pre_quant_scale = info.pre_quant_scale || p.value_or(false);
      if (info.quant_algo != QuantAlgo::MIXED_PRECISION && algo != info.quant_algo) {
        return make_error(ErrorCode::kFormat,
                          "{}: {}.quant_algo = '{}' contradicts {} = '{}' (use MIXED_PRECISION)",
                          file, ep, *a, join_path(path, "quant_algo"), *algo_text);
      }
      info.layer_algos[it.key()] = algo;
    }
  }
  if (info.quant_algo == QuantAlgo::MIXED_PRECISION && info.layer_algos.empty()) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} is MIXED_PRECISION but quantized_layers is missing or empty", file,
                      join_path(path, "quant_algo"));
  }
  if (info.quant_algo == QuantAlgo::NO_QUANT && info.kv_cache_quant_algo == QuantAlgo::NO_QUANT) {
    return make_error(ErrorCode::kFormat, "{}: {} has neither quant_algo nor a KV-cache algorithm",
                      file, path.empty() ? std::string("the config") : path);
  }
  if (uses_int4(info)) {
    if (has_zero_point) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {}: has_zero_point INT4 (TensorRT-LLM's GPTQ layout) is not read by "
                        "qforge; ModelOpt INT4 is symmetric",
                        file, path);
    }
    info.group_size = static_cast<int>(int4_group.value_or(128));  // TensorRT-LLM's default
  }
  QF_ASSIGN_OR_RETURN(const json* producer, json_opt_object(q, "producer", file, path));
  if (producer) {
    const std::string pp = join_path(path, "producer");
    QF_ASSIGN_OR_RETURN(auto name, json_opt_string(*producer, "name", file, pp));
    QF_ASSIGN_OR_RETURN(auto version, json_opt_string(*producer, "version", file, pp));
    info.producer_name = name.value_or("");
    info.producer_version = version.value_or("");
  }
  return info;
}

Result<QuantCheckpointInfo> parse_hf_quant_config(const json& hf, std::string_view file) {
  if (!hf.is_object()) return type_error(file, "the top level", "an object", hf);
  QF_ASSIGN_OR_RETURN(const json* q, json_opt_object(hf, "quantization", file, ""));
  if (q == nullptr) {
    return make_error(ErrorCode::kFormat, "{}: the \"quantization\" object is missing", file);
  }
  QF_ASSIGN_OR_RETURN(QuantCheckpointInfo info, parse_modelopt_object(*q, file, "quantization",
                                                                      /*config_json=*/false));
  QF_ASSIGN_OR_RETURN(const json* producer, json_opt_object(hf, "producer", file, ""));
  if (producer) {
    QF_ASSIGN_OR_RETURN(auto name, json_opt_string(*producer, "name", file, "producer"));
    QF_ASSIGN_OR_RETURN(auto version, json_opt_string(*producer, "version", file, "producer"));
    info.producer_name = name.value_or("");
    info.producer_version = version.value_or("");
  }
  return info;
}

}  // namespace

Result<std::optional<QuantCheckpointInfo>> parse_quant_checkpoint_info(
    const json& config_json, const json* hf_quant_config) {
  constexpr std::string_view kConfig = "config.json";
  constexpr std::string_view kHf = "hf_quant_config.json";
  const std::string qpath = "quantization_config";
  if (!config_json.is_object())
    return type_error(kConfig, "the top level", "an object", config_json);
  QF_ASSIGN_OR_RETURN(const json* qc,
                      json_opt_object(config_json, "quantization_config", kConfig, ""));
  std::optional<std::string> method;
  if (qc) {
    QF_ASSIGN_OR_RETURN(method, json_opt_string(*qc, "quant_method", kConfig, qpath));
    if (!method) {
      return make_error(ErrorCode::kFormat, "{}: {}.quant_method is missing", kConfig, qpath);
    }
  }
  const bool modelopt_method = method && upper(*method).rfind("MODELOPT", 0) == 0;
  std::optional<QuantCheckpointInfo> config_info;
  if (qc && modelopt_method) {
    // vLLM accepts both spellings inside config.json: a nested "quantization" object (the
    // hf_quant_config layout) or the flat compressed-tensors-style keys.
    QF_ASSIGN_OR_RETURN(const json* nested, json_opt_object(*qc, "quantization", kConfig, qpath));
    if (nested) {
      QF_ASSIGN_OR_RETURN(config_info,
                          parse_modelopt_object(*nested, kConfig, qpath + ".quantization", false));
    } else {
      QF_ASSIGN_OR_RETURN(config_info, parse_modelopt_object(*qc, kConfig, qpath, true));
    }
  } else if (qc && *method == "compressed-tensors") {
    if (hf_quant_config != nullptr) {
      return make_error(ErrorCode::kFormat,
                        "{} is a ModelOpt file but {}: {}.quant_method is compressed-tensors; a "
                        "checkpoint has one quantization layout",
                        kHf, kConfig, qpath);
    }
    QF_ASSIGN_OR_RETURN(QuantCheckpointInfo ct, parse_ct_quantization_config(*qc, kConfig, qpath));
    return std::optional<QuantCheckpointInfo>(std::move(ct));
  } else if (qc) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {}.quant_method = '{}': qforge reads ModelOpt (modelopt) and "
                      "compressed-tensors checkpoints",
                      kConfig, qpath, io_detail::printable(*method));
  }
  if (hf_quant_config == nullptr) return config_info;
  QF_ASSIGN_OR_RETURN(QuantCheckpointInfo info, parse_hf_quant_config(*hf_quant_config, kHf));
  if (config_info && (config_info->quant_algo != info.quant_algo ||
                      config_info->kv_cache_quant_algo != info.kv_cache_quant_algo)) {
    return make_error(ErrorCode::kFormat,
                      "{} says quant_algo {} / kv_cache_quant_algo {} but {}: {} says {} / {}", kHf,
                      quant_algo_name(info.quant_algo), quant_algo_name(info.kv_cache_quant_algo),
                      kConfig, qpath, quant_algo_name(config_info->quant_algo),
                      quant_algo_name(config_info->kv_cache_quant_algo));
  }
  return std::optional<QuantCheckpointInfo>(std::move(info));
}

}  // namespace qforge
