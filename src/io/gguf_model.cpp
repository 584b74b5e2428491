// GGUF -> LoadedModel: llama/qwen2/qwen3 metadata keys ("<arch>.embedding_length", ...,
// tokenizer.ggml.*) mapped to ModelConfig, and llama.cpp tensor names (token_embd, blk.N.attn_q,
// ..., output_norm, output) mapped to the Hugging Face names of weights.h.
#include <algorithm>
#include <cctype>

#include "io/io_util.h"
#include "qforge/io/gguf.h"

namespace qforge {
namespace {

struct NamePair {
  std::string_view gguf;
  std::string_view hf;
};

constexpr NamePair kGlobalNames[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

constexpr NamePair kLayerNames[] = {
    {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// Splits "<prefix><digits>.<rest>" into (digits, rest).
bool split_layer(std::string_view name, std::string_view prefix, std::string_view* layer,
                 std::string_view* rest) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  name.remove_prefix(prefix.size());
  size_t n = 0;
  while (n < name.size() && std::isdigit(static_cast<unsigned char>(name[n]))) ++n;
  if (n == 0 || n >= name.size() || name[n] != '.') return false;
  *layer = name.substr(0, n);
  *rest = name.substr(n + 1);
  return true;
}

// Splits "stem.suffix" at the last dot (suffix = "weight" / "bias").
bool split_suffix(std::string_view name, std::string_view* stem, std::string_view* suffix) {
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  *stem = name.substr(0, dot);
  *suffix = name.substr(dot + 1);
  return true;
}

template <typename From, typename To>
std::string map_name(std::string_view name, std::string_view layer_from, std::string_view layer_to,
                     From from, To to) {
  std::string_view stem, suffix, layer, rest;
  if (split_layer(name, layer_from, &layer, &rest) && split_suffix(rest, &stem, &suffix)) {
    for (const auto& p : kLayerNames) {
      if (from(p) == stem) return fmt::format("{}{}.{}.{}", layer_to, layer, to(p), suffix);
    }
  } else if (split_suffix(name, &stem, &suffix)) {
    for (const auto& p : kGlobalNames) {
      if (from(p) == stem) return fmt::format("{}.{}", to(p), suffix);
    }
  }
  return std::string(name);
}

Result<int64_t> get_dim(const GgufFile& g, const std::string& key) {
  QF_ASSIGN_OR_RETURN(uint64_t v, g.get_uint(key));
  if (v > (uint64_t{1} << 40)) {
    return make_error(ErrorCode::kFormat, "{}: metadata '{}' = {} is out of range", g.path(), key,
                      v);
  }
  return static_cast<int64_t>(v);
}

Result<std::optional<int64_t>> opt_dim(const GgufFile& g, const std::string& key) {
  if (g.find(key) == nullptr) return std::optional<int64_t>();
  QF_ASSIGN_OR_RETURN(int64_t v, get_dim(g, key));
  return std::optional<int64_t>(v);
}

Result<std::optional<double>> opt_float(const GgufFile& g, const std::string& key) {
  if (g.find(key) == nullptr) return std::optional<double>();
  QF_ASSIGN_OR_RETURN(double v, g.get_float(key));
  return std::optional<double>(v);
}

Result<int64_t> opt_token(const GgufFile& g, const char* key) {
  if (g.find(key) == nullptr) return int64_t{-1};
  QF_ASSIGN_OR_RETURN(uint64_t v, g.get_uint(key));
  return v > (uint64_t{1} << 32) ? int64_t{1} << 32 : static_cast<int64_t>(v);
}

}  // namespace

std::string gguf_to_hf_tensor_name(std::string_view gguf_name) {
  return map_name(
      gguf_name, "blk.", "model.layers.", [](const NamePair& p) { return p.gguf; },
      [](const NamePair& p) { return p.hf; });
}

std::string hf_to_gguf_tensor_name(std::string_view hf_name) {
  return map_name(
      hf_name, "model.layers.", "blk.", [](const NamePair& p) { return p.hf; },
      [](const NamePair& p) { return p.gguf; });
}

Result<ModelConfig> gguf_model_config(const GgufFile& g) {
  QF_ASSIGN_OR_RETURN(std::string arch, g.get_string("general.architecture"));
  ModelConfig c;
  if (arch == "llama") {
    c.architecture = Architecture::Llama;
    c.rope_layout = RopeLayout::Interleaved;  // convert_hf_to_gguf permutes q/k rows
  } else if (arch == "qwen2") {
    c.architecture = Architecture::Qwen2;
    c.rope_layout = RopeLayout::HalfSplit;  // llama.cpp runs qwen2 with NEOX-style RoPE
  } else if (arch == "qwen3") {
    c.architecture = Architecture::Qwen3;
    c.rope_layout = RopeLayout::HalfSplit;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: general.architecture '{}' is not supported (supported: llama, qwen2, "
                      "qwen3)",
                      g.path(), io_detail::printable(arch));
  }
  c.model_type = arch;
  const std::string p = arch + ".";
  QF_ASSIGN_OR_RETURN(c.hidden_size, get_dim(g, p + "embedding_length"));
  QF_ASSIGN_OR_RETURN(c.intermediate_size, get_dim(g, p + "feed_forward_length"));
  QF_ASSIGN_OR_RETURN(c.num_hidden_layers, get_dim(g, p + "block_count"));
  QF_ASSIGN_OR_RETURN(c.num_attention_heads, get_dim(g, p + "attention.head_count"));
  if (c.num_attention_heads <= 0) {
    return make_error(ErrorCode::kFormat, "{}: {}attention.head_count = {} (expected >= 1)",
                      g.path(), p, c.num_attention_heads);
  }
  QF_ASSIGN_OR_RETURN(auto kv, opt_dim(g, p + "attention.head_count_kv"));
  c.num_key_value_heads = kv.value_or(c.num_attention_heads);
  QF_ASSIGN_OR_RETURN(auto key_length, opt_dim(g, p + "attention.key_length"));
  if (key_length) {
    c.head_dim = *key_length;
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    return make_error(ErrorCode::kFormat,
                      "{}: {}attention.head_count = {} does not divide embedding_length = {} and "
                      "there is no attention.key_length",
                      g.path(), p, c.num_attention_heads, c.hidden_size);
  } else {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  QF_ASSIGN_OR_RETURN(auto value_length, opt_dim(g, p + "attention.value_length"));
  QF_ASSIGN_OR_RETURN(auto rope_dims, opt_dim(g, p + "rope.dimension_count"));
  if ((value_length && *value_length != c.head_dim) || (rope_dims && *rope_dims != c.head_dim)) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: value_length {} / rope.dimension_count {} differ from head_dim {} "
                      "(partial RoPE and unequal k/v head sizes are not supported)",
                      g.path(), value_length.value_or(c.head_dim), rope_dims.value_or(c.head_dim),
                      c.head_dim);
  }
  QF_ASSIGN_OR_RETURN(auto ctx, opt_dim(g, p + "context_length"));
  c.max_position_embeddings = ctx.value_or(2048);
  QF_ASSIGN_OR_RETURN(auto eps, opt_float(g, p + "attention.layer_norm_rms_epsilon"));
  c.rms_norm_eps = eps.value_or(1e-5);
  QF_ASSIGN_OR_RETURN(auto theta, opt_float(g, p + "rope.freq_base"));
  c.rope_theta = theta.value_or(10000.0);
  QF_ASSIGN_OR_RETURN(auto window, opt_dim(g, p + "attention.sliding_window"));
  c.sliding_window = window.value_or(0);

  if (g.find(p + "rope.scaling.type") != nullptr) {
    QF_ASSIGN_OR_RETURN(std::string type, g.get_string(p + "rope.scaling.type"));
    if (type == "linear") {
      c.rope_scaling.type = RopeScalingType::Linear;
    } else if (type == "yarn") {
      c.rope_scaling.type = RopeScalingType::Yarn;
    } else if (type != "none") {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {}rope.scaling.type '{}' is not supported (none, linear, yarn)",
                        g.path(), p, io_detail::printable(type));
    }
    QF_ASSIGN_OR_RETURN(auto factor, opt_float(g, p + "rope.scaling.factor"));
    c.rope_scaling.factor = factor.value_or(1.0);
    QF_ASSIGN_OR_RETURN(auto orig, opt_dim(g, p + "rope.scaling.original_context_length"));
    c.rope_scaling.original_max_position_embeddings = orig.value_or(0);
  }
  if (g.find_tensor("rope_freqs.weight") != nullptr) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: tensor rope_freqs.weight holds precomputed RoPE frequency factors "
                      "(llama3-style scaling), which the GGUF loader does not map yet; load the "
                      "Hugging Face checkpoint instead",
                      g.path());
  }

  QF_ASSIGN_OR_RETURN(auto vocab, opt_dim(g, p + "vocab_size"));
  if (vocab) {
    c.vocab_size = *vocab;
  } else if (const GgufValue* tokens = g.find("tokenizer.ggml.tokens");
             tokens && tokens->is_array()) {
    c.vocab_size = static_cast<int64_t>(tokens->array_size());
  } else if (const GgufTensorInfo* embd = g.find_tensor("token_embd.weight");
             embd && embd->ne.size() == 2) {
    c.vocab_size = embd->ne[1];
  } else {
    return make_error(ErrorCode::kFormat,
                      "{}: cannot tell the vocabulary size (no {}vocab_size, no "
                      "tokenizer.ggml.tokens, no 2-D token_embd.weight)",
                      g.path(), p);
  }
  c.tie_word_embeddings = g.find_tensor("output.weight") == nullptr;
  c.attention_bias = g.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm =
      c.architecture == Architecture::Qwen3 || g.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  c.torch_dtype = DType::F16;
  if (g.find("general.file_type") != nullptr) {
    QF_ASSIGN_OR_RETURN(uint64_t ft, g.get_uint("general.file_type"));
    if (ft == 0) c.torch_dtype = DType::F32;
    if (ft == 32) c.torch_dtype = DType::BF16;
  }
  QF_ASSIGN_OR_RETURN(c.bos_token_id, opt_token(g, "tokenizer.ggml.bos_token_id"));
  QF_ASSIGN_OR_RETURN(int64_t eos, opt_token(g, "tokenizer.ggml.eos_token_id"));
  QF_ASSIGN_OR_RETURN(int64_t eot, opt_token(g, "tokenizer.ggml.eot_token_id"));
  QF_ASSIGN_OR_RETURN(c.pad_token_id, opt_token(g, "tokenizer.ggml.padding_token_id"));
  if (eos >= 0) c.eos_token_ids.push_back(eos);
  if (eot >= 0 && eot != eos) c.eos_token_ids.push_back(eot);
  QF_TRY(validate_model_config(c).context(g.path()));
  return c;
}

