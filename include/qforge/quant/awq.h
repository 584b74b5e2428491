// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration"): the per-input-channel scale search and the weight clipping search of the
// reference llm-awq (auto_scale / auto_clip, also used by AutoAWQ), for F32 linear layers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/quant_format.h"
#include "qforge/quant/scale_folding.h"

namespace qforge {

// How a driver runs AWQ on one decoder block (llm-awq run_awq), for each group of linears that
// share an input (q/k/v after the attention norm, o after v, gate/up after the MLP norm, down
// after up):
//   1. act_mean_abs = awq_act_mean_abs(inputs of the group)
//   2. r = awq_search_scales(act_mean_abs, 20, loss), where loss(s) runs the module the group
//      feeds (the attention sub-block for q/k/v, the MLP for gate/up, the linear itself for o and
//      down) with every weight of the group replaced by awq_fake_quantize_scaled(W, spec, s) and
//      returns the mean squared error of its output against the float output
//      (awq_linear_loss is that loss for the linears alone).
//   3. Fold r.scales: scale_weight_columns on every weight of the group, fold_scales_into_norm or
//      fold_scales_into_previous_linear on the producer, unscale_activation_columns on the cached
//      inputs.
// Then, per linear (llm-awq skips q_proj and k_proj: through the q·kᵀ product their own output
// error is a poor proxy for the attention error):
//   4. max_vals = awq_search_clip(scaled W, scaled inputs, spec); apply_clip(W, ..., max_vals).
//   5. Quantize W with quantize_matrix (RTN) and the same spec.

struct AwqScaleSearchResult {
  std::vector<float> scales;   // [cols] the scales of the best grid point (all 1 if ratio 0 won)
  double best_ratio = 0.0;     // the exponent of the best grid point, i / n_grid
  bool best_duo = false;       // the best grid point used duo scaling (AwqDuoScaling)
  double best_loss = 0.0;      // loss(scales)
  std::vector<double> losses;  // [n_grid] loss at ratio i / n_grid (non-finite ones never win)
};

// The loss of one candidate scale vector s: [cols]. It must not keep the span past the call.
using AwqLossFn = std::function<Result<double>(std::span<const float> scales)>;

// llm-awq auto_scale (_search_module_scale), without AutoAWQ's duo scaling: for i in [0, n_grid),
//   ratio = i / n_grid
//   s     = max(act_mean_abs ^ ratio, 1e-4)            (0^0 = 1: ratio 0 gives s = 1, plain RTN)
//   s    /= sqrt(max(s) * min(s))
// calls loss(s) and keeps the first strict minimum, so the result never loses to RTN.
// act_mean_abs: [cols] mean |X[:, j]| over the calibration tokens (finite, >= 0). n_grid > 0.
// A loss that returns an error stops the search and the error is passed on; a non-finite loss is
// recorded but never chosen (an error if every grid point gives one).
Result<AwqScaleSearchResult> awq_search_scales(std::span<const float> act_mean_abs, int n_grid,
                                               const AwqLossFn& loss);

// AutoAWQ's / llm-compressor's duo_scaling: the scales also divide by the weights' magnitude,
//   s = max(act_mean_abs ^ ratio / (w_mean ^ (1 - ratio) + 1e-4), 1e-4),  s /= sqrt(max s min s)
// with w_mean[j] the mean over output rows of |W[r, j]| / max |W[r, group of j]| (awq_weight_mean).
// kOff: llm-awq's grid (activations only); kOn: the duo grid, preceded by s = 1 (plain RTN, so the
// search never loses to it); kBoth: both grids (llm-compressor's "both"), twice the losses.
enum class AwqDuoScaling : uint8_t { kOff, kOn, kBoth };
std::string_view awq_duo_scaling_name(AwqDuoScaling d);              // "off", "on", "both"
Result<AwqDuoScaling> parse_awq_duo_scaling(std::string_view text);  // errors name the choices

// w_mean for duo scaling: weights (each [rows, cols], the linears that read one input) taken as
// one stacked matrix; per row and group_size-column group (the last may be narrower) |w| /
// (max |w| + 1e-6), then the mean over all rows: [cols].
Result<std::vector<float>> awq_weight_mean(std::span<const WeightRef> weights, int64_t cols,
                                           int64_t group_size);

// The search with a duo-scaling choice: w_mean ([cols], >= 0, from awq_weight_mean) is read
// unless duo == kOff. n_grid > 0. The losses are in evaluation order: [1 (s = 1) + n_grid] for
// kOn, [n_grid (activations only) + n_grid (duo)] for kBoth, [n_grid] for kOff (as the
// three-argument form).
Result<AwqScaleSearchResult> awq_search_scales(std::span<const float> act_mean_abs,
                                               std::span<const float> w_mean, int n_grid,
                                               AwqDuoScaling duo, const AwqLossFn& loss);

// Q(W diag(s)) diag(1/s): w: (rows, cols) row-major F32, quantized into `spec` with
// quantize_matrix and dequantized, then column j divided by s[j] (the reference's order of
// operations). Returns (rows, cols) row-major. s: [cols] finite and > 0.
Result<std::vector<float>> awq_fake_quantize_scaled(const float* w, int64_t rows, int64_t cols,
                                                    const QuantSpec& spec,
                                                    std::span<const float> scales);

// The default loss: mean over every token and every output row of every weight of
//   (x · Wᵀ - x · awq_fake_quantize_scaled(W, spec, s)ᵀ)²
// i.e. the MSE of the concatenated outputs. x: [n_tokens, cols] row-major, finite; weights: each
// (rows, cols). Costs one quantization of each weight and n_tokens * cols * sum(rows)
// multiply-adds (multi-threaded).
Result<double> awq_linear_loss(const float* x, int64_t n_tokens, std::span<const WeightRef> weights,
                               int64_t cols, const QuantSpec& spec, std::span<const float> scales);

// mean_abs[j] = mean over tokens |x[t, j]| (llm-awq get_act_scale), x: [n_tokens, cols]
// row-major. Sums in double. Errors on an empty shape, a null pointer, a non-finite activation.
Result<std::vector<float>> awq_act_mean_abs(const float* x, int64_t n_tokens, int64_t cols);

// awq_search_scales with awq_linear_loss over x and `weights`, act_mean_abs taken from x: the
// search for a group of linears whose block-level loss the caller does not need.
Result<AwqScaleSearchResult> awq_search_scales_linear(const float* x, int64_t n_tokens,
                                                      std::span<const WeightRef> weights,
                                                      int64_t cols, const QuantSpec& spec,
                                                      int n_grid = 20);

// The column group that awq_search_clip clips as one unit for `spec`: the group size of
// INT4_GROUP / UINT4_GROUP, the fixed block of NVFP4 (16), MXFP4 / MXFP8 (32) and FP8_BLOCK128
// (128), and the whole row (cols) for per-channel, per-tensor and unquantized formats.
int64_t awq_clip_group_size(const QuantSpec& spec, int64_t cols);

// llm-awq auto_clip (auto_clip_layer): for every output row r and column group g (width G =
// awq_clip_group_size(spec, cols); the last group may be narrower), with m0 = max |w[r, g]|,
// tries max_val_i = m0 * (1 - i / n_grid) for i in [0, floor(max_shrink * n_grid)) (at least
// i = 0, no clipping), quantizes w clamped to [-max_val_i, max_val_i] with `spec` and keeps the
// first strict minimum of the group's output error
//   sum over sampled tokens t of (x[t, g] · (w[r, g] - q_i[r, g]))²
// over min(n_tokens, max_tokens) evenly spaced tokens, token k * n_tokens / count (the reference
// takes every (n_tokens / 512)-th token: between 512 and 1023 of them; a fixed count bounds the
// cost). Returns max_vals: [rows, ceil(cols / G)] row-major.
// w: (rows, cols) row-major and x: [n_tokens, cols] row-major are the weight and input after
// AWQ scaling (W diag(s) and x / s), both finite. n_grid > 0, max_shrink in [0, 1),
// max_tokens > 0. Groups are chosen independently; that is exact for group and per-row formats.
// For formats whose scale spans several rows (per-tensor, FP8_BLOCK128, NVFP4's tensor scale),
// each candidate quantizes the whole clamped matrix, so a row's error also sees the other rows'
// clamping at the same step.
Result<std::vector<float>> awq_search_clip(const float* w, int64_t rows, int64_t cols,
                                           const float* x, int64_t n_tokens, const QuantSpec& spec,
                                           int n_grid = 20, double max_shrink = 0.5,
                                           int64_t max_tokens = 512);

// llm-awq apply_clip: w[r, c] = clamp(w[r, c], -max_vals[r, g], max_vals[r, g]) with
// g = c / group_size, in place. w: (rows, cols) row-major; max_vals: [rows, ceil(cols /
// group_size)] finite and >= 0 (awq_search_clip's result with group_size =
// awq_clip_group_size(spec, cols)).
Status apply_clip(float* w, int64_t rows, int64_t cols, int64_t group_size,
                  std::span<const float> max_vals);

}  // namespace qforge
