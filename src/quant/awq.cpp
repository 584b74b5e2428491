// AWQ (Lin et al. 2023): the activation-aware scale search and the clipping search of llm-awq
// (auto_scale.py / auto_clip.py), with fake quantization through quantize_matrix.
#include "qforge/quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backend/cpu/matmul.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace {

// Tokens per matmul in the loss: bounds the output buffer to kLossTokenChunk * rows floats.
constexpr int64_t kLossTokenChunk = 256;
// The reference's floor on s = act_mean_abs ^ ratio (a dead channel would give s = 0).
constexpr double kMinScale = 1e-4;

Status check_shape(const char* fn, const char* name, const void* p, int64_t rows, int64_t cols) {
  if (p == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: {} is null", fn, name);
  if (rows <= 0 || cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} shape [{}, {}] is empty or negative (both must be > 0)", fn, name,
                      rows, cols);
  }
  return ok_status();
}

// Errors naming the first non-finite element of m: (rows, cols) row-major.
Status check_finite(const char* fn, const char* name, const float* m, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(m[i])) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: {}[{}, {}] = {} is not finite (overflowed activations or a corrupt "
                        "checkpoint?)",
                        fn, name, i / cols, i % cols, m[i]);
    }
  }
  return ok_status();
}

Status check_weights(const char* fn, std::span<const WeightRef> weights, int64_t cols) {
  if (weights.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: no weights (pass every linear that reads this input)", fn);
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::string name = fmt::format("weight {}", i);
    QF_TRY(check_shape(fn, name.c_str(), weights[i].w, weights[i].rows, cols));
  }
  return ok_status();
}

// Sum over a [m, n] buffer of y², in double.
double sum_squares(const float* y, int64_t count) {
  double s = 0.0;
  for (int64_t i = 0; i < count; ++i) s += static_cast<double>(y[i]) * y[i];
  return s;
}

// The loss without argument checks (awq_search_scales_linear checks once, not per grid point).
Result<double> linear_loss(const float* x, int64_t n_tokens, std::span<const WeightRef> weights,
                           int64_t cols, const QuantSpec& spec, std::span<const float> scales) {
  double total = 0.0;
  int64_t total_rows = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const WeightRef& ref = weights[i];
    QF_ASSIGN_OR_RETURN(std::vector<float> d,
                        awq_fake_quantize_scaled(ref.w, ref.rows, cols, spec, scales)
                            .context(fmt::format("awq_linear_loss: weight {}", i)));
    // d = W - Q(W diag(s)) diag(1/s): x · dᵀ is the output error directly, which keeps the
    // small difference exact instead of subtracting two large outputs.
    const int64_t n = ref.rows * cols;
    for (int64_t k = 0; k < n; ++k) d[k] = ref.w[k] - d[k];
    const cpu::WeightView view{d.data(), DType::F32, ref.rows, cols, cols};
    std::vector<float> y(static_cast<size_t>(std::min(n_tokens, kLossTokenChunk) * ref.rows));
    for (int64_t t = 0; t < n_tokens; t += kLossTokenChunk) {
      const int64_t m = std::min(kLossTokenChunk, n_tokens - t);
      cpu::matmul(view, x + t * cols, m, y.data());
      total += sum_squares(y.data(), m * ref.rows);
    }
    total_rows += ref.rows;
  }
  return total / (static_cast<double>(n_tokens) * static_cast<double>(total_rows));
}

}  // namespace

std::string_view awq_duo_scaling_name(AwqDuoScaling d) {
  switch (d) {
    case AwqDuoScaling::kOff:
      return "off";
    case AwqDuoScaling::kOn:
      return "on";
    case AwqDuoScaling::kBoth:
      return "both";
  }
  return "?";
}

Result<AwqDuoScaling> parse_awq_duo_scaling(std::string_view text) {
  for (AwqDuoScaling d : {AwqDuoScaling::kOff, AwqDuoScaling::kOn, AwqDuoScaling::kBoth}) {
    if (text == awq_duo_scaling_name(d)) return d;
  }
  return make_error(ErrorCode::kInvalidArgument, "AWQ duo scaling '{}' is not one of on, off, both",
                    text);
}

