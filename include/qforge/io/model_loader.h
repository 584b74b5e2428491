// Loading a model from any supported layout into the common LoadedModel (config + named
// weights): a Hugging Face directory (config.json + model.safetensors or sharded
// model-*.safetensors with model.safetensors.index.json), a GGUF file, or a llama2.c checkpoint
// (legacy v0 fp32, or the v2 "ak42" int8 export, dequantized to F32 on load).
#pragma once

#include <cstdint>
#include <string>

#include "qforge/core/error.h"
#include "qforge/model/weights.h"

namespace qforge {

enum class CheckpointFormat : uint8_t {
  HfDirectory,  // config.json + model.safetensors or sharded shards with an index
  Safetensors,  // one .safetensors file (config.json expected beside it to load a model)
  Gguf,
  Llama2c,  // legacy v0 fp32 or ak42 v1/v2
};
const char* checkpoint_format_name(CheckpointFormat format);  // "hf-dir", "safetensors", ...

// Decides by content (magic bytes), then by extension: a directory is HfDirectory, "GGUF" magic
// is Gguf, an 8-byte length followed by '{' is Safetensors, anything else is tried as llama2.c.
Result<CheckpointFormat> detect_checkpoint_format(const std::string& path);

// F32/F16/BF16 tensors stay mmapped (no copy; a tensor misaligned for its element size is
// copied); F64 and FP8 tensors and GGUF block-quantized tensors are converted to F32 on load
// (FP8 codes are widened as they are: per-tensor scale tensors of a quantized checkpoint are not
// applied here); integer tensors stay views. The result passes validate_model_config and
// validate_model_weights.
// Every error names the file and the field at fault.
Result<LoadedModel> load_model(const std::string& path);

}  // namespace qforge
