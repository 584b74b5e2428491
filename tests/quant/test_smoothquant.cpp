// SmoothQuant (Xiao et al. 2022) and the shared scale folding: the scale formula and its guards,
// exact equivalence of the folded float model (norm -> q/k/v, linear -> linear), and lower W8A8
// fake-quantization error on activations with outlier channels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/formats/quantize.h"
#include "qforge/quant/scale_folding.h"
#include "qforge/quant/smoothquant.h"

namespace qforge {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal(0.0, stddev));
  return v;
}

// y: [n, rows] = x: [n, cols] · wᵀ (+ bias), double accumulation.
std::vector<float> linear(const std::vector<float>& x, int64_t n, const std::vector<float>& w,
                          int64_t rows, int64_t cols, const std::vector<float>& bias = {}) {
  std::vector<float> y(static_cast<size_t>(n * rows));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = bias.empty() ? 0.0 : bias[r];
      for (int64_t j = 0; j < cols; ++j) acc += double{x[t * cols + j]} * w[r * cols + j];
      y[t * rows + r] = static_cast<float>(acc);
    }
  }
  return y;
}

// RMSNorm (Llama): y = x / sqrt(mean(x²) + eps) * gamma, x: [n, cols].
std::vector<float> rms_norm(const std::vector<float>& x, int64_t n, int64_t cols,
                            const std::vector<float>& gamma) {
  std::vector<float> y(x.size());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0.0;
    for (int64_t j = 0; j < cols; ++j) ss += double{x[t * cols + j]} * x[t * cols + j];
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + 1e-6));
    for (int64_t j = 0; j < cols; ++j) y[t * cols + j] = x[t * cols + j] * inv * gamma[j];
  }
  return y;
}

double relative_error(const std::vector<float>& ref, const std::vector<float>& got) {
  double err = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double{ref[i]} - double{got[i]};
    err += d * d;
    norm += double{ref[i]} * ref[i];
  }
  return std::sqrt(err / norm);
}

std::vector<float> fake_quantize(const std::vector<float>& m, int64_t rows, int64_t cols,
                                 QuantFormat format) {
  QuantSpec spec;
  spec.format = format;
  auto q = quantize_matrix(m.data(), rows, cols, spec);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  std::vector<float> out(m.size());
  EXPECT_TRUE(dequantize_matrix(*q, out.data()).ok());
  return out;
}

// Max over median of the per-channel maxima: how much the worst channel stretches a per-tensor
// activation scale.
double max_over_median(std::vector<float> amax) {
  std::sort(amax.begin(), amax.end());
  return double{amax.back()} / double{amax[amax.size() / 2]};
}

TEST(SmoothQuant, ScalesMatchFormulaAndGuards) {
  // Channel 0: ordinary; 1: never fires (s = 1); 2: tiny activation (clamped to 1e-5);
  // 3: all-zero weight column (clamped to 1e-5).
  const int64_t cols = 4;
  const std::vector<float> act = {4.0f, 0.0f, 1e-7f, 9.0f};
  const std::vector<float> w1 = {0.5f,  -2.0f, 0.25f, 0.0f,  //
                                 -1.0f, 1.0f,  0.5f,  0.0f};
  const std::vector<float> w2 = {0.25f, 0.5f, -4.0f, 0.0f};
  const WeightRef refs[] = {{w1.data(), 2}, {w2.data(), 1}};
  auto s = smoothquant_scales(act, refs, cols, 0.5f);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_FLOAT_EQ((*s)[0], 2.0f / 1.0f);  // sqrt(4) / sqrt(max(0.5, 1, 0.25))
  EXPECT_EQ((*s)[1], 1.0f);
  EXPECT_FLOAT_EQ((*s)[2], static_cast<float>(std::sqrt(1e-5) / 2.0));  // sqrt(1e-5) / sqrt(4)
  EXPECT_FLOAT_EQ((*s)[3], static_cast<float>(3.0 / std::sqrt(1e-5)));
  // alpha = 1: s = act amax (pure activation migration); alpha = 0: s = 1 / weight amax.
  auto s1 = smoothquant_scales(act, refs, cols, 1.0f);
  ASSERT_TRUE(s1.ok());
  EXPECT_FLOAT_EQ((*s1)[0], 4.0f);
  EXPECT_FLOAT_EQ((*s1)[3], 9.0f);
  auto s0 = smoothquant_scales(act, refs, cols, 0.0f);
  ASSERT_TRUE(s0.ok());
  EXPECT_FLOAT_EQ((*s0)[0], 1.0f);
  EXPECT_FLOAT_EQ((*s0)[2], 0.25f);
}