Result<std::vector<float>> awq_weight_mean(std::span<const WeightRef> weights, int64_t cols,
                                           int64_t group_size) {
  constexpr const char* kFn = "awq_weight_mean";
  QF_TRY(check_weights(kFn, weights, cols));
  if (group_size <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: group_size = {} (must be > 0)", kFn,
                      group_size);
  }
  const int64_t group = std::min(group_size, cols);
  std::vector<double> acc(static_cast<size_t>(cols), 0.0);
  int64_t total_rows = 0;
  for (const WeightRef& ref : weights) {
    QF_TRY(check_finite(kFn, "w", ref.w, ref.rows, cols));
    for (int64_t r = 0; r < ref.rows; ++r) {
      const float* row = ref.w + r * cols;
      for (int64_t c0 = 0; c0 < cols; c0 += group) {
        const int64_t c1 = std::min(cols, c0 + group);
        float m = 0.0f;
        for (int64_t j = c0; j < c1; ++j) m = std::max(m, std::fabs(row[j]));
        const double inv = 1.0 / (static_cast<double>(m) + 1e-6);
        for (int64_t j = c0; j < c1; ++j) acc[j] += std::fabs(row[j]) * inv;
      }
    }
    total_rows += ref.rows;
  }
  std::vector<float> mean(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    mean[j] = static_cast<float>(acc[j] / static_cast<double>(total_rows));
  }
  return mean;
}

Result<AwqScaleSearchResult> awq_search_scales(std::span<const float> act_mean_abs, int n_grid,
                                               const AwqLossFn& loss) {
  return awq_search_scales(act_mean_abs, {}, n_grid, AwqDuoScaling::kOff, loss);
}

Result<AwqScaleSearchResult> awq_search_scales(std::span<const float> act_mean_abs,
                                               std::span<const float> w_mean, int n_grid,
                                               AwqDuoScaling duo, const AwqLossFn& loss) {
  constexpr const char* kFn = "awq_search_scales";
  if (act_mean_abs.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: act_mean_abs is empty", kFn);
  }
  if (n_grid <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: n_grid = {} (must be > 0; the reference uses 20)", kFn, n_grid);
  }
  if (!loss) return make_error(ErrorCode::kInvalidArgument, "{}: loss callback is empty", kFn);
  for (size_t j = 0; j < act_mean_abs.size(); ++j) {
    if (!std::isfinite(act_mean_abs[j]) || act_mean_abs[j] < 0.0f) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: act_mean_abs[{}] = {} (must be finite and >= 0: a mean of |x|)", kFn,
                        j, act_mean_abs[j]);
    }
  }
  const size_t cols = act_mean_abs.size();
  if (duo != AwqDuoScaling::kOff) {
    if (w_mean.size() != cols) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: w_mean has {} values but act_mean_abs has {} (duo scaling needs one "
                        "weight mean per input channel)",
                        kFn, w_mean.size(), cols);
    }
    for (size_t j = 0; j < cols; ++j) {
      if (!std::isfinite(w_mean[j]) || w_mean[j] < 0.0f) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: w_mean[{}] = {} (must be finite and >= 0)", kFn, j, w_mean[j]);
      }
    }
  }
  AwqScaleSearchResult result;
  result.best_loss = std::numeric_limits<double>::infinity();
  int best = -1;
  int index = 0;
  std::vector<float> s(cols);
  // Scores s; the first strict minimum wins (a tie keeps the earlier, closer-to-RTN point).
  const auto evaluate = [&](double ratio, bool with_duo) -> Status {
    Result<double> l = loss(std::span<const float>(s));
    if (!l.ok()) {
      return std::move(l)
          .context(fmt::format("{}: loss at ratio {}{} (evaluation {})", kFn, ratio,
                               with_duo ? " (duo)" : "", index))
          .error();
    }
    result.losses.push_back(*l);
    if (std::isfinite(*l) && *l < result.best_loss) {
      best = index;
      result.best_loss = *l;
      result.best_ratio = ratio;
      result.best_duo = with_duo;
      result.scales = s;
    }
    ++index;
    return ok_status();
  };
  const auto grid = [&](bool with_duo) -> Status {
    for (int i = 0; i < n_grid; ++i) {
      const double ratio = static_cast<double>(i) / n_grid;
      for (size_t j = 0; j < cols; ++j) {
        double v = std::pow(double{act_mean_abs[j]}, ratio);
        if (with_duo) v /= std::pow(double{w_mean[j]}, 1.0 - ratio) + 1e-4;
        s[j] = static_cast<float>(std::max(v, kMinScale));
      }
      const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
      // Centres the scales around 1 (geometric mean of the extremes) so that neither the folded
      // norm nor the scaled weights drift far from their original magnitudes.
      const double norm = std::sqrt(static_cast<double>(*hi) * static_cast<double>(*lo));
      for (float& v : s) v = static_cast<float>(v / norm);
      QF_TRY(evaluate(ratio, with_duo));
    }
    return ok_status();
  };
  switch (duo) {
    case AwqDuoScaling::kOff:
      QF_TRY(grid(false));
      break;
    case AwqDuoScaling::kOn:
      // The duo grid has no s = 1 point (ratio 0 divides by the weight means): score plain RTN
      // first so that the search never loses to it.
      std::fill(s.begin(), s.end(), 1.0f);
      QF_TRY(evaluate(0.0, false));
      QF_TRY(grid(true));
      break;
    case AwqDuoScaling::kBoth:
      QF_TRY(grid(false));
      QF_TRY(grid(true));
      break;
  }
  if (best < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: the loss was not finite at any of the {} grid points (first: {}); check "
                      "the block's float output and the calibration inputs",
                      kFn, result.losses.size(), result.losses.front());
  }
  return result;
}

