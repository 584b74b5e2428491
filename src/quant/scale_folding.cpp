// Per-input-channel scale folding (SmoothQuant, Xiao et al. 2022; AWQ, Lin et al. 2023): the
// weight-side multiply and the three ways of dividing the layer's input by the same scales.
#include "qforge/quant/scale_folding.h"

#include <algorithm>
#include <cmath>

#include "qforge/core/parallel.h"

namespace qforge {
namespace {

// Elements per parallel chunk: below this a fork/join costs more than the loop.
constexpr int64_t kGrainElements = int64_t{1} << 16;

Status check_matrix(const char* fn, const void* p, int64_t rows, int64_t cols) {
  if (p == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "{}: matrix pointer is null", fn);
  if (rows <= 0 || cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: shape [rows={}, cols={}] is empty or negative (both must be > 0)", fn,
                      rows, cols);
  }
  return ok_status();
}

// Runs fn(r) for every row, in parallel when the matrix is large.
template <typename Fn>
void for_each_row(int64_t rows, int64_t cols, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, kGrainElements / cols);
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

}  // namespace

Status validate_channel_scales(const char* fn, std::span<const float> s, int64_t cols) {
  if (static_cast<int64_t>(s.size()) != cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} scales for {} input channels (need one scale per channel)", fn,
                      s.size(), cols);
  }
  for (size_t j = 0; j < s.size(); ++j) {
    if (!std::isfinite(s[j]) || !(s[j] > 0.0f)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: scale[{}] = {} (scales must be finite and > 0; a zero or negative "
                        "scale cannot be folded)",
                        fn, j, s[j]);
    }
  }
  return ok_status();
}

Status scale_weight_columns(float* w, int64_t rows, int64_t cols, std::span<const float> s) {
  constexpr const char* kFn = "scale_weight_columns";
  QF_TRY(check_matrix(kFn, w, rows, cols));
  QF_TRY(validate_channel_scales(kFn, s, cols));
  for_each_row(rows, cols, [&](int64_t r) {
    float* row = w + r * cols;
    for (int64_t j = 0; j < cols; ++j) row[j] *= s[j];
  });
  return ok_status();
}

Status fold_scales_into_norm(std::span<float> norm_weight, std::span<float> norm_bias,
                             std::span<const float> s) {
  constexpr const char* kFn = "fold_scales_into_norm";
  const auto cols = static_cast<int64_t>(norm_weight.size());
  if (cols == 0) return make_error(ErrorCode::kInvalidArgument, "{}: norm weight is empty", kFn);
  if (!norm_bias.empty() && norm_bias.size() != norm_weight.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: norm bias has {} values but the weight has {} (pass an empty bias for "
                      "an RMSNorm)",
                      kFn, norm_bias.size(), norm_weight.size());
  }
  QF_TRY(validate_channel_scales(kFn, s, cols));
  // Division, not a multiply by 1/s: the same op the reference (norm.weight.div_) performs.
  for (int64_t j = 0; j < cols; ++j) norm_weight[j] /= s[j];
  for (size_t j = 0; j < norm_bias.size(); ++j) norm_bias[j] /= s[j];
  return ok_status();
}

Status fold_scales_into_previous_linear(float* w, int64_t rows, int64_t cols, std::span<float> bias,
                                        std::span<const float> s) {
  constexpr const char* kFn = "fold_scales_into_previous_linear";
  QF_TRY(check_matrix(kFn, w, rows, cols));
  if (static_cast<int64_t>(s.size()) != rows) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} scales for a previous linear with {} output rows (its outputs are "
                      "the scaled layer's inputs: need one scale per row)",
                      kFn, s.size(), rows);
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != rows) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: bias has {} values for {} rows (pass an empty bias when there is none)",
                      kFn, bias.size(), rows);
  }
  QF_TRY(validate_channel_scales(kFn, s, rows));
  for_each_row(rows, cols, [&](int64_t r) {
    float* row = w + r * cols;
    const float sr = s[r];
    for (int64_t j = 0; j < cols; ++j) row[j] /= sr;
  });
  for (size_t r = 0; r < bias.size(); ++r) bias[r] /= s[r];
  return ok_status();
}

Status unscale_activation_columns(float* x, int64_t n_tokens, int64_t cols,
                                  std::span<const float> s) {
  constexpr const char* kFn = "unscale_activation_columns";
  QF_TRY(check_matrix(kFn, x, n_tokens, cols));
  QF_TRY(validate_channel_scales(kFn, s, cols));
  for_each_row(n_tokens, cols, [&](int64_t t) {
    float* row = x + t * cols;
    for (int64_t j = 0; j < cols; ++j) row[j] /= s[j];
  });
  return ok_status();
}

}  // namespace qforge
