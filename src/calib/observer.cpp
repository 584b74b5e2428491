// Calibration observers: the |x| histogram with exact range growth, and the max / percentile /
// MSE / entropy amax methods of ModelOpt's HistogramCalibrator and TensorRT's entropy calibrator.
#include "qforge/calib/observer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>

#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

constexpr int64_t kMinBins = 16;
constexpr int64_t kMaxBins = int64_t{1} << 24;
constexpr float kE4M3Max = 448.0f;
constexpr float kInt8Max = 127.0f;
// TensorRT / pytorch-quantization merge the reference distribution into 2^(8-1) = 128 bins for
// signed INT8 (the sign is folded away by the |x| histogram).
constexpr int64_t kInt8EntropyBins = 128;
// MXNet's _smooth_distribution epsilon, applied to counts.
constexpr double kSmoothEps = 1e-4;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The histogram as the methods see it: counts, bin width, the last non-empty bin, the max.
struct HistView {
  std::span<const uint64_t> hist;
  double width = 0.0;
  int64_t last = 0;  // index of the last non-empty bin
  double max_abs = 0.0;
  double edge(int64_t i) const { return static_cast<double>(i) * width; }
};

float amax_percentile(const HistView& h, int64_t total, double percentile) {
  if (percentile >= 100.0) return static_cast<float>(h.max_abs);
  const double target = percentile / 100.0 * static_cast<double>(total);
  double below = 0.0;  // count in bins [0, b)
  for (int64_t b = 0; b <= h.last; ++b) {
    const auto c = static_cast<double>(h.hist[static_cast<size_t>(b)]);
    if (c > 0 && below + c >= target) {
      const double frac = std::clamp((target - below) / c, 0.0, 1.0);
      return static_cast<float>(std::min(h.edge(b) + frac * h.width, h.max_abs));
    }
    below += c;
  }
  return static_cast<float>(h.max_abs);
}

// A candidate threshold for MSE and entropy: edge `bins` of the histogram, so bins [0, bins) lie
// below it. The last candidate is the max itself (bins = last + 1: nothing clips).
struct Candidate {
  int64_t bins;
  float threshold;
};

std::vector<Candidate> candidate_thresholds(const HistView& h, int64_t start_bin) {
  std::vector<Candidate> out;
  const auto max_abs = static_cast<float>(h.max_abs);
  for (int64_t i = start_bin; i <= h.last; ++i) {
    const auto t = static_cast<float>(h.edge(i));
    if (t > 0.0f && t < max_abs && (out.empty() || t > out.back().threshold)) out.push_back({i, t});
  }
  out.push_back({h.last + 1, max_abs});
  return out;
}

// The positive quantization levels of the target at `amax`, from the real codec: codes 0..127
// (INT8) or 0x00..0x7E (E4M3FN, 0x7E = 448) dequantized with scale_for_amax(amax).
void target_levels(float amax, ObserverTarget target, std::vector<float>& levels) {
  const float scale = scale_for_amax(amax, target);
  if (target == ObserverTarget::kInt8) {
    std::vector<int8_t> codes(128);
    for (int k = 0; k < 128; ++k) codes[k] = static_cast<int8_t>(k);
    levels.resize(codes.size());
    dequantize_row_int8(codes.data(), 128, scale, levels.data());
  } else {
    std::vector<uint8_t> codes(0x7F);
    for (int k = 0; k < 0x7F; ++k) codes[k] = static_cast<uint8_t>(k);
    levels.resize(codes.size());
    dequantize_row_fp8(codes.data(), 0x7F, scale, ScalarFormat::E4M3FN, levels.data());
  }
}

// Expected squared error of quantizing the histogram at threshold t: sum over bins of count times
// the mean of (q(x) - x)^2 for x uniform in the bin, q rounding to the nearest level (the codecs
// round to nearest, so the decision points are the midpoints between levels) and clipping at the
// top level. Integrating over each bin instead of quantizing its centre matters: with ~10 bins
// per quantization step the centre rule's error aliases with the bin grid by ~1% of the rounding
// error, which moves the argmin of this flat objective by a few percent when the edges move.
double histogram_quant_error(const HistView& h, const std::vector<float>& levels) {
  const auto n_levels = static_cast<int64_t>(levels.size());
  int64_t k = 0;                     // the level of the current point
  auto upper = [&](int64_t level) {  // where rounding moves from `level` to the next one
    return level + 1 < n_levels ? 0.5 * (double{levels[level]} + levels[level + 1])
                                : std::numeric_limits<double>::infinity();
  };
  double err = 0.0;
  for (int64_t b = 0; b <= h.last; ++b) {
    const auto count = static_cast<double>(h.hist[static_cast<size_t>(b)]);
    if (count == 0.0) continue;
    double lo = h.edge(b);
    const double hi = h.edge(b + 1);
    while (upper(k) <= lo) ++k;
    double integral = 0.0;  // of (x - level)^2 dx over the bin
    for (;;) {
      const double end = std::min(hi, upper(k));
      const double l = levels[k];
      integral += ((end - l) * (end - l) * (end - l) - (lo - l) * (lo - l) * (lo - l)) / 3.0;
      if (end >= hi) break;
      lo = end;
      ++k;
    }
    err += count * integral / h.width;
  }
  return err;
}

