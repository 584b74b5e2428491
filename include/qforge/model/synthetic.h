// Synthetic checkpoints: deterministic random weights in real model shapes, written in Hugging
// Face layout (config.json + safetensors, sharded with an index past max_shard_bytes), streamed
// tensor by tensor so that a 70B preset needs no more RAM than one block of rows. The built-in
// model for demos and benchmarks (no pretrained weights ship with qforge).
//
// Weights (every value a function of (seed, tensor name, element index) only, whatever the
// thread count): matrices ~ N(0, 0.02^2) (transformers' initializer_range), embeddings too;
// norm weights 1 + N(0, 0.02^2); biases N(0, 0.02^2). --outlier-channels N picks N hidden
// channels (from the seed) whose input_layernorm / post_attention_layernorm weights are 20x
// larger: every projection input then has a few large-magnitude channels, the activation
// outliers that make real LLMs hard to quantize (Dettmers et al. 2022, LLM.int8()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/model/config.h"

namespace qforge {

// Preset names: "tiny", "tiny-qwen2", "tiny-qwen3", "1b" (Llama 3.2 1B shapes), "llama-2-7b",
// "llama-3-8b", "llama-3-70b", "qwen2.5-0.5b", "qwen3-0.6b".
std::vector<std::string> synthetic_preset_names();
// Unknown names: an error listing the presets.
Result<ModelConfig> synthetic_preset(const std::string& name);

struct SynthOptions {
  DType dtype = DType::BF16;  // F32, F16 or BF16
  int64_t outlier_channels = 0;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = uint64_t{4} << 30;  // larger checkpoints are sharded
};

// Called after each tensor: (tensors written, total tensors, bytes written so far).
using SynthProgress = std::function<void(int64_t, int64_t, uint64_t)>;

// Writes config.json and the safetensors file(s) into `dir` (created if missing). Each file is
// written atomically. Errors name the file.
Status write_synthetic_checkpoint(const ModelConfig& config, const SynthOptions& options,
                                  const std::filesystem::path& dir,
                                  const SynthProgress& progress = {});

// The config as a transformers config.json (v4 spelling: rope_theta and rope_scaling at the top
// level), which load_hf_config reads back to the same ModelConfig.
std::string hf_config_json(const ModelConfig& config);

// The tensors a config implies, in checkpoint order, with their shapes (weights.h names).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config);

}  // namespace qforge
