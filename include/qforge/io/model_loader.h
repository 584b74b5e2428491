// Loading a model from any supported layout into the common LoadedModel (config + named
// weights): a Hugging Face directory (config.json + model.safetensors or sharded
// model-*.safetensors with model.safetensors.index.json), a GGUF file, or a llama2.c checkpoint
// (legacy v0 fp32, or the v2 "ak42" int8 export, dequantized to F32 on load).
#pragma once

#include <string>

#include "qforge/core/error.h"
#include "qforge/model/weights.h"

namespace qforge {

// F32/F16/BF16 tensors stay mmapped (no copy); other dtypes are converted to F32 on load.
// Every error names the file and the field at fault.
Result<LoadedModel> load_model(const std::string& path);

}  // namespace qforge