float amax_mse(const HistView& h, ObserverTarget target, int64_t start_bin) {
  std::vector<float> levels;
  float best = static_cast<float>(h.max_abs);
  double best_err = std::numeric_limits<double>::infinity();
  for (const Candidate& cand : candidate_thresholds(h, start_bin)) {
    target_levels(cand.threshold, target, levels);
    const double err = histogram_quant_error(h, levels);
    // Strictly smaller: on ties the smaller threshold.
    if (err < best_err) {
      best_err = err;
      best = cand.threshold;
    }
  }
  return best;
}

// MXNet's _smooth_distribution on counts: zeros get eps, non-zeros give up eps * zeros /
// nonzeros; eps shrinks where that would make a count non-positive (sparse histograms).
void smooth(std::vector<double>& p) {
  int64_t zeros = 0;
  double min_nonzero = std::numeric_limits<double>::infinity();
  for (const double v : p) {
    if (v == 0.0) {
      ++zeros;
    } else {
      min_nonzero = std::min(min_nonzero, v);
    }
  }
  const auto nonzeros = static_cast<int64_t>(p.size()) - zeros;
  if (zeros == 0 || nonzeros == 0) return;
  const double ratio = static_cast<double>(zeros) / static_cast<double>(nonzeros);
  const double eps = std::min(kSmoothEps, 0.5 * min_nonzero / ratio);
  for (double& v : p) v += (v == 0.0) ? eps : -eps * ratio;
}

// KL(P || Q) of two positive count vectors, each normalised to sum 1.
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double sp = 0.0;
  double sq = 0.0;
  for (size_t j = 0; j < p.size(); ++j) {
    sp += p[j];
    sq += q[j];
  }
  double kl = 0.0;
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j] <= 0.0) continue;
    const double pj = p[j] / sp;
    const double qj = q[j] / sq;
    kl += pj * std::log(pj / qj);
  }
  return kl;
}

float amax_entropy(const HistView& h, int64_t start_bin) {
  // bins[0] = bins[1]: pytorch-quantization's guard against a spike of exact zeros.
  std::vector<double> bins(h.hist.begin(), h.hist.begin() + (h.last + 1));
  if (bins.size() > 1) bins[0] = bins[1];
  const auto nb = static_cast<int64_t>(bins.size());
  std::vector<double> suffix(static_cast<size_t>(nb + 1), 0.0);  // suffix[i] = sum bins[i:]
  for (int64_t j = nb - 1; j >= 0; --j) suffix[j] = suffix[j + 1] + bins[j];

  std::vector<int64_t> chunk(static_cast<size_t>(nb));
  std::vector<double> chunk_sum(kInt8EntropyBins);
  std::vector<int64_t> chunk_nonzero(kInt8EntropyBins);
  std::vector<double> p;
  std::vector<double> q;

  float best = static_cast<float>(h.max_abs);
  double best_kl = std::numeric_limits<double>::infinity();
  for (const Candidate& cand : candidate_thresholds(h, start_bin)) {
    const int64_t i = cand.bins;
    // Quantization bin of each histogram bin below i: 128 equal chunks of [0, i), as
    // np.digitize(range(i), np.linspace(0, i, 129)) - 1 assigns them.
    for (int64_t j = 0; j < i; ++j) chunk[j] = j * kInt8EntropyBins / i;
    std::fill(chunk_sum.begin(), chunk_sum.end(), 0.0);
    std::fill(chunk_nonzero.begin(), chunk_nonzero.end(), 0);
    for (int64_t j = 0; j < i; ++j) {
      if (bins[j] != 0.0) {
        chunk_sum[chunk[j]] += bins[j];
        ++chunk_nonzero[chunk[j]];
      }
    }
    p.assign(bins.begin(), bins.begin() + i);
    p[i - 1] += suffix[i];  // outliers clip to the threshold
    q.assign(static_cast<size_t>(i), 0.0);
    for (int64_t j = 0; j < i; ++j) {
      if (bins[j] != 0.0) q[j] = chunk_sum[chunk[j]] / static_cast<double>(chunk_nonzero[chunk[j]]);
    }
    smooth(p);
    smooth(q);
    const double kl = kl_divergence(p, q);
    // <=: the largest threshold wins ties, as pytorch-quantization's last argmin does.
    if (kl <= best_kl) {
      best_kl = kl;
      best = cand.threshold;
    }
  }
  return best;
}

