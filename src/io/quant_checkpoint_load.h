// Loading side of quantized Hugging Face checkpoints (internal to src/io): detect the
// quantization config of a model directory and read every quantized linear layer and the
// KV-cache scales into the LoadedModel.
#pragma once

#include <filesystem>
#include <optional>

#include "qforge/core/error.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/model/weights.h"

namespace qforge::io_detail {

// config.json's quantization_config and hf_quant_config.json (when present); nullopt for an
// unquantized checkpoint.
Result<std::optional<QuantCheckpointInfo>> read_quant_checkpoint_info(
    const std::filesystem::path& dir);

// Reads each linear the info says is quantized (from model.weights, whose FP8 tensors must be
// raw codes) into model.quantized_linears, and the KV-cache scales into model.kv_cache_quant.
Status attach_quantized_layers(LoadedModel& model, const QuantCheckpointInfo& info);

}  // namespace qforge::io_detail
