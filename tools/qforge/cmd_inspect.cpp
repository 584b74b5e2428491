// `qforge inspect PATH`: what a checkpoint holds (HF directory, .safetensors, .gguf, llama2.c
// .bin): architecture and config, every tensor's name/dtype/shape, the parameter count, and the
// memory the model needs in each storage format. Reads headers only.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/formats/quant_format.h"
#include "qforge/io/checkpoint_info.h"
#include "table.h"

namespace qforge::cli {
namespace {

// Matrices (2-D tensors) stored in `spec`; norms, biases and other tensors as stored.
uint64_t memory_in(const CheckpointInfo& info, const QuantSpec& spec) {
  uint64_t total = 0;
  for (const auto& t : info.tensors) {
    total += t.shape.size() == 2 ? quantized_bytes(spec, t.shape[0], t.shape[1]) : t.nbytes;
  }
  return total;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.2f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", b);
}

std::string human_count(int64_t n) {
  if (n >= 1000000000) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1000000) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1000) return fmt::format("{:.1f}K", n / 1e3);
  return std::to_string(n);
}

const char* rope_scaling_name(RopeScalingType t) {
  switch (t) {
    case RopeScalingType::None:
      return "none";
    case RopeScalingType::Linear:
      return "linear";
    case RopeScalingType::Dynamic:
      return "dynamic";
    case RopeScalingType::Llama3:
      return "llama3";
    case RopeScalingType::Yarn:
      return "yarn";
  }
  return "?";
}

nlohmann::ordered_json config_json(const ModelConfig& c) {
  nlohmann::ordered_json j = {
      {"architecture", architecture_name(c.architecture)},
      {"model_type", c.model_type},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"rope_layout", c.rope_layout == RopeLayout::Interleaved ? "interleaved" : "half_split"},
      {"rope_scaling",
       {{"type", rope_scaling_name(c.rope_scaling.type)}, {"factor", c.rope_scaling.factor}}},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_bias", c.attention_bias},
      {"qk_norm", c.qk_norm},
      {"sliding_window", c.sliding_window},
      {"torch_dtype", std::string(dtype_name(c.torch_dtype))},
      {"bos_token_id", c.bos_token_id},
      {"eos_token_ids", c.eos_token_ids},
      {"pad_token_id", c.pad_token_id}};
  return j;
}

void print_json(const CheckpointInfo& info) {
  nlohmann::ordered_json out;
  out["path"] = info.path;
  out["format"] = checkpoint_format_name(info.format);
  out["detail"] = info.detail;
  out["file_bytes"] = info.file_bytes;
  if (info.config) {
    out["config"] = config_json(*info.config);
  } else {
    out["config"] = nullptr;
    out["config_note"] = info.config_note;
  }
  out["metadata"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : info.metadata) out["metadata"][k] = v;
  out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : info.tensors) {
    nlohmann::ordered_json row = {{"name", t.name},
                                  {"dtype", t.dtype},
                                  {"shape", t.shape},
                                  {"params", t.numel},
                                  {"bytes", t.nbytes}};
    if (t.stored != t.name) row["stored_name"] = t.stored;
    if (!t.file.empty()) row["file"] = t.file;
    out["tensors"].push_back(row);
  }
  out["total_params"] = info.total_params();
  out["memory"] = nlohmann::ordered_json::array();
  for (const QuantSpec& s : common_quant_specs()) {
    out["memory"].push_back({{"format", quant_spec_name(s)},
                             {"bits_per_weight", bits_per_weight(s)},
                             {"bytes", memory_in(info, s)}});
  }
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_text(const CheckpointInfo& info) {
  std::printf("%s\n  format: %s (%s)\n  files: %s\n\n", info.path.c_str(), info.detail.c_str(),
              checkpoint_format_name(info.format), human_bytes(info.file_bytes).c_str());
  if (info.config) {
    const ModelConfig& c = *info.config;
    std::printf(
        "Config\n  architecture %s (model_type %s)\n"
        "  vocab %lld, hidden %lld, intermediate %lld, layers %lld, heads %lld, kv heads %lld, "
        "head_dim %lld\n"
        "  max positions %lld, rms_norm_eps %g, rope_theta %g (%s pairs), rope_scaling %s x%g\n"
        "  tied embeddings %s, attention bias %s, qk-norm %s, sliding window %lld\n"
        "  torch_dtype %s, bos %lld, eos %s, pad %lld\n\n",
        architecture_name(c.architecture), c.model_type.c_str(),
        static_cast<long long>(c.vocab_size), static_cast<long long>(c.hidden_size),
        static_cast<long long>(c.intermediate_size), static_cast<long long>(c.num_hidden_layers),
        static_cast<long long>(c.num_attention_heads),
        static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.head_dim),
        static_cast<long long>(c.max_position_embeddings), c.rms_norm_eps, c.rope_theta,
        c.rope_layout == RopeLayout::Interleaved ? "interleaved" : "half-split",
        rope_scaling_name(c.rope_scaling.type), c.rope_scaling.factor,
        c.tie_word_embeddings ? "yes" : "no", c.attention_bias ? "yes" : "no",
        c.qk_norm ? "yes" : "no", static_cast<long long>(c.sliding_window),
        std::string(dtype_name(c.torch_dtype)).c_str(), static_cast<long long>(c.bos_token_id),
        shape_text(c.eos_token_ids).c_str(), static_cast<long long>(c.pad_token_id));
  } else {
    std::printf("Config: none (%s)\n\n", info.config_note.c_str());
  }
  if (!info.metadata.empty()) {
    Table meta({"metadata key", "value"});
    for (const auto& [k, v] : info.metadata)
      meta.add_row({k, v.size() > 80 ? v.substr(0, 77) + "..." : v});
    std::printf("%s\n", meta.render().c_str());
  }
  Table tensors({"tensor", "dtype", "shape", "params", "bytes"});
  for (const auto& t : info.tensors) {
    tensors.add_row(
        {t.name, t.dtype, shape_text(t.shape), std::to_string(t.numel), std::to_string(t.nbytes)});
  }
  std::printf("Tensors (%zu)\n%s\n", info.tensors.size(), tensors.render().c_str());
  std::printf("Parameters: %lld (%s)\n\n", static_cast<long long>(info.total_params()),
              human_count(info.total_params()).c_str());
  Table memory({"storage format", "bits/weight", "model memory"});
  uint64_t stored = 0;
  for (const auto& t : info.tensors) stored += t.nbytes;
  memory.add_row({"as stored", "-", human_bytes(static_cast<double>(stored))});
  for (const QuantSpec& s : common_quant_specs()) {
    memory.add_row({quant_spec_name(s), fmt::format("{:.4g}", bits_per_weight(s)),
                    human_bytes(static_cast<double>(memory_in(info, s)))});
  }
  std::printf(
      "Memory by storage format (2-D weights in the format, scales included; norms and other "
      "tensors as stored)\n%s",
      memory.render().c_str());
}

}  // namespace

static void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Describe a checkpoint (HF directory, .safetensors, .gguf or llama2.c .bin): config, "
      "tensors, parameter count and memory per storage format");
  static std::string path;
  static bool json = false;
  cmd->add_option("path", path, "Model directory or file")->required();
  cmd->add_flag("--json", json, "Print machine-readable JSON");
  cmd->callback([] {
    CheckpointInfo info = value_or_fail(describe_checkpoint(path));
    if (json) {
      print_json(info);
    } else {
      print_text(info);
    }
  });
}

QF_REGISTER_COMMAND(10, register_inspect);

}  // namespace qforge::cli
