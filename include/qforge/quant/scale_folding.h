// Per-input-channel scale folding shared by SmoothQuant (Xiao et al. 2022) and AWQ (Lin et al.
// 2023): multiply a linear layer's weight columns by s and divide the operation that produces
// its input by s, so that y = (x / s) · (W diag(s))ᵀ = x · Wᵀ and the float model is unchanged.
#pragma once

#include <cstdint>
#include <span>

#include "qforge/core/error.h"

namespace qforge {

// A read-only F32 weight of a linear layer, w: (rows, cols) row-major (torch.nn.Linear layout:
// rows = out_features, cols = in_features). `cols` is passed beside it, since every weight in a
// list shares the input (q/k/v, gate/up).
struct WeightRef {
  const float* w = nullptr;
  int64_t rows = 0;
};

// w: (rows, cols) row-major; w[:, j] *= s[j]. s: [cols], finite and > 0.
Status scale_weight_columns(float* w, int64_t rows, int64_t cols, std::span<const float> s);

// The norm in front of the layer (RMSNorm or LayerNorm) now produces x / s:
// norm_weight[j] /= s[j] and, for a LayerNorm, norm_bias[j] /= s[j] (pass an empty bias for an
// RMSNorm). norm_weight: [cols], norm_bias: [cols] or empty, s: [cols] finite and > 0.
Status fold_scales_into_norm(std::span<float> norm_weight, std::span<float> norm_bias,
                             std::span<const float> s);

// The linear in front of the layer (v_proj before o_proj, up_proj before down_proj) now produces
// x / s: row j of its weight and bias[j] are divided by s[j]. w: (rows, cols) row-major with
// rows = s.size() (the input width of the layer being scaled); bias: [rows] or empty. For a fused
// QKV weight whose last rows are V, pass a pointer to the first V row.
Status fold_scales_into_previous_linear(float* w, int64_t rows, int64_t cols, std::span<float> bias,
                                        std::span<const float> s);

// x: [n_tokens, cols] row-major; x[:, j] /= s[j]. What the folded norm or linear now feeds the
// layer: drivers apply it to cached calibration inputs (llm-awq does so before clip search).
Status unscale_activation_columns(float* x, int64_t n_tokens, int64_t cols,
                                  std::span<const float> s);

// Checks a scale vector: s.size() == cols and every s[j] finite and > 0. `fn` names the caller in
// the error message.
Status validate_channel_scales(const char* fn, std::span<const float> s, int64_t cols);

}  // namespace qforge
