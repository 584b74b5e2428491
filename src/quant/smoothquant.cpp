// SmoothQuant (Xiao et al. 2022): activation/weight per-channel maxima and the smoothing scales,
// following the reference smooth_ln_fcs (mit-han-lab/smoothquant) and TensorRT-LLM's guards.
#include "qforge/quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "qforge/core/parallel.h"

namespace qforge {
namespace {

// The reference's floor for both maxima and the scale: keeps a dead channel or an all-zero
// weight column from producing 0 or Inf.
constexpr double kMinMax = 1e-5;

// Elements per parallel chunk of the column-max scans.
constexpr int64_t kGrainElements = int64_t{1} << 16;

// out[j] = max(out[j], max over rows |m[r, j]|) for m: (rows, cols) row-major. Returns the flat
// index of the first non-finite element, or -1.
int64_t accumulate_column_amax(const float* m, int64_t rows, int64_t cols,
                               std::vector<float>& out) {
  std::mutex mutex;
  int64_t first_bad = -1;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / cols);
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(static_cast<size_t>(cols), 0.0f);
    int64_t bad = -1;
    for (int64_t r = begin; r < end && bad < 0; ++r) {
      const float* row = m + r * cols;
      for (int64_t j = 0; j < cols; ++j) {
        const float a = std::fabs(row[j]);
        if (!std::isfinite(a)) {
          bad = r * cols + j;
          break;
        }
        acc[j] = std::max(acc[j], a);
      }
    }
    // max and min are exact and order-independent: merging chunks in any order gives one result.
    const std::lock_guard<std::mutex> lock(mutex);
    for (int64_t j = 0; j < cols; ++j) out[j] = std::max(out[j], acc[j]);
    if (bad >= 0 && (first_bad < 0 || bad < first_bad)) first_bad = bad;
  });
  return first_bad;
}

}  // namespace

Result<std::vector<float>> smoothquant_act_amax(const float* x, int64_t n_tokens, int64_t cols) {
  constexpr const char* kFn = "smoothquant_act_amax";
  if (x == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: x is null", kFn);
  if (n_tokens <= 0 || cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: x shape [n_tokens={}, cols={}] is empty or negative", kFn, n_tokens,
                      cols);
  }
  std::vector<float> amax(static_cast<size_t>(cols), 0.0f);
  if (const int64_t bad = accumulate_column_amax(x, n_tokens, cols, amax); bad >= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: x[token {}, channel {}] = {} is not finite (calibration activations "
                      "overflowed?)",
                      kFn, bad / cols, bad % cols, x[bad]);
  }
  return amax;
}

Result<std::vector<float>> smoothquant_scales(std::span<const float> act_amax,
                                              std::span<const WeightRef> weights, int64_t cols,
                                              float alpha) {
  constexpr const char* kFn = "smoothquant_scales";
  if (cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: cols = {} (must be > 0)", kFn, cols);
  }
  if (static_cast<int64_t>(act_amax.size()) != cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} activation maxima for {} input channels (need one per channel)", kFn,
                      act_amax.size(), cols);
  }
  if (!std::isfinite(alpha) || alpha < 0.0f || alpha > 1.0f) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: alpha = {} (must be in [0, 1]; 0.5 is the paper's default)", kFn, alpha);
  }
  if (weights.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: no weights (pass every linear that reads this input)", kFn);
  }
  for (size_t j = 0; j < act_amax.size(); ++j) {
    if (!std::isfinite(act_amax[j]) || act_amax[j] < 0.0f) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: act_amax[{}] = {} (must be finite and >= 0)", kFn, j, act_amax[j]);
    }
  }
  std::vector<float> w_amax(static_cast<size_t>(cols), 0.0f);
  for (size_t i = 0; i < weights.size(); ++i) {
    const WeightRef& ref = weights[i];
    if (ref.w == nullptr || ref.rows <= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: weight {} is null or has rows = {} (must be > 0)", kFn, i, ref.rows);
    }
    if (const int64_t bad = accumulate_column_amax(ref.w, ref.rows, cols, w_amax); bad >= 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: weight {} [{}, {}] = {} is not finite",
                        kFn, i, bad / cols, bad % cols, ref.w[bad]);
    }
  }
  std::vector<float> s(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    if (act_amax[j] == 0.0f) {
      // A channel that never fires carries no outlier to migrate; s = 1 leaves its weights alone.
      s[j] = 1.0f;
      continue;
    }
    const double a = std::max<double>(act_amax[j], kMinMax);
    const double w = std::max<double>(w_amax[j], kMinMax);
    const double v = std::pow(a, double{alpha}) / std::pow(w, 1.0 - double{alpha});
    s[j] = static_cast<float>(std::max(v, kMinMax));
  }
  return s;
}

}  // namespace qforge
