// Synthetic-checkpoint presets (real published shapes) and the HF config.json writer of
// include/qforge/model/synthetic.h.
#include <nlohmann/json.hpp>

#include <map>

#include "qforge/model/synthetic.h"

namespace qforge {
namespace {

ModelConfig llama(int64_t vocab, int64_t hidden, int64_t inter, int64_t layers, int64_t heads,
                  int64_t kv_heads, int64_t max_pos, double theta) {
  ModelConfig c;
  c.architecture = Architecture::Llama;
  c.model_type = "llama";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.rms_norm_eps = 1e-5;
  c.torch_dtype = DType::BF16;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

ModelConfig qwen(Architecture arch, int64_t vocab, int64_t hidden, int64_t inter, int64_t layers,
                 int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t max_pos) {
  ModelConfig c = llama(vocab, hidden, inter, layers, heads, kv_heads, max_pos, 1000000.0);
  c.architecture = arch;
  c.model_type = arch == Architecture::Qwen2 ? "qwen2" : "qwen3";
  c.head_dim = head_dim;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  c.attention_bias = arch == Architecture::Qwen2;
  c.qk_norm = arch == Architecture::Qwen3;
  c.bos_token_id = -1;
  c.eos_token_ids = {vocab - 1};
  return c;
}

const std::map<std::string, ModelConfig>& presets() {
  static const std::map<std::string, ModelConfig> table = [] {
    std::map<std::string, ModelConfig> t;
    t["tiny"] = llama(512, 128, 352, 2, 4, 2, 512, 10000.0);
    t["tiny-qwen2"] = qwen(Architecture::Qwen2, 512, 128, 352, 2, 4, 2, 32, 512);
    t["tiny-qwen3"] = qwen(Architecture::Qwen3, 512, 128, 352, 2, 4, 2, 64, 512);
    ModelConfig one_b = llama(128256, 2048, 8192, 16, 32, 8, 131072, 500000.0);
    one_b.tie_word_embeddings = true;
    one_b.rope_scaling = {RopeScalingType::Llama3, 32.0, 1.0, 4.0, 8192};
    one_b.bos_token_id = 128000;
    one_b.eos_token_ids = {128001};
    t["1b"] = one_b;
    // TinyLlama-1.1B's shape (llama.cpp's usual 1.1B benchmark model): untied 32000-row head.
    t["tinyllama-1.1b"] = llama(32000, 2048, 5632, 22, 32, 4, 2048, 10000.0);
    t["llama-2-7b"] = llama(32000, 4096, 11008, 32, 32, 32, 4096, 10000.0);
    ModelConfig l3 = llama(128256, 4096, 14336, 32, 32, 8, 8192, 500000.0);
    l3.bos_token_id = 128000;
    l3.eos_token_ids = {128001};
    t["llama-3-8b"] = l3;
    ModelConfig l70 = llama(128256, 8192, 28672, 80, 64, 8, 8192, 500000.0);
    l70.bos_token_id = 128000;
    l70.eos_token_ids = {128001};
    t["llama-3-70b"] = l70;
    t["qwen2.5-0.5b"] = qwen(Architecture::Qwen2, 151936, 896, 4864, 24, 14, 2, 64, 32768);
    t["qwen3-0.6b"] = qwen(Architecture::Qwen3, 151936, 1024, 3072, 28, 16, 8, 128, 40960);
    return t;
  }();
  return table;
}

const char* architecture_class(Architecture arch) {
  switch (arch) {
    case Architecture::Mistral:
      return "MistralForCausalLM";
    case Architecture::Qwen2:
      return "Qwen2ForCausalLM";
    case Architecture::Qwen3:
      return "Qwen3ForCausalLM";
    default:
      return "LlamaForCausalLM";
  }
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "float32";
    case DType::F16:
      return "float16";
    default:
      return "bfloat16";
  }
}

}  // namespace

std::vector<std::string> synthetic_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, config] : presets()) names.push_back(name);
  return names;
}

Result<ModelConfig> synthetic_preset(const std::string& name) {
  const auto it = presets().find(name);
  if (it == presets().end()) {
    std::string list;
    for (const auto& n : synthetic_preset_names()) list += (list.empty() ? "" : ", ") + n;
    return make_error(ErrorCode::kInvalidArgument, "--preset '{}' is unknown; presets: {}", name,
                      list);
  }
  return it->second;
}

std::string hf_config_json(const ModelConfig& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {architecture_class(c.architecture)};
  j["model_type"] = architecture_name(c.architecture);
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type != RopeScalingType::None) {
    nlohmann::ordered_json r;
    static const char* kNames[] = {"default", "linear", "dynamic", "llama3", "yarn"};
    r["rope_type"] = kNames[static_cast<int>(rs.type)];
    r["factor"] = rs.factor;
    if (rs.original_max_position_embeddings > 0) {
      r["original_max_position_embeddings"] = rs.original_max_position_embeddings;
    }
    if (rs.type == RopeScalingType::Llama3) {
      r["low_freq_factor"] = rs.low_freq_factor;
      r["high_freq_factor"] = rs.high_freq_factor;
    }
    if (rs.type == RopeScalingType::Yarn) {
      r["beta_fast"] = rs.beta_fast;
      r["beta_slow"] = rs.beta_slow;
      if (rs.attention_factor > 0) r["attention_factor"] = rs.attention_factor;
    }
    j["rope_scaling"] = r;
  }
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.architecture != Architecture::Qwen2 && c.architecture != Architecture::Qwen3) {
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = false;
  }
  if (c.architecture == Architecture::Mistral || c.architecture == Architecture::Qwen2 ||
      c.architecture == Architecture::Qwen3) {
    if (c.sliding_window > 0) {
      j["sliding_window"] = c.sliding_window;
      if (c.architecture != Architecture::Mistral) j["use_sliding_window"] = true;
    } else {
      j["sliding_window"] = nullptr;
      if (c.architecture != Architecture::Mistral) j["use_sliding_window"] = false;
    }
  }
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else if (!c.eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_ids;
  }
  j["torch_dtype"] = torch_dtype_name(c.torch_dtype);
  return j.dump(2) + "\n";
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  const int64_t h = c.hidden_size;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    specs.push_back({p + "input_layernorm.weight", {h}});
    specs.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), h}});
    specs.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), h}});
    specs.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), h}});
    if (c.attention_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", {c.q_dim()}});
      specs.push_back({p + "self_attn.k_proj.bias", {c.kv_dim()}});
      specs.push_back({p + "self_attn.v_proj.bias", {c.kv_dim()}});
    }
    if (c.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      specs.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
    specs.push_back({p + "self_attn.o_proj.weight", {h, c.q_dim()}});
    specs.push_back({p + "post_attention_layernorm.weight", {h}});
    specs.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, h}});
    specs.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, h}});
    specs.push_back({p + "mlp.down_proj.weight", {h, c.intermediate_size}});
  }
  specs.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.vocab_size, h}});
  return specs;
}

}  // namespace qforge