// The histogram range for a max: the smallest power of two strictly above it. Powers of two
// make the range a function of the global max alone, make every range an integer multiple of
// every smaller one (so old bins merge whole), and make |x| * (num_bins / range) exact.
double range_for_max(double max_abs) {
  int e = 0;
  std::frexp(max_abs, &e);  // max_abs = m * 2^e with m in [0.5, 1), so max_abs < 2^e
  return std::ldexp(1.0, e);
}

}  // namespace

Result<AmaxMethod> parse_amax_method(std::string_view name) {
  for (const AmaxMethod m :
       {AmaxMethod::kMax, AmaxMethod::kPercentile, AmaxMethod::kMse, AmaxMethod::kEntropy}) {
    if (iequals(name, amax_method_name(m))) return m;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown amax method '{}' (expected one of: max, percentile, mse, entropy)",
                    name);
}

const char* amax_method_name(AmaxMethod method) {
  switch (method) {
    case AmaxMethod::kMax:
      return "max";
    case AmaxMethod::kPercentile:
      return "percentile";
    case AmaxMethod::kMse:
      return "mse";
    case AmaxMethod::kEntropy:
      return "entropy";
  }
  return "?";
}

Result<ObserverTarget> parse_observer_target(std::string_view name) {
  for (const char* alias : {"fp8", "e4m3", "e4m3fn", "fp8_e4m3"}) {
    if (iequals(name, alias)) return ObserverTarget::kFp8E4M3;
  }
  if (iequals(name, "int8")) return ObserverTarget::kInt8;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown observer target '{}' (expected fp8 (E4M3FN) or int8)", name);
}

const char* observer_target_name(ObserverTarget target) {
  return target == ObserverTarget::kInt8 ? "int8" : "fp8_e4m3";
}

float scale_for_amax(float amax, ObserverTarget target) {
  return amax / (target == ObserverTarget::kInt8 ? kInt8Max : kE4M3Max);
}

Result<ActivationObserver> ActivationObserver::with_bins(int64_t num_bins) {
  if (num_bins < kMinBins || num_bins > kMaxBins) {
    return make_error(ErrorCode::kInvalidArgument,
                      "activation observer: num_bins = {} is out of range (expected {}..{}; "
                      "ModelOpt and TensorRT use 2048)",
                      num_bins, kMinBins, kMaxBins);
  }
  return ActivationObserver(num_bins);
}

void ActivationObserver::grow_range(double new_max) {
  const double new_range = range_for_max(new_max);
  if (range_ == 0.0) {  // everything so far was an exact zero, which stays in bin 0
    range_ = new_range;
    return;
  }
  const double ratio = new_range / range_;  // a power of two >= 2
  const int64_t nb = num_bins();
  std::vector<uint64_t> merged(hist_.size(), 0);
  if (ratio < static_cast<double>(nb)) {
    const auto m = static_cast<int64_t>(ratio);
    for (int64_t b = 0; b < nb; ++b) merged[b / m] += hist_[b];
  } else {
    // The old range fits inside the new bin 0.
    for (int64_t b = 0; b < nb; ++b) merged[0] += hist_[b];
  }
  hist_ = std::move(merged);
  range_ = new_range;
}

void ActivationObserver::observe(const float* x, int64_t n) {
  if (n <= 0) return;
  float batch_max = 0.0f;
  int64_t nan = 0;
  int64_t inf = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (std::isnan(v)) {
      ++nan;
    } else if (std::isinf(v)) {
      ++inf;
    } else {
      batch_max = std::max(batch_max, std::fabs(v));
    }
  }
  nan_count_ += nan;
  inf_count_ += inf;
  const int64_t finite = n - nan - inf;
  count_ += finite;
  if (finite == 0) return;
  max_abs_ = std::max(max_abs_, batch_max);
  if (batch_max > 0.0f && batch_max >= range_) grow_range(batch_max);
  if (range_ == 0.0) {
    hist_[0] += static_cast<uint64_t>(finite);
    return;
  }
  const int64_t last = num_bins() - 1;
  const double inv_width = static_cast<double>(num_bins()) / range_;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) continue;
    const auto b = static_cast<int64_t>(std::fabs(static_cast<double>(v)) * inv_width);
    ++hist_[static_cast<size_t>(std::min(b, last))];
  }
}