Result<std::vector<float>> awq_fake_quantize_scaled(const float* w, int64_t rows, int64_t cols,
                                                    const QuantSpec& spec,
                                                    std::span<const float> scales) {
  constexpr const char* kFn = "awq_fake_quantize_scaled";
  QF_TRY(check_shape(kFn, "w", w, rows, cols));
  QF_TRY(validate_channel_scales(kFn, scales, cols));
  std::vector<float> out(w, w + rows * cols);
  QF_TRY(scale_weight_columns(out.data(), rows, cols, scales));
  QF_ASSIGN_OR_RETURN(QuantizedMatrix q,
                      quantize_matrix(out.data(), rows, cols, spec)
                          .context(fmt::format("{}: quantizing W diag(s) [{}, {}] as {}", kFn, rows,
                                               cols, quant_spec_name(spec))));
  QF_TRY(dequantize_matrix(q, out.data()).context(kFn));
  // Division by s, not a multiply by 1/s: the reference's `w_quantize_func(w) / scales`.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / cols);
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = out.data() + r * cols;
      for (int64_t j = 0; j < cols; ++j) row[j] /= scales[j];
    }
  });
  return out;
}

Result<double> awq_linear_loss(const float* x, int64_t n_tokens, std::span<const WeightRef> weights,
                               int64_t cols, const QuantSpec& spec, std::span<const float> scales) {
  constexpr const char* kFn = "awq_linear_loss";
  QF_TRY(check_shape(kFn, "x", x, n_tokens, cols));
  QF_TRY(check_weights(kFn, weights, cols));
  QF_TRY(validate_channel_scales(kFn, scales, cols));
  QF_TRY(check_finite(kFn, "x", x, n_tokens, cols));
  return linear_loss(x, n_tokens, weights, cols, spec, scales);
}