Result<LoadedModel> load_gguf_model(const GgufFile& g) {
  LoadedModel model;
  QF_ASSIGN_OR_RETURN(model.config, gguf_model_config(g));
  model.format = "gguf";
  model.weights.set_source(g.path());
  for (const GgufTensorInfo& info : g.tensors()) {
    const std::string name = gguf_to_hf_tensor_name(info.name);
    const GgmlType type = static_cast<GgmlType>(info.type);
    if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
      QF_ASSIGN_OR_RETURN(TensorView view, g.tensor_view(info));
      const size_t align = type == GgmlType::F32 ? 4 : 2;
      if (view.is_aligned(align)) {
        QF_TRY(model.weights.add(name, view, g.keep_alive()));
        continue;
      }
      QF_ASSIGN_OR_RETURN(Tensor copy, Tensor::copy_of(view));
      QF_TRY(model.weights.add(name, copy.view(), copy.storage()));
      continue;
    }
    QF_ASSIGN_OR_RETURN(Tensor f32, g.tensor_to_f32(info));
    QF_TRY(model.weights.add(name, f32.view(), f32.storage()));
  }
  QF_TRY(validate_model_weights(model.config, model.weights));
  return model;
}

Result<LoadedModel> load_gguf_model(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(GgufFile g, GgufFile::open(path));
  return load_gguf_model(g);
}

}  // namespace qforge
