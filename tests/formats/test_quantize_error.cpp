// Round-trip quality of every format: quantize -> dequantize error on Gaussian and heavy-tailed
// weights stays inside a named per-format budget (and is not suspiciously small); padded groups
// keep that quality, and padding never reaches the output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace {

// Relative RMS error budgets, sqrt(sum (x - x')^2 / sum x^2), measured on [256, 1024] matrices
// (seeded; the measured values are tabulated in docs/FORMATS.md) and set at about 1.25x the
// measurement: a broken recipe (wrong rounding, a scale off by one exponent) moves the error by
// far more than the margin, and an error below budget / 4 means the format is not quantizing.
struct Budget {
  QuantFormat format;
  double gaussian;  // N(0, 1)
  double heavy;     // Student-t nu = 3, three columns x50
};
// clang-format off
constexpr Budget kBudgets[] = {
    // format                    gaussian  heavy
    {QuantFormat::F32,              0.0,     0.0},
    {QuantFormat::F16,              2.6e-4,  2.6e-4},   // 2^-11 relative rounding
    {QuantFormat::BF16,             2.1e-3,  2.1e-3},   // 2^-8
    {QuantFormat::INT8_PER_TENSOR,  1.35e-2, 0.31},     // outliers set the one scale
    {QuantFormat::INT8_PER_CHANNEL, 1.0e-2,  7.2e-2},
    {QuantFormat::INT8_PER_TOKEN,   1.0e-2,  7.2e-2},
    {QuantFormat::INT4_GROUP,       0.147,   0.195},    // g128, F16 scale
    {QuantFormat::UINT4_GROUP,      0.126,   0.153},    // g128, F16 scale + zero point
    {QuantFormat::FP8_PER_TENSOR,   3.3e-2,  3.0e-2},   // E4M3FN: 3 mantissa bits
    {QuantFormat::FP8_PER_CHANNEL,  3.3e-2,  1.8e-2},
    {QuantFormat::FP8_BLOCK128,     3.3e-2,  3.1e-2},
    {QuantFormat::NVFP4,            0.119,   6.9e-2},   // E2M1 x16, E4M3 block scale
    {QuantFormat::MXFP4,            0.144,   0.195},    // E2M1 x32, power-of-two scale
    {QuantFormat::MXFP8,            3.7e-2,  5.6e-2},
};
// clang-format on

const Budget& budget_for(QuantFormat f) {
  for (const Budget& b : kBudgets) {
    if (b.format == f) return b;
  }
  ADD_FAILURE() << "no budget for format " << quant_format_info(f).name;
  return kBudgets[0];
}

constexpr int64_t kRows = 256;
constexpr int64_t kCols = 1024;

std::vector<float> gaussian_weights(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = static_cast<float>(rng.normal());
  return x;
}

// Student-t (nu = 3) weights with three input channels (columns) scaled x50, the outlier
// pattern of real LLM projections.
std::vector<float> heavy_tailed_weights(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = static_cast<float>(0.02 * rng.student_t(3.0));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c : {int64_t{5}, cols / 3, cols - 2}) x[r * cols + c] *= 50.0f;
  }
  return x;
}

double relative_rms_error(const float* x, const float* y, int64_t n) {
  double err = 0;
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double{x[i]} - double{y[i]};
    err += d * d;
    ref += double{x[i]} * double{x[i]};
  }
  return std::sqrt(err / ref);
}

// Quantizes and dequantizes; checks that exactly rows*cols values come back.
std::vector<float> round_trip(const std::vector<float>& x, int64_t rows, int64_t cols,
                              const QuantSpec& spec) {
  auto q = quantize_matrix(x.data(), rows, cols, spec);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  if (!q.ok()) return {};
  // One canary value past the end: dequantize must write exactly rows * cols floats.
  std::vector<float> out(static_cast<size_t>(rows * cols) + 1, 12345.0f);
  EXPECT_TRUE(dequantize_matrix(*q, out.data()).ok());
  EXPECT_EQ(out.back(), 12345.0f) << quant_spec_name(spec) << ": wrote past rows * cols";
  out.pop_back();
  return out;
}

void expect_within_budget(double err, double budget, QuantFormat f, const std::string& what) {
  std::printf("[          ] %-18s %-9s relative RMS error %.3e (budget %.1e)\n",
              quant_format_info(f).name, what.c_str(), err, budget);
  EXPECT_LE(err, budget) << quant_format_info(f).name << " on " << what;
  if (f == QuantFormat::F32) {
    EXPECT_EQ(err, 0.0);
  } else {
    // Sanity: far less error than the format can deliver means it is not really quantizing.
    EXPECT_GT(err, budget / 4) << quant_format_info(f).name << " on " << what;
  }
}