Result<std::vector<float>> awq_act_mean_abs(const float* x, int64_t n_tokens, int64_t cols) {
  constexpr const char* kFn = "awq_act_mean_abs";
  QF_TRY(check_shape(kFn, "x", x, n_tokens, cols));
  QF_TRY(check_finite(kFn, "x", x, n_tokens, cols));
  std::vector<float> mean(static_cast<size_t>(cols));
  // Parallel over column ranges, every thread summing its columns in token order: the result is
  // the same for any thread count.
  parallel_for(0, cols, 64, [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* row = x + t * cols;
      for (int64_t j = c0; j < c1; ++j) acc[j - c0] += std::fabs(row[j]);
    }
    for (int64_t j = c0; j < c1; ++j) {
      mean[j] = static_cast<float>(acc[j - c0] / static_cast<double>(n_tokens));
    }
  });
  return mean;
}

Result<AwqScaleSearchResult> awq_search_scales_linear(const float* x, int64_t n_tokens,
                                                      std::span<const WeightRef> weights,
                                                      int64_t cols, const QuantSpec& spec,
                                                      int n_grid) {
  constexpr const char* kFn = "awq_search_scales_linear";
  QF_TRY(check_shape(kFn, "x", x, n_tokens, cols));
  QF_TRY(check_weights(kFn, weights, cols));
  QF_ASSIGN_OR_RETURN(std::vector<float> mean, awq_act_mean_abs(x, n_tokens, cols).context(kFn));
  const AwqLossFn loss = [&](std::span<const float> s) {
    return linear_loss(x, n_tokens, weights, cols, spec, s);
  };
  return awq_search_scales(mean, n_grid, loss).context(kFn);
}

int64_t awq_clip_group_size(const QuantSpec& spec, int64_t cols) {
  switch (spec.format) {
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP:
      return spec.group_size > 0 ? spec.group_size : cols;
    case QuantFormat::NVFP4:
      return 16;
    case QuantFormat::MXFP4:
    case QuantFormat::MXFP8:
      return 32;
    case QuantFormat::FP8_BLOCK128:
      return 128;
    default:
      return cols;
  }
}

