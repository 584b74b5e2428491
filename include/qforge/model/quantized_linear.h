// The CPU reference for running a quantized linear layer: the weight is dequantized once from its
// stored format (QuantizedMatrix), and each input row goes through the layer's activation
// quantization (static FP8/INT8/NVFP4 with the calibrated input scale, or dynamic per token /
// per 128-channel group) after the optional pre_quant_scale multiply:
//   y = Qa(x * pre_quant_scale) · dequant(Wq)ᵀ
// This is what TensorRT-LLM's kernels compute, up to the accumulation order; fast quantized CPU
// kernels replace it in engine builds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/quantize.h"
#include "qforge/model/weight_matrix.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

struct ActivationQuantParams {
  ActivationQuant kind = ActivationQuant::kNone;
  // Dequantization scale of static schemes (FP8 amax/448, INT8 amax/127, NVFP4 amax/(6*448)).
  float input_scale = 0.0f;
  std::vector<float> pre_quant_scale;  // [cols] or empty
};

// x: [m, cols] rounded in place through `kind` (no pre_quant_scale here). Dynamic schemes derive
// their scales from each row (or 128-channel group); a row of zeros stays zero.
void fake_quantize_activations(ActivationQuant kind, float input_scale, float* x, int64_t m,
                               int64_t cols);

// Wraps an already dequantized weight w: [rows, cols] (F32, moved in). `format_name` and
// `storage_bytes` describe the stored format for reports.
Result<std::unique_ptr<WeightMatrix>> make_fake_quant_weight_matrix(
    std::vector<float> w, int64_t rows, int64_t cols, std::string format_name,
    uint64_t storage_bytes, ActivationQuantParams activation);

// Dequantizes `q` and wraps it as above.
Result<std::unique_ptr<WeightMatrix>> make_quantized_weight_matrix(
    const QuantizedMatrix& q, ActivationQuantParams activation);

}  // namespace qforge