TEST(SmoothQuant, ActAmaxIsColumnMax) {
  const std::vector<float> x = {1.0f,  -3.0f, 0.0f,  //
                                -2.0f, 0.5f,  0.0f};
  auto a = smoothquant_act_amax(x.data(), 2, 3);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<float>{2.0f, 3.0f, 0.0f}));
  // Large enough to run multi-threaded: equals a serial scan exactly.
  const int64_t n = 700;
  const int64_t cols = 300;
  const std::vector<float> big = gaussian(n * cols, 5);
  auto b = smoothquant_act_amax(big.data(), n, cols);
  ASSERT_TRUE(b.ok());
  for (int64_t j = 0; j < cols; ++j) {
    float m = 0.0f;
    for (int64_t t = 0; t < n; ++t) m = std::max(m, std::fabs(big[t * cols + j]));
    ASSERT_EQ((*b)[j], m) << "channel " << j;
  }
}

// Hidden states with a few outlier channels (x100), as in OPT/Llama residual streams.
std::vector<float> outlier_activations(int64_t n, int64_t cols, uint64_t seed) {
  std::vector<float> x = gaussian(n * cols, seed);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j : {int64_t{3}, cols / 4, cols / 2 + 1, cols - 7}) x[t * cols + j] *= 100.0f;
  }
  return x;
}

TEST(SmoothQuant, NormQkvModelUnchangedAfterFolding) {
  const int64_t n = 64;
  const int64_t cols = 256;
  const int64_t rows[3] = {256, 64, 64};  // q, k, v (grouped-query attention widths)
  const std::vector<float> x = outlier_activations(n, cols, 11);
  std::vector<float> gamma = gaussian(cols, 12, 0.3);
  for (float& g : gamma) g += 1.0f;
  std::vector<std::vector<float>> w;
  for (int i = 0; i < 3; ++i) w.push_back(gaussian(rows[i] * cols, 13 + i, 0.05));

  const std::vector<float> h = rms_norm(x, n, cols, gamma);
  auto amax = smoothquant_act_amax(h.data(), n, cols);
  ASSERT_TRUE(amax.ok());
  const WeightRef refs[] = {{w[0].data(), rows[0]}, {w[1].data(), rows[1]}, {w[2].data(), rows[2]}};
  auto s = smoothquant_scales(*amax, refs, cols, 0.5f);
  ASSERT_TRUE(s.ok()) << s.error().to_string();

  std::vector<float> gamma_folded = gamma;
  ASSERT_TRUE(fold_scales_into_norm(gamma_folded, {}, *s).ok());
  const std::vector<float> h_folded = rms_norm(x, n, cols, gamma_folded);
  double worst = 0.0;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> ws = w[i];
    ASSERT_TRUE(scale_weight_columns(ws.data(), rows[i], cols, *s).ok());
    const double err =
        relative_error(linear(h, n, w[i], rows[i], cols), linear(h_folded, n, ws, rows[i], cols));
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-5) << "projection " << i;
  }
  std::printf("[          ] norm -> q/k/v folded: worst relative output change %.2e\n", worst);
}

TEST(SmoothQuant, LinearPairUnchangedAfterFolding) {
  // h = x · W1ᵀ + b1 (W1: [mid, in]); y = h · W2ᵀ (W2: [out, mid]). Scales act on mid.
  const int64_t n = 64;
  const int64_t in = 128;
  const int64_t mid = 192;
  const int64_t out = 96;
  const std::vector<float> x = gaussian(n * in, 21);
  std::vector<float> w1 = gaussian(mid * in, 22, 0.1);
  for (int64_t j : {int64_t{5}, int64_t{77}}) {
    for (int64_t c = 0; c < in; ++c) w1[j * in + c] *= 40.0f;  // outlier channels of h
  }
  std::vector<float> b1 = gaussian(mid, 23, 0.5);
  const std::vector<float> w2 = gaussian(out * mid, 24, 0.1);

  const std::vector<float> h = linear(x, n, w1, mid, in, b1);
  const std::vector<float> y = linear(h, n, w2, out, mid);
  auto amax = smoothquant_act_amax(h.data(), n, mid);
  ASSERT_TRUE(amax.ok());
  const WeightRef refs[] = {{w2.data(), out}};
  auto s = smoothquant_scales(*amax, refs, mid, 0.5f);
  ASSERT_TRUE(s.ok()) << s.error().to_string();

  std::vector<float> w1f = w1;
  std::vector<float> b1f = b1;
  std::vector<float> w2f = w2;
  ASSERT_TRUE(fold_scales_into_previous_linear(w1f.data(), mid, in, b1f, *s).ok());
  ASSERT_TRUE(scale_weight_columns(w2f.data(), out, mid, *s).ok());
  const std::vector<float> hf = linear(x, n, w1f, mid, in, b1f);
  const double err = relative_error(y, linear(hf, n, w2f, out, mid));
  std::printf("[          ] linear -> linear folded: relative output change %.2e\n", err);
  EXPECT_LE(err, 1e-5);
  // The folded intermediate really is h / s.
  EXPECT_NEAR(hf[5], h[5] / (*s)[5], 1e-5 * std::fabs(h[5] / (*s)[5]));
}

