// SmoothQuant (Xiao et al. 2022, "SmoothQuant: Accurate and Efficient Post-Training Quantization
// for Large Language Models"): per-input-channel scales that migrate activation outliers into the
// weights, s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha), for W8A8 (INT8 or FP8) inference.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/quant/scale_folding.h"

namespace qforge {

// The smoothing scales of the linears that share one input (q/k/v after the attention norm,
// gate/up after the MLP norm), as the reference smooth_ln_fcs computes them:
//   a_j = max(act_amax[j], 1e-5)
//   w_j = max(max over all weights and rows |W[r, j]|, 1e-5)
//   s_j = max(a_j^alpha / w_j^(1 - alpha), 1e-5)      and s_j = 1 where act_amax[j] == 0
// act_amax: [cols] max |X[:, j]| over the calibration tokens (finite, >= 0). weights: each
// (rows, cols) row-major, finite. alpha in [0, 1] (0.5 in the paper; 0.75-0.85 for models with
// strong outliers). Fold the result with fold_scales_into_norm / fold_scales_into_previous_linear
// and scale_weight_columns on every weight of the list.
Result<std::vector<float>> smoothquant_scales(std::span<const float> act_amax,
                                              std::span<const WeightRef> weights, int64_t cols,
                                              float alpha);

// act_amax[j] = max over tokens |x[t, j]|, x: [n_tokens, cols] row-major. For drivers that see
// the calibration activations one batch at a time: call it per batch and keep the running max.
// Errors on an empty shape, a null pointer or a non-finite activation (naming it).
Result<std::vector<float>> smoothquant_act_amax(const float* x, int64_t n_tokens, int64_t cols);

}  // namespace qforge
