// Hugging Face config.json / generation_config.json -> ModelConfig, for model_type llama,
// mistral, qwen2 and qwen3. Defaults follow transformers' LlamaConfig, MistralConfig,
// Qwen2Config and Qwen3Config; rope_scaling follows modeling_rope_utils.py (v4 "rope_scaling"
// with "type"/"rope_type", v5 "rope_parameters").
#include "qforge/io/hf_config.h"

#include <cmath>
#include <optional>

#include "io/io_util.h"

namespace qforge {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 16 << 20;

std::string show(const json& v) {
  return io_detail::printable(v.dump(-1, ' ', false, json::error_handler_t::replace), 80);
}

// Typed access to the fields of one JSON object; absent and null both mean "not given".
class Fields {
 public:
  Fields(const json& obj, std::string_view file, std::string prefix = "")
      : obj_(obj), file_(file), prefix_(std::move(prefix)) {}

  const json* get(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string name(const char* key) const { return prefix_ + key; }

  Result<std::optional<int64_t>> opt_int(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::optional<int64_t>();
    if (v->is_number_float()) {
      const double d = v->get<double>();
      // 1e-5-style floats are not ints, but 4096.0 written by some exporters is.
      if (std::abs(d) < 9e15 && d == std::trunc(d)) {
        return std::optional<int64_t>(static_cast<int64_t>(d));
      }
    }
    QF_ASSIGN_OR_RETURN(int64_t i, io_detail::json_to_int64(*v, file_, name(key)));
    return std::optional<int64_t>(i);
  }
  Result<int64_t> req_int(const char* key) const {
    QF_ASSIGN_OR_RETURN(auto v, opt_int(key));
    if (!v) {
      return make_error(ErrorCode::kFormat,
                        "{}: required field '{}' is missing (expected an integer)", file_,
                        name(key));
    }
    return *v;
  }
  Result<std::optional<double>> opt_float(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::optional<double>();
    if (!v->is_number()) return wrong_type(key, *v, "a number");
    return std::optional<double>(v->get<double>());
  }
  Result<std::optional<bool>> opt_bool(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::optional<bool>();
    if (!v->is_boolean()) return wrong_type(key, *v, "true or false");
    return std::optional<bool>(v->get<bool>());
  }
  Result<std::optional<std::string>> opt_string(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return wrong_type(key, *v, "a string");
    return std::optional<std::string>(v->get<std::string>());
  }
  Error wrong_type(const char* key, const json& v, const char* expected) const {
    return make_error(ErrorCode::kFormat, "{}: field '{}' = {} is a JSON {}, expected {}", file_,
                      name(key), show(v), io_detail::json_type_name(v), expected);
  }

 private:
  const json& obj_;
  std::string_view file_;
  std::string prefix_;
};

Result<std::vector<int64_t>> parse_token_ids(const json& v, std::string_view file,
                                             const char* key) {
  std::vector<int64_t> ids;
  if (v.is_array()) {
    if (v.size() > 1024) {
      return make_error(ErrorCode::kFormat, "{}: field '{}' lists {} ids (expected at most 1024)",
                        file, key, v.size());
    }
    for (size_t i = 0; i < v.size(); ++i) {
      QF_ASSIGN_OR_RETURN(int64_t id,
                          io_detail::json_to_int64(v[i], file, fmt::format("{}[{}]", key, i)));
      ids.push_back(id);
    }
  } else {
    QF_ASSIGN_OR_RETURN(int64_t id, io_detail::json_to_int64(v, file, key));
    ids.push_back(id);
  }
  return ids;
}

Status parse_special_tokens(const json& doc, std::string_view file, ModelConfig* c) {
  Fields f(doc, file);
  QF_ASSIGN_OR_RETURN(auto bos, f.opt_int("bos_token_id"));
  if (bos) c->bos_token_id = *bos;
  QF_ASSIGN_OR_RETURN(auto pad, f.opt_int("pad_token_id"));
  if (pad) c->pad_token_id = *pad;
  if (const json* eos = f.get("eos_token_id")) {
    QF_ASSIGN_OR_RETURN(c->eos_token_ids, parse_token_ids(*eos, file, "eos_token_id"));
  }
  return ok_status();
}

Status parse_rope_scaling(const json& obj, std::string_view file, const char* key, RopeScaling* r) {
  if (!obj.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: field '{}' = {} is a JSON {}, expected an object",
                      file, key, show(obj), io_detail::json_type_name(obj));
  }
  Fields f(obj, file, std::string(key) + ".");
  QF_ASSIGN_OR_RETURN(auto type, f.opt_string("rope_type"));
  if (!type) {
    QF_ASSIGN_OR_RETURN(type, f.opt_string("type"));
  }
  if (!type) {
    return make_error(ErrorCode::kFormat,
                      "{}: field '{}' has neither 'rope_type' nor 'type' (expected one of "
                      "default, linear, dynamic, llama3, yarn)",
                      file, key);
  }
  if (*type == "default" || *type == "none") {
    r->type = RopeScalingType::None;
    return ok_status();
  }
  if (*type == "linear") {
    r->type = RopeScalingType::Linear;
  } else if (*type == "dynamic") {
    r->type = RopeScalingType::Dynamic;
  } else if (*type == "llama3") {
    r->type = RopeScalingType::Llama3;
  } else if (*type == "yarn") {
    r->type = RopeScalingType::Yarn;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {}.rope_type '{}' is not supported (supported: default, linear, "
                      "dynamic, llama3, yarn)",
                      file, key, io_detail::printable(*type));
  }
  QF_ASSIGN_OR_RETURN(auto factor, f.opt_float("factor"));
  if (!factor) {
    return make_error(ErrorCode::kFormat, "{}: {} of type '{}' has no 'factor'", file, key, *type);
  }
  r->factor = *factor;
  QF_ASSIGN_OR_RETURN(auto orig, f.opt_int("original_max_position_embeddings"));
  if (orig) r->original_max_position_embeddings = *orig;
  if (r->type == RopeScalingType::Llama3) {
    QF_ASSIGN_OR_RETURN(auto low, f.opt_float("low_freq_factor"));
    QF_ASSIGN_OR_RETURN(auto high, f.opt_float("high_freq_factor"));
    if (!low || !high || !orig) {
      return make_error(ErrorCode::kFormat,
                        "{}: {} of type 'llama3' needs factor, low_freq_factor, high_freq_factor "
                        "and original_max_position_embeddings",
                        file, key);
    }
    r->low_freq_factor = *low;
    r->high_freq_factor = *high;
  }
  if (r->type == RopeScalingType::Yarn) {
    QF_ASSIGN_OR_RETURN(auto beta_fast, f.opt_float("beta_fast"));
    QF_ASSIGN_OR_RETURN(auto beta_slow, f.opt_float("beta_slow"));
    QF_ASSIGN_OR_RETURN(auto attention_factor, f.opt_float("attention_factor"));
    if (beta_fast) r->beta_fast = *beta_fast;
    if (beta_slow) r->beta_slow = *beta_slow;
    if (attention_factor) r->attention_factor = *attention_factor;
  }
  return ok_status();
}

struct ArchDefaults {
  Architecture arch;
  int64_t max_position_embeddings;
  int64_t sliding_window;  // mistral only
};

Result<ArchDefaults> arch_of(const std::string& model_type, std::string_view file) {
  if (model_type == "llama") return ArchDefaults{Architecture::Llama, 2048, 0};
  if (model_type == "mistral") return ArchDefaults{Architecture::Mistral, 4096 * 32, 4096};
  if (model_type == "qwen2") return ArchDefaults{Architecture::Qwen2, 32768, 0};
  if (model_type == "qwen3") return ArchDefaults{Architecture::Qwen3, 32768, 0};
  return make_error(ErrorCode::kUnsupported,
                    "{}: model_type '{}' is not supported (supported: llama, mistral, qwen2, "
                    "qwen3)",
                    file, io_detail::printable(model_type));
}

// Qwen2/Qwen3: sliding-window attention only when use_sliding_window, and then only for layers
// >= max_window_layers (or as listed in layer_types). One window for all layers or none.
Status parse_qwen_sliding_window(const json& doc, std::string_view file, ModelConfig* c) {
  Fields f(doc, file);
  if (const json* types = f.get("layer_types")) {
    if (!types->is_array()) return f.wrong_type("layer_types", *types, "an array of strings");
    size_t sliding = 0;
    for (const auto& t : *types) {
      if (!t.is_string()) return f.wrong_type("layer_types", t, "an array of strings");
      if (t.get_ref<const std::string&>() == "sliding_attention") ++sliding;
    }
    if (sliding == 0) return ok_status();
    if (sliding != types->size()) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: layer_types mixes sliding and full attention ({} of {} layers "
                        "slide); qforge supports one attention kind for all layers",
                        file, sliding, types->size());
    }
  } else {
    QF_ASSIGN_OR_RETURN(auto use, f.opt_bool("use_sliding_window"));
    if (!use || !*use) return ok_status();
    QF_ASSIGN_OR_RETURN(auto max_window_layers, f.opt_int("max_window_layers"));
    const int64_t first_sliding = max_window_layers.value_or(28);
    if (first_sliding >= c->num_hidden_layers) return ok_status();
    if (first_sliding > 0) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: use_sliding_window with max_window_layers {} < num_hidden_layers {} "
                        "mixes full and sliding attention; qforge supports one kind for all "
                        "layers",
                        file, first_sliding, c->num_hidden_layers);
    }
  }
  QF_ASSIGN_OR_RETURN(auto window, f.opt_int("sliding_window"));
  c->sliding_window = window.value_or(4096);
  return ok_status();
}