TEST(SmoothQuant, OutlierChannelsW8A8ErrorDrops) {
  const int64_t n = 256;
  const int64_t cols = 512;
  const int64_t rows = 256;
  const std::vector<float> x = outlier_activations(n, cols, 31);
  const std::vector<float> w = gaussian(rows * cols, 32, 0.05);
  const std::vector<float> y = linear(x, n, w, rows, cols);

  // W8A8 without smoothing: INT8 per-tensor activations, INT8 per-channel weights.
  const std::vector<float> y_plain =
      linear(fake_quantize(x, n, cols, QuantFormat::INT8_PER_TENSOR), n,
             fake_quantize(w, rows, cols, QuantFormat::INT8_PER_CHANNEL), rows, cols);

  auto amax = smoothquant_act_amax(x.data(), n, cols);
  ASSERT_TRUE(amax.ok());
  const WeightRef refs[] = {{w.data(), rows}};
  auto s = smoothquant_scales(*amax, refs, cols, 0.5f);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  std::vector<float> xs = x;
  std::vector<float> ws = w;
  ASSERT_TRUE(unscale_activation_columns(xs.data(), n, cols, *s).ok());
  ASSERT_TRUE(scale_weight_columns(ws.data(), rows, cols, *s).ok());
  auto amax_smoothed = smoothquant_act_amax(xs.data(), n, cols);
  ASSERT_TRUE(amax_smoothed.ok());
  const std::vector<float> y_smooth =
      linear(fake_quantize(xs, n, cols, QuantFormat::INT8_PER_TENSOR), n,
             fake_quantize(ws, rows, cols, QuantFormat::INT8_PER_CHANNEL), rows, cols);

  const double ratio_before = max_over_median(*amax);
  const double ratio_after = max_over_median(*amax_smoothed);
  const double err_plain = relative_error(y, y_plain);
  const double err_smooth = relative_error(y, y_smooth);
  std::printf(
      "[          ] activation max/median: %.1f -> %.2f; W8A8 relative output error: "
      "%.3e plain, %.3e smoothed (alpha 0.5)\n",
      ratio_before, ratio_after, err_plain, err_smooth);
  EXPECT_GT(ratio_before, 20.0);
  EXPECT_LT(ratio_after, ratio_before / 5.0);
  EXPECT_LT(err_smooth, err_plain / 2.0);
}

TEST(SmoothQuant, RejectsBadInput) {
  const std::vector<float> w(8, 1.0f);
  const WeightRef refs[] = {{w.data(), 2}};
  const std::vector<float> act = {1.0f, 2.0f, 3.0f, 4.0f};
  // Mismatched sizes.
  EXPECT_FALSE(smoothquant_scales(std::span(act).first(3), refs, 4, 0.5f).ok());
  EXPECT_FALSE(smoothquant_scales(act, refs, 0, 0.5f).ok());
  EXPECT_FALSE(smoothquant_scales(act, {}, 4, 0.5f).ok());
  const WeightRef bad_ref[] = {{nullptr, 2}};
  EXPECT_FALSE(smoothquant_scales(act, bad_ref, 4, 0.5f).ok());
  // alpha outside [0, 1].
  EXPECT_FALSE(smoothquant_scales(act, refs, 4, 1.5f).ok());
  EXPECT_FALSE(smoothquant_scales(act, refs, 4, std::nanf("")).ok());
  // Non-finite or negative activation maxima; non-finite weights.
  std::vector<float> bad_act = act;
  bad_act[2] = std::numeric_limits<float>::infinity();
  auto r = smoothquant_scales(bad_act, refs, 4, 0.5f);
  ASSERT_FALSE(r.ok());
  std::printf("[          ] %s\n", r.error().to_string().c_str());
  bad_act[2] = -1.0f;
  EXPECT_FALSE(smoothquant_scales(bad_act, refs, 4, 0.5f).ok());
  std::vector<float> bad_w = w;
  bad_w[6] = std::nanf("");
  const WeightRef nan_ref[] = {{bad_w.data(), 2}};
  EXPECT_FALSE(smoothquant_scales(act, nan_ref, 4, 0.5f).ok());
  EXPECT_FALSE(smoothquant_act_amax(bad_w.data(), 2, 4).ok());
  EXPECT_FALSE(smoothquant_act_amax(nullptr, 2, 4).ok());
}

