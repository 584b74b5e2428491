// Published model shapes and GPU memory sizes for `qforge plan`
// (include/qforge/engine/capacity_plan.h). Each model row is the checkpoint's config.json on the
// Hugging Face Hub (hf_id); each GPU row is the vendor's data-sheet figure.
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "qforge/engine/capacity_plan.h"

namespace qforge {
namespace {

struct Shape {
  Architecture arch;
  const char* model_type;
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, max_positions;
  double rope_theta, rms_norm_eps;
  bool tied, attention_bias;
  double llama3_rope_factor;  // 0 = no rope_scaling
  int64_t bos;
  int64_t eos;
};

ModelConfig to_config(const Shape& s) {
  ModelConfig c;
  c.architecture = s.arch;
  c.model_type = s.model_type;
  c.vocab_size = s.vocab;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.intermediate;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.max_position_embeddings = s.max_positions;
  c.rope_theta = s.rope_theta;
  c.rms_norm_eps = s.rms_norm_eps;
  c.tie_word_embeddings = s.tied;
  c.attention_bias = s.attention_bias;
  if (s.llama3_rope_factor > 0) {
    c.rope_scaling.type = RopeScalingType::Llama3;
    c.rope_scaling.factor = s.llama3_rope_factor;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
  }
  c.torch_dtype = DType::BF16;
  c.bos_token_id = s.bos;
  c.eos_token_ids = {s.eos};
  return c;
}

constexpr auto L = Architecture::Llama;
constexpr auto M = Architecture::Mistral;
constexpr auto Q = Architecture::Qwen2;

// Rows: arch, model_type, vocab, hidden, intermediate, layers, heads, kv heads, head_dim, max
// positions, rope_theta, rms_norm_eps, tied embeddings, q/k/v bias, llama3 rope factor, bos, eos.
const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> kPresets = [] {
    struct Row {
      const char* name;
      const char* hf_id;
      Shape shape;
    };
    const Row rows[] = {
        {"llama-3.2-1b",
         "meta-llama/Llama-3.2-1B",
         {L, "llama", 128256, 2048, 8192, 16, 32, 8, 64, 131072, 500000.0, 1e-5, true, false, 32.0,
          128000, 128001}},
        {"llama-3.2-3b",
         "meta-llama/Llama-3.2-3B",
         {L, "llama", 128256, 3072, 8192, 28, 24, 8, 128, 131072, 500000.0, 1e-5, true, false, 32.0,
          128000, 128001}},
        {"llama-3.1-8b",
         "meta-llama/Llama-3.1-8B",
         {L, "llama", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 500000.0, 1e-5, false, false,
          8.0, 128000, 128001}},
        {"llama-3.1-70b",
         "meta-llama/Llama-3.1-70B",
         {L, "llama", 128256, 8192, 28672, 80, 64, 8, 128, 131072, 500000.0, 1e-5, false, false,
          8.0, 128000, 128001}},
        {"llama-3.1-405b",
         "meta-llama/Llama-3.1-405B",
         {L, "llama", 128256, 16384, 53248, 126, 128, 8, 128, 131072, 500000.0, 1e-5, false, false,
          8.0, 128000, 128001}},
        {"mistral-7b",
         "mistralai/Mistral-7B-Instruct-v0.3",
         {M, "mistral", 32768, 4096, 14336, 32, 32, 8, 128, 32768, 1000000.0, 1e-5, false, false,
          0.0, 1, 2}},
        {"qwen2.5-7b",
         "Qwen/Qwen2.5-7B-Instruct",
         {Q, "qwen2", 152064, 3584, 18944, 28, 28, 4, 128, 32768, 1000000.0, 1e-6, false, true, 0.0,
          151643, 151645}},
        {"qwen2.5-72b",
         "Qwen/Qwen2.5-72B-Instruct",
         {Q, "qwen2", 152064, 8192, 29568, 80, 64, 8, 128, 32768, 1000000.0, 1e-6, false, true, 0.0,
          151643, 151645}},
    };
    std::vector<ModelPreset> out;
    for (const Row& r : rows) out.push_back({r.name, r.hf_id, to_config(r.shape)});
    return out;
  }();
  return kPresets;
}

// Vendor figures in GB (1e9 bytes).
constexpr std::array kGpus = {
    GpuPreset{"h100", "NVIDIA H100 SXM5 80 GB HBM3 (PCIe: 80 GB HBM2e)", 80},
    GpuPreset{"h100-nvl", "NVIDIA H100 NVL, 94 GB HBM3", 94},
    GpuPreset{"h200", "NVIDIA H200, 141 GB HBM3e", 141},
    GpuPreset{"b200", "NVIDIA B200, 192 GB HBM3e (the full chip; DGX/HGX B200 expose 180 GB)", 192},
    GpuPreset{"b200-180g", "NVIDIA B200 as configured in DGX/HGX B200, 180 GB HBM3e", 180},
    GpuPreset{"gh200", "NVIDIA GH200 Grace Hopper, 96 GB HBM3 (GPU memory only)", 96},
    GpuPreset{"gh200-144g", "NVIDIA GH200 Grace Hopper, 144 GB HBM3e (GPU memory only)", 144},
    GpuPreset{"a100-80g", "NVIDIA A100 80 GB HBM2e", 80},
    GpuPreset{"a100-40g", "NVIDIA A100 40 GB HBM2", 40},
    GpuPreset{"l40s", "NVIDIA L40S, 48 GB GDDR6", 48},
    GpuPreset{"rtx4090", "NVIDIA GeForce RTX 4090, 24 GB GDDR6X", 24},
};

template <typename Rows>
std::string list_names(const Rows& rows) {
  std::string out;
  for (const auto& r : rows) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

}  // namespace

std::span<const ModelPreset> model_presets() {
  return presets();
}

Result<ModelConfig> model_preset(std::string_view name) {
  for (const ModelPreset& p : presets()) {
    if (name == p.name) return p.config;
  }
  return make_error(ErrorCode::kNotFound, "model preset '{}' is unknown; valid presets: {}", name,
                    list_names(presets()));
}

std::span<const GpuPreset> gpu_presets() {
  return kGpus;
}

Result<GpuPreset> gpu_preset(std::string_view name) {
  for (const GpuPreset& g : kGpus) {
    if (name == g.name) return g;
  }
  return make_error(ErrorCode::kNotFound, "GPU preset '{}' is unknown; valid GPUs: {}", name,
                    list_names(kGpus));
}

Result<uint64_t> usable_memory_bytes(double memory_gb, double usable_fraction) {
  if (!std::isfinite(memory_gb) || memory_gb <= 0 || memory_gb > 1e6) {
    return make_error(ErrorCode::kInvalidArgument,
                      "memory {} GB is out of range; expected a size in (0, 1e6] GB", memory_gb);
  }
  if (!std::isfinite(usable_fraction) || usable_fraction <= 0 || usable_fraction > 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "usable memory fraction {} is out of range; expected (0, 1] (0.9 leaves 10% "
                      "to the CUDA context and allocator)",
                      usable_fraction);
  }
  return static_cast<uint64_t>(std::floor(memory_gb * kBytesPerGB * usable_fraction));
}

}  // namespace qforge