Result<std::vector<float>> awq_search_clip(const float* w, int64_t rows, int64_t cols,
                                           const float* x, int64_t n_tokens, const QuantSpec& spec,
                                           int n_grid, double max_shrink, int64_t max_tokens) {
  constexpr const char* kFn = "awq_search_clip";
  QF_TRY(check_shape(kFn, "w", w, rows, cols));
  QF_TRY(check_shape(kFn, "x", x, n_tokens, cols));
  if (n_grid <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: n_grid = {} (must be > 0; the reference uses 20)", kFn, n_grid);
  }
  if (!(max_shrink >= 0.0 && max_shrink < 1.0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: max_shrink = {} (must be in [0, 1); the reference uses 0.5)", kFn,
                      max_shrink);
  }
  if (max_tokens <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: max_tokens = {} (must be > 0; the reference uses 512)", kFn, max_tokens);
  }
  QF_TRY(validate_quant_spec(spec).context(kFn));
  QF_TRY(check_finite(kFn, "w", w, rows, cols));
  QF_TRY(check_finite(kFn, "x", x, n_tokens, cols));

  const int64_t group = std::min(awq_clip_group_size(spec, cols), cols);
  const int64_t n_groups = (cols + group - 1) / group;
  const auto width = [&](int64_t g) { return std::min(group, cols - g * group); };
  const int64_t count = std::min(n_tokens, max_tokens);

  // xg: the sampled tokens regrouped so that group g is a contiguous [count, width(g)] matrix
  // starting at count * g * group (what the GEMM below reads with a unit row stride).
  std::vector<float> xg(static_cast<size_t>(count * cols));
  for (int64_t k = 0; k < count; ++k) {
    const float* row = x + (k * n_tokens / count) * cols;
    for (int64_t g = 0; g < n_groups; ++g) {
      std::copy_n(row + g * group, width(g), xg.data() + count * g * group + k * width(g));
    }
  }

  // org_max, best_max, best_err: [rows, n_groups].
  const size_t n_cells = static_cast<size_t>(rows * n_groups);
  std::vector<float> org_max(n_cells, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < n_groups; ++g) {
      const float* p = w + r * cols + g * group;
      float m = 0.0f;
      for (int64_t j = 0; j < width(g); ++j) m = std::max(m, std::fabs(p[j]));
      org_max[r * n_groups + g] = m;
    }
  }
  std::vector<float> best_max = org_max;
  std::vector<double> best_err(n_cells, std::numeric_limits<double>::infinity());
  std::vector<float> max_val(n_cells);
  std::vector<float> buf(static_cast<size_t>(rows * cols));  // clamped w, then w - q

  // Python's int(max_shrink * n_grid), at least 1 so that "no clipping" is always a candidate.
  const int n_steps = std::max(1, static_cast<int>(max_shrink * n_grid));
  for (int i = 0; i < n_steps; ++i) {
    // The reference scales in the weight's dtype: one FP32 multiply by the rounded factor.
    const auto factor = static_cast<float>(1.0 - static_cast<double>(i) / n_grid);
    for (size_t c = 0; c < n_cells; ++c) max_val[c] = org_max[c] * factor;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < n_groups; ++g) {
        const float m = max_val[r * n_groups + g];
        const float* src = w + r * cols + g * group;
        float* dst = buf.data() + r * cols + g * group;
        for (int64_t j = 0; j < width(g); ++j) dst[j] = std::clamp(src[j], -m, m);
      }
    }
    QF_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_matrix(buf.data(), rows, cols, spec)
                                               .context(fmt::format("{}: shrink step {}", kFn, i)));
    QF_TRY(dequantize_matrix(q, buf.data()).context(kFn));
    for (int64_t k = 0; k < rows * cols; ++k) buf[k] = w[k] - buf[k];
    // One GEMM per group: y = x_g · (w_g - q_g)ᵀ, [count, rows]; err[r, g] = sum over tokens y².
    // Groups run in parallel; the GEMM inside runs on the calling thread (nested parallel_for),
    // or multi-threaded when there is a single group (per-row formats).
    parallel_for(0, n_groups, 1, [&](int64_t g0, int64_t g1) {
      std::vector<float> y(static_cast<size_t>(count * rows));
      for (int64_t g = g0; g < g1; ++g) {
        const cpu::WeightView view{buf.data() + g * group, DType::F32, rows, width(g), cols};
        cpu::matmul(view, xg.data() + count * g * group, count, y.data());
        for (int64_t r = 0; r < rows; ++r) {
          double err = 0.0;
          for (int64_t t = 0; t < count; ++t) {
            const double v = y[t * rows + r];
            err += v * v;
          }
          const size_t c = static_cast<size_t>(r * n_groups + g);
          if (err < best_err[c]) {
            best_err[c] = err;
            best_max[c] = max_val[c];
          }
        }
      }
    });
  }
  return best_max;
}

Status apply_clip(float* w, int64_t rows, int64_t cols, int64_t group_size,
                  std::span<const float> max_vals) {
  constexpr const char* kFn = "apply_clip";
  QF_TRY(check_shape(kFn, "w", w, rows, cols));
  if (group_size <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: group_size = {} (must be > 0; awq_clip_group_size gives it)", kFn,
                      group_size);
  }
  const int64_t group = std::min(group_size, cols);
  const int64_t n_groups = (cols + group - 1) / group;
  if (static_cast<int64_t>(max_vals.size()) != rows * n_groups) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} max values for [{} rows, {} groups of {}] (need rows * ceil(cols / "
                      "group_size) = {}; same group size as the search?)",
                      kFn, max_vals.size(), rows, n_groups, group, rows * n_groups);
  }
  for (size_t c = 0; c < max_vals.size(); ++c) {
    if (!std::isfinite(max_vals[c]) || max_vals[c] < 0.0f) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: max_vals[{}] (row {}, group {}) = {} (must be finite and >= 0)", kFn,
                        c, c / n_groups, c % n_groups, max_vals[c]);
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < n_groups; ++g) {
      const float m = max_vals[r * n_groups + g];
      float* p = w + r * cols + g * group;
      const int64_t n = std::min(group, cols - g * group);
      for (int64_t j = 0; j < n; ++j) p[j] = std::clamp(p[j], -m, m);
    }
  }
  return ok_status();
}

}  // namespace qforge