TEST(ScaleFolding, ScalesColumnsRowsAndNorm) {
  std::vector<float> w = {1.0f, 2.0f, 3.0f,  //
                          4.0f, 5.0f, 6.0f};
  const std::vector<float> s = {2.0f, 0.5f, 4.0f};
  ASSERT_TRUE(scale_weight_columns(w.data(), 2, 3, s).ok());
  EXPECT_EQ(w, (std::vector<float>{2.0f, 1.0f, 12.0f, 8.0f, 2.5f, 24.0f}));

  std::vector<float> norm = {1.0f, 1.0f, 2.0f};
  std::vector<float> norm_bias = {4.0f, 0.5f, -8.0f};
  ASSERT_TRUE(fold_scales_into_norm(norm, norm_bias, s).ok());
  EXPECT_EQ(norm, (std::vector<float>{0.5f, 2.0f, 0.5f}));
  EXPECT_EQ(norm_bias, (std::vector<float>{2.0f, 1.0f, -2.0f}));

  // Previous linear: 3 output rows (one per scale) of 2 inputs.
  std::vector<float> prev = {2.0f, 4.0f, 1.0f, -1.0f, 8.0f, 4.0f};
  std::vector<float> bias = {6.0f, 1.0f, 4.0f};
  ASSERT_TRUE(fold_scales_into_previous_linear(prev.data(), 3, 2, bias, s).ok());
  EXPECT_EQ(prev, (std::vector<float>{1.0f, 2.0f, 2.0f, -2.0f, 2.0f, 1.0f}));
  EXPECT_EQ(bias, (std::vector<float>{3.0f, 2.0f, 1.0f}));
  ASSERT_TRUE(fold_scales_into_previous_linear(prev.data(), 3, 2, {}, s).ok());

  std::vector<float> x = {2.0f, 1.0f, 8.0f};
  ASSERT_TRUE(unscale_activation_columns(x.data(), 1, 3, s).ok());
  EXPECT_EQ(x, (std::vector<float>{1.0f, 2.0f, 2.0f}));
}

TEST(ScaleFolding, RejectsBadInput) {
  std::vector<float> w(6, 1.0f);
  const std::vector<float> s = {1.0f, 2.0f, 3.0f};
  EXPECT_FALSE(scale_weight_columns(w.data(), 3, 2, s).ok());  // 3 scales, 2 columns
  EXPECT_FALSE(scale_weight_columns(nullptr, 2, 3, s).ok());
  EXPECT_FALSE(scale_weight_columns(w.data(), 0, 3, s).ok());
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::nanf("")}) {
    const std::vector<float> sb = {1.0f, bad, 3.0f};
    auto st = scale_weight_columns(w.data(), 2, 3, sb);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message().find("scale[1]"), std::string::npos) << st.error().message();
  }
  std::vector<float> norm(3, 1.0f);
  std::vector<float> short_bias(2, 0.0f);
  EXPECT_FALSE(fold_scales_into_norm(norm, short_bias, s).ok());
  EXPECT_FALSE(fold_scales_into_norm(std::span(norm).first(2), {}, s).ok());
  std::vector<float> bias(2, 0.0f);
  // Previous linear with 2 rows cannot take 3 scales; a 3-row one cannot take a 2-value bias.
  EXPECT_FALSE(fold_scales_into_previous_linear(w.data(), 2, 3, {}, s).ok());
  EXPECT_FALSE(fold_scales_into_previous_linear(w.data(), 3, 2, bias, s).ok());
  EXPECT_FALSE(unscale_activation_columns(w.data(), 3, 2, s).ok());
  // Nothing was modified by the failed calls.
  EXPECT_EQ(w, std::vector<float>(6, 1.0f));
  EXPECT_EQ(norm, std::vector<float>(3, 1.0f));
}

}  // namespace
}  // namespace qforge
