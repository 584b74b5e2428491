// A description of a checkpoint without loading its weights: format, config (when the files
// carry one), metadata, and every tensor's stored name, dtype, shape and size. What
// `qforge inspect` prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/config.h"

namespace qforge {

struct CheckpointTensor {
  std::string name;            // the HF name (GGUF names mapped; others as stored)
  std::string stored;          // the name in the file
  std::string dtype;           // storage type: "bf16", "f32", "q4_0", "q8_0/g4" (llama2.c int8)
  std::vector<int64_t> shape;  // row-major
  int64_t numel = 0;
  uint64_t nbytes = 0;  // bytes in the file, scales included
  std::string file;     // the shard holding it (sharded HF checkpoints), else empty
};

struct CheckpointInfo {
  std::string path;
  CheckpointFormat format = CheckpointFormat::Safetensors;
  std::string detail;  // "GGUF v3, alignment 32", "llama2.c v2 (int8 Q8_0, group 4)", ...
  std::optional<ModelConfig> config;
  std::string config_note;  // why there is no config (e.g. a lone .safetensors file)
  std::vector<std::pair<std::string, std::string>> metadata;  // rendered values
  std::vector<CheckpointTensor> tensors;  // in natural order (layer numbers numerically)
  uint64_t file_bytes = 0;                // all files together
  int64_t total_params() const;
};

// Reads headers only (safetensors JSON, GGUF metadata and tensor infos, llama2.c header); every
// file is validated as by the loaders, so a hostile file is an error naming file and field.
Result<CheckpointInfo> describe_checkpoint(const std::string& path);

// "model.layers.10.x" sorts after "model.layers.9.x": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b);

}  // namespace qforge