Result<ModelConfig> parse_config_doc(const json& doc, std::string_view file) {
  if (!doc.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: top level is a JSON {}, expected an object", file,
                      io_detail::json_type_name(doc));
  }
  Fields f(doc, file);
  ModelConfig c;
  QF_ASSIGN_OR_RETURN(auto model_type, f.opt_string("model_type"));
  if (!model_type) {
    return make_error(ErrorCode::kFormat,
                      "{}: no 'model_type' field (expected llama, mistral, qwen2 or qwen3; is "
                      "this a transformers config.json?)",
                      file);
  }
  QF_ASSIGN_OR_RETURN(ArchDefaults arch, arch_of(*model_type, file));
  c.architecture = arch.arch;
  c.model_type = *model_type;

  QF_ASSIGN_OR_RETURN(auto act, f.opt_string("hidden_act"));
  if (act && *act != "silu" && *act != "swish") {
    return make_error(ErrorCode::kUnsupported,
                      "{}: hidden_act '{}' is not supported (Llama-family models use silu)", file,
                      io_detail::printable(*act));
  }
  QF_ASSIGN_OR_RETURN(auto mlp_bias, f.opt_bool("mlp_bias"));
  if (mlp_bias && *mlp_bias) {
    return make_error(ErrorCode::kUnsupported, "{}: mlp_bias = true is not supported", file);
  }
  QF_ASSIGN_OR_RETURN(c.vocab_size, f.req_int("vocab_size"));
  QF_ASSIGN_OR_RETURN(c.hidden_size, f.req_int("hidden_size"));
  QF_ASSIGN_OR_RETURN(c.intermediate_size, f.req_int("intermediate_size"));
  QF_ASSIGN_OR_RETURN(c.num_hidden_layers, f.req_int("num_hidden_layers"));
  QF_ASSIGN_OR_RETURN(c.num_attention_heads, f.req_int("num_attention_heads"));
  if (c.num_attention_heads <= 0 || c.num_attention_heads > 1024) {
    return make_error(ErrorCode::kFormat,
                      "{}: num_attention_heads = {} is out of range (expected 1..1024)", file,
                      c.num_attention_heads);
  }
  QF_ASSIGN_OR_RETURN(auto kv, f.opt_int("num_key_value_heads"));
  c.num_key_value_heads = kv.value_or(c.num_attention_heads);
  QF_ASSIGN_OR_RETURN(auto head_dim, f.opt_int("head_dim"));
  if (head_dim) {
    c.head_dim = *head_dim;
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    return make_error(ErrorCode::kFormat,
                      "{}: num_attention_heads = {} does not divide hidden_size = {} and there is "
                      "no head_dim field (expected hidden_size to be a multiple of the heads)",
                      file, c.num_attention_heads, c.hidden_size);
  } else {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  QF_ASSIGN_OR_RETURN(auto max_pos, f.opt_int("max_position_embeddings"));
  c.max_position_embeddings = max_pos.value_or(arch.max_position_embeddings);
  QF_ASSIGN_OR_RETURN(auto eps, f.opt_float("rms_norm_eps"));
  c.rms_norm_eps = eps.value_or(1e-6);

  // RoPE: v4 puts rope_theta at the top level and scaling in rope_scaling; v5 puts both in
  // rope_parameters.
  c.rope_theta = 10000.0;
  if (const json* params = f.get("rope_parameters")) {
    QF_TRY(parse_rope_scaling(*params, file, "rope_parameters", &c.rope_scaling));
    QF_ASSIGN_OR_RETURN(auto theta,
                        Fields(*params, file, "rope_parameters.").opt_float("rope_theta"));
    if (theta) c.rope_theta = *theta;
  }
  QF_ASSIGN_OR_RETURN(auto theta, f.opt_float("rope_theta"));
  if (theta) c.rope_theta = *theta;
  if (const json* scaling = f.get("rope_scaling")) {
    QF_TRY(parse_rope_scaling(*scaling, file, "rope_scaling", &c.rope_scaling));
  }
  c.rope_layout = RopeLayout::HalfSplit;

  QF_ASSIGN_OR_RETURN(auto tie, f.opt_bool("tie_word_embeddings"));
  c.tie_word_embeddings = tie.value_or(false);
  QF_ASSIGN_OR_RETURN(auto bias, f.opt_bool("attention_bias"));
  c.attention_bias = bias.value_or(false);
  if (c.architecture == Architecture::Qwen2) c.attention_bias = true;  // qkv bias is built in
  c.qk_norm = c.architecture == Architecture::Qwen3;

  if (c.architecture == Architecture::Mistral) {
    // MistralConfig defaults to 4096 when the key is absent; null means full attention.
    c.sliding_window = doc.contains("sliding_window") ? 0 : arch.sliding_window;
    QF_ASSIGN_OR_RETURN(auto window, f.opt_int("sliding_window"));
    if (window) c.sliding_window = *window;
  } else if (c.architecture == Architecture::Qwen2 || c.architecture == Architecture::Qwen3) {
    QF_TRY(parse_qwen_sliding_window(doc, file, &c));
  }

  QF_ASSIGN_OR_RETURN(auto dtype, f.opt_string("torch_dtype"));
  if (!dtype) {
    QF_ASSIGN_OR_RETURN(dtype, f.opt_string("dtype"));
  }
  c.torch_dtype = DType::F32;
  if (dtype) {
    auto parsed = parse_dtype(*dtype);
    if (!parsed.ok() || !dtype_is_float(*parsed)) {
      return make_error(ErrorCode::kFormat,
                        "{}: torch_dtype '{}' is not a floating-point dtype (expected bfloat16, "
                        "float16 or float32)",
                        file, io_detail::printable(*dtype));
    }
    c.torch_dtype = *parsed;
  }
  QF_TRY(parse_special_tokens(doc, file, &c));
  QF_TRY(validate_model_config(c).context(std::string(file)));
  return c;
}

}  // namespace