Result<float> ActivationObserver::amax(AmaxMethod method, const AmaxOptions& options) const {
  const char* name = amax_method_name(method);
  if (nan_count_ > 0 || inf_count_ > 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "amax({}): {} NaN and {} Inf values observed (besides {} finite ones); a "
                      "scale calibrated on non-finite activations is meaningless (check the "
                      "calibration inputs and the model's precision)",
                      name, nan_count_, inf_count_, count_);
  }
  if (count_ == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "amax({}): no data observed (call observe() with calibration activations "
                      "first)",
                      name);
  }
  if (method == AmaxMethod::kPercentile &&
      !(options.percentile > 0.0 && options.percentile <= 100.0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "amax(percentile): percentile = {} is out of range (expected (0, 100], "
                      "e.g. 99.99)",
                      options.percentile);
  }
  if ((method == AmaxMethod::kMse || method == AmaxMethod::kEntropy) &&
      (options.start_bin < 1 || options.start_bin > num_bins())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "amax({}): start_bin = {} is out of range (expected 1..{}, the histogram's "
                      "bin count; default 128)",
                      name, options.start_bin, num_bins());
  }
  if (method == AmaxMethod::kEntropy && options.target != ObserverTarget::kInt8) {
    return make_error(ErrorCode::kUnsupported,
                      "amax(entropy): target {} is not supported: entropy calibration merges the "
                      "histogram into INT8's 128 equal-width bins, which E4M3's logarithmic grid "
                      "does not have (TensorRT and ModelOpt calibrate FP8 with max; use max, "
                      "percentile or mse for fp8)",
                      observer_target_name(options.target));
  }
  if (method == AmaxMethod::kMax || max_abs_ == 0.0f) return max_abs_;

  HistView h;
  h.hist = hist_;
  h.width = range_ / static_cast<double>(num_bins());
  h.max_abs = max_abs_;
  for (int64_t b = num_bins() - 1; b >= 0; --b) {
    if (hist_[static_cast<size_t>(b)] != 0) {
      h.last = b;
      break;
    }
  }
  switch (method) {
    case AmaxMethod::kPercentile:
      return amax_percentile(h, count_, options.percentile);
    case AmaxMethod::kMse:
      return amax_mse(h, options.target, options.start_bin);
    case AmaxMethod::kEntropy:
      return amax_entropy(h, options.start_bin);
    case AmaxMethod::kMax:
      break;
  }
  return max_abs_;
}

Status ChannelAbsStats::observe(const float* x, int64_t n_rows, int64_t cols) {
  if (cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "channel stats: cols = {} (expected > 0)", cols);
  }
  if (!max_abs_.empty() && cols != this->cols()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "channel stats: cols = {} but earlier batches had {} (every batch of one "
                      "activation must have the same channel count)",
                      cols, this->cols());
  }
  if (n_rows < 0 || (n_rows > 0 && x == nullptr)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "channel stats: n_rows = {} with {} data (expected n_rows >= 0 and data "
                      "for every row)",
                      n_rows, x == nullptr ? "no" : "some");
  }
  const int64_t n = n_rows * cols;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return make_error(ErrorCode::kInvalidArgument,
                        "channel stats: x[{}, {}] = {} is not finite (nothing from this batch of "
                        "{} rows was accumulated)",
                        i / cols, i % cols, x[i], n_rows);
    }
  }
  if (max_abs_.empty()) {
    max_abs_.assign(static_cast<size_t>(cols), 0.0f);
    sum_abs_.assign(static_cast<size_t>(cols), 0.0);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = x + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const float a = std::fabs(row[j]);
      max_abs_[j] = std::max(max_abs_[j], a);
      sum_abs_[j] += a;
    }
  }
  rows_ += n_rows;
  return ok_status();
}

std::vector<float> ChannelAbsStats::mean_abs() const {
  std::vector<float> out(max_abs_.size(), 0.0f);
  if (rows_ == 0) return out;
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = static_cast<float>(sum_abs_[j] / static_cast<double>(rows_));
  }
  return out;
}

}  // namespace qforge