TEST(QuantizeError, GaussianWithinBudget) {
  const std::vector<float> x = gaussian_weights(kRows, kCols, 1234);
  for (QuantFormat f : all_quant_formats()) {
    const QuantSpec spec = default_quant_spec(f);
    const std::vector<float> y = round_trip(x, kRows, kCols, spec);
    ASSERT_EQ(y.size(), x.size());
    expect_within_budget(relative_rms_error(x.data(), y.data(), kRows * kCols),
                         budget_for(f).gaussian, f, "gaussian");
  }
}

TEST(QuantizeError, HeavyTailedWithinBudget) {
  const std::vector<float> x = heavy_tailed_weights(kRows, kCols, 4321);
  for (QuantFormat f : all_quant_formats()) {
    const QuantSpec spec = default_quant_spec(f);
    const std::vector<float> y = round_trip(x, kRows, kCols, spec);
    ASSERT_EQ(y.size(), x.size());
    expect_within_budget(relative_rms_error(x.data(), y.data(), kRows * kCols), budget_for(f).heavy,
                         f, "heavy");
  }
}

TEST(QuantizeError, PaddedGroupsKeepQualityAndNeverLeak) {
  // cols = 8 whole groups of 128 plus 37: the last group of each row is padded.
  const int64_t rows = 96;
  const int64_t cols = 8 * 128 + 37;
  const std::vector<float> x = gaussian_weights(rows, cols, 77);
  for (QuantFormat f : all_quant_formats()) {
    const QuantSpec spec = default_quant_spec(f);
    auto q = quantize_matrix(x.data(), rows, cols, spec);
    ASSERT_TRUE(q.ok()) << q.error().to_string();
    EXPECT_EQ(q->cols, cols);
    EXPECT_EQ(q->storage_bytes(), quantized_bytes(spec, rows, cols)) << quant_spec_name(spec);
    const std::vector<float> y = round_trip(x, rows, cols, spec);
    ASSERT_EQ(y.size(), x.size());
    // Error over the elements of the partial last groups only.
    std::vector<float> xt;
    std::vector<float> yt;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 8 * 128; c < cols; ++c) {
        xt.push_back(x[r * cols + c]);
        yt.push_back(y[r * cols + c]);
      }
    }
    expect_within_budget(relative_rms_error(xt.data(), yt.data(), static_cast<int64_t>(xt.size())),
                         budget_for(f).gaussian, f, "tail");

    // The padded blocks are exactly the blocks of the same rows explicitly padded with zeros.
    if (q->padded_cols == cols) continue;
    const int64_t pc = q->padded_cols;
    std::vector<float> xp(static_cast<size_t>(rows * pc), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(x.begin() + r * cols, x.begin() + (r + 1) * cols, xp.begin() + r * pc);
    }
    auto qp = quantize_matrix(xp.data(), rows, pc, spec);
    ASSERT_TRUE(qp.ok());
    EXPECT_EQ(qp->data, q->data) << quant_spec_name(spec);
  }
}

TEST(QuantizeError, SingleColumnAndTinyRows) {
  // cols = 1: one value per row, the rest of each group is padding.
  const std::vector<float> x = {0.5f, -3.0f, 100.0f};
  for (QuantFormat f : all_quant_formats()) {
    const std::vector<float> y = round_trip(x, 3, 1, default_quant_spec(f));
    ASSERT_EQ(y.size(), 3u) << quant_format_info(f).name;
    for (size_t i = 0; i < 3; ++i) {
      // Every format represents a lone value (its own group's amax) to within 13%, except the
      // per-tensor ones where 0.5 shares a scale with 100 (INT8: step 100/127).
      const double tol = (f == QuantFormat::INT8_PER_TENSOR) ? 0.4 : 0.13 * std::fabs(x[i]);
      EXPECT_NEAR(y[i], x[i], tol) << quant_format_info(f).name << " x[" << i << "]";
    }
  }
}

TEST(QuantizeError, AllZeroMatrixGivesZeros) {
  const std::vector<float> x(5 * 40, 0.0f);
  for (QuantFormat f : all_quant_formats()) {
    auto q = quantize_matrix(x.data(), 5, 40, default_quant_spec(f));
    ASSERT_TRUE(q.ok()) << q.error().to_string();
    std::vector<float> y(x.size(), 1.0f);
    ASSERT_TRUE(dequantize_matrix(*q, y.data()).ok());
    for (float v : y) ASSERT_EQ(v, 0.0f) << quant_format_info(f).name;
  }
}

}  // namespace
}  // namespace qforge