Result<ModelConfig> parse_hf_config(std::string_view json_text, std::string_view file) {
  QF_ASSIGN_OR_RETURN(json doc, io_detail::parse_json_strict(json_text, file));
  return parse_config_doc(doc, file);
}

Status apply_generation_config(std::string_view json_text, std::string_view file,
                               ModelConfig* config) {
  QF_ASSIGN_OR_RETURN(json doc, io_detail::parse_json_strict(json_text, file));
  if (!doc.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: top level is a JSON {}, expected an object", file,
                      io_detail::json_type_name(doc));
  }
  ModelConfig updated = *config;
  QF_TRY(parse_special_tokens(doc, file, &updated));
  QF_TRY(validate_model_config(updated).context(std::string(file)));
  *config = std::move(updated);
  return ok_status();
}

Result<ModelConfig> load_hf_config(const std::filesystem::path& dir) {
  const auto config_path = dir / "config.json";
  QF_ASSIGN_OR_RETURN(std::string text, io_detail::read_text_file(config_path, kMaxConfigBytes));
  QF_ASSIGN_OR_RETURN(ModelConfig config, parse_hf_config(text, config_path.string()));
  const auto gen_path = dir / "generation_config.json";
  std::error_code ec;
  if (std::filesystem::exists(gen_path, ec)) {
    QF_ASSIGN_OR_RETURN(std::string gen, io_detail::read_text_file(gen_path, kMaxConfigBytes));
    QF_TRY(apply_generation_config(gen, gen_path.string(), &config));
  }
  return config;
}

}  // namespace qforge
