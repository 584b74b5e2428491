// Calibration observers: streaming activation statistics and the amax (clipping range) methods
// ModelOpt and TensorRT offer: max, percentile, MSE and entropy (KL divergence), following
// ModelOpt's HistogramCalibrator / pytorch-quantization and TensorRT's entropy calibrator.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

enum class AmaxMethod : uint8_t { kMax, kPercentile, kMse, kEntropy };

// "max", "percentile", "mse", "entropy" (case-insensitive); other text is an error listing them.
Result<AmaxMethod> parse_amax_method(std::string_view name);
const char* amax_method_name(AmaxMethod method);

// What the amax will scale: FP8 E4M3FN (scale = amax / 448) or symmetric narrow-range INT8
// (scale = amax / 127).
enum class ObserverTarget : uint8_t { kFp8E4M3, kInt8 };

// "fp8" / "e4m3" / "e4m3fn", "int8" (case-insensitive).
Result<ObserverTarget> parse_observer_target(std::string_view name);
const char* observer_target_name(ObserverTarget target);
// The dequantization scale for an amax: amax / 448 (E4M3FN) or amax / 127 (INT8).
float scale_for_amax(float amax, ObserverTarget target);

struct AmaxOptions {
  // kPercentile: the share (in %) of observed |x| values that must fall at or below the amax;
  // in (0, 100], 100 gives the running max.
  double percentile = 99.99;
  // kMse, kEntropy: the format the amax is chosen for.
  ObserverTarget target = ObserverTarget::kInt8;
  // kMse, kEntropy: the smallest candidate threshold is the upper edge of histogram bin
  // start_bin - 1 (ModelOpt's default 128 of 2048 bins, i.e. 1/16 of the histogram range).
  int64_t start_bin = 128;
};

// Streaming statistics of one activation tensor: feed it any number of batches with observe().
//
// Histogram of |x| with a fixed number of equal-width bins over [0, range), where range is the
// smallest power of two strictly above the running max. When a batch raises the max past the
// range, the range doubles (k times) and old bin b merges into bin b / 2^k. Because the range
// depends only on the global max, every merge is exact (an old bin lies inside one new bin) and
// |x| * num_bins / range is computed exactly, the histogram is bit-identical whatever order or
// batching the data came in; between num_bins / 2 and num_bins bins cover [0, max].
// (ModelOpt's HistogramCalibrator keeps the first batch's bin width and adds bins; PyTorch's
// HistogramObserver re-bins by interpolation; both let the first batches decide the edges.)
//
// NaN and ±Inf values are counted and skipped; amax() then reports them as an error, because a
// scale calibrated on a tensor that holds them is meaningless.
class ActivationObserver {
 public:
  static constexpr int64_t kDefaultBins = 2048;

  ActivationObserver() : ActivationObserver(kDefaultBins) {}
  // num_bins in [16, 2^24]; anything else is an error.
  static Result<ActivationObserver> with_bins(int64_t num_bins);

  // x: [n] (a whole batch may be passed flattened: [n_tokens * d] values).
  void observe(const float* x, int64_t n);
  void observe(std::span<const float> x) { observe(x.data(), static_cast<int64_t>(x.size())); }

  // The amax for `method`. Errors: nothing observed, NaN/Inf observed (with their count),
  // percentile outside (0, 100], start_bin outside [1, num_bins], entropy for an FP8 target.
  // An all-zero tensor gives 0. Every method returns a value <= max_abs().
  //   kMax         the running max |x| (exact; the histogram is not used).
  //   kPercentile  the |x| below which `percentile`% of the values fall, interpolated linearly
  //                inside the histogram bin where the CDF crosses it (within one bin width of
  //                the exact order statistic).
  //   kMse         the candidate threshold t (the bin edges from start_bin up that lie below the
  //                max, then the max) minimising the expected squared error of quantizing the
  //                histogram with the target codec at scale_for_amax(t): the levels are the
  //                codec's own (INT8 codes 0..127, E4M3FN codes 0x00..0x7E, dequantized), values
  //                round to the nearest level and clip at the top one, and the error is
  //                integrated over each bin assuming values uniform inside it. ModelOpt instead
  //                quantizes each bin's centre; with ~10 bins per INT8 step that aliases with
  //                the bin grid and moves the argmin of this flat objective by a few percent.
  //   kEntropy     TensorRT's KL-divergence calibration (INT8 only): for each threshold bin
  //                i >= start_bin, P = hist[0, i) with the counts at and above bin i folded
  //                into bin i - 1, Q = hist[0, i) merged into 128 equal chunks and spread back
  //                evenly over each chunk's non-empty bins; both smoothed (MXNet's eps = 1e-4
  //                on counts); the threshold minimising KL(P || Q) wins, the largest on ties.
  //                Bin 0 takes bin 1's count first, as pytorch-quantization does, so exact
  //                zeros (ReLU, padding) do not dominate. An FP8 target is an error
  //                (kUnsupported): E4M3's grid is logarithmic, not 128 equal bins, and TensorRT
  //                and ModelOpt calibrate FP8 with max.
  Result<float> amax(AmaxMethod method, const AmaxOptions& options = {}) const;

  // Finite values observed.
  int64_t count() const { return count_; }
  // NaN and ±Inf values observed (and skipped).
  int64_t nan_count() const { return nan_count_; }
  int64_t inf_count() const { return inf_count_; }
  // The running max |x| over finite values (0 before any).
  float max_abs() const { return max_abs_; }
  // The histogram: bin b counts |x| in [b, b + 1) * range / num_bins (the last bin also holds
  // |x| == range).
  std::span<const uint64_t> histogram() const { return hist_; }
  double histogram_range() const { return range_; }
  int64_t num_bins() const { return static_cast<int64_t>(hist_.size()); }

 private:
  explicit ActivationObserver(int64_t num_bins) : hist_(static_cast<size_t>(num_bins), 0) {}
  void grow_range(double new_max);

  std::vector<uint64_t> hist_;
  double range_ = 0.0;  // 0 until a nonzero value arrives; all counts are in bin 0 until then
  float max_abs_ = 0.0f;
  int64_t count_ = 0;
  int64_t nan_count_ = 0;
  int64_t inf_count_ = 0;
};

// Per-input-channel statistics of an activation x: [n_rows, cols] (rows = tokens, cols = input
// channels of the next linear layer): running max |x_j| (SmoothQuant) and mean |x_j| (AWQ),
// accumulated in double.
class ChannelAbsStats {
 public:
  ChannelAbsStats() = default;

  // x: [n_rows, cols] row-major; the first call fixes cols. Errors: cols <= 0 or different from
  // earlier calls, n_rows < 0,
  // a NaN/Inf element (named by row and column; nothing from that call is accumulated).
  Status observe(const float* x, int64_t n_rows, int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return static_cast<int64_t>(max_abs_.size()); }
  // [cols]: max over rows of |x[r, j]| (0 before any row).
  const std::vector<float>& max_abs() const { return max_abs_; }
  // [cols]: mean over rows of |x[r, j]| (0 before any row).
  std::vector<float> mean_abs() const;
  // [cols]: sum over rows of |x[r, j]| in double.
  const std::vector<double>& sum_abs() const { return sum_abs_; }

 private:
  std::vector<float> max_abs_;
  std::vector<double> sum_abs_;
  int64_t rows_ = 0;
};

}  // namespace qforge
