// AWQ (Lin et al. 2023, llm-awq auto_scale / auto_clip): the scale grid and its formula, the
// search beating plain RTN on activations with salient channels, the folded model, clipping, and
// input validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/formats/quantize.h"
#include "qforge/quant/awq.h"
#include "qforge/quant/scale_folding.h"

namespace qforge {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal(0.0, stddev));
  return v;
}

// Activations with salient channels: every 64th channel is 10-50x larger (AWQ's observation:
// ~1% of channels carry most of the activation magnitude).
std::vector<float> salient_activations(int64_t n, int64_t cols, uint64_t seed) {
  std::vector<float> x = gaussian(n * cols, seed);
  for (int64_t j = 7, k = 0; j < cols; j += 64, ++k) {
    const float boost = 10.0f + 40.0f * static_cast<float>(k % 5) / 4.0f;  // 10, 20, ..., 50
    for (int64_t t = 0; t < n; ++t) x[t * cols + j] *= boost;
  }
  return x;
}

// y: [n, rows] = x: [n, cols] · wᵀ, double accumulation.
std::vector<float> linear(const std::vector<float>& x, int64_t n, const std::vector<float>& w,
                          int64_t rows, int64_t cols) {
  std::vector<float> y(static_cast<size_t>(n * rows));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t j = 0; j < cols; ++j) acc += double{x[t * cols + j]} * w[r * cols + j];
      y[t * rows + r] = static_cast<float>(acc);
    }
  }
  return y;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double{a[i]} - double{b[i]};
    s += d * d;
  }
  return s / static_cast<double>(a.size());
}

std::vector<float> rtn(const std::vector<float>& w, int64_t rows, int64_t cols,
                       const QuantSpec& spec) {
  auto q = quantize_matrix(w.data(), rows, cols, spec);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  std::vector<float> out(w.size());
  EXPECT_TRUE(dequantize_matrix(*q, out.data()).ok());
  return out;
}

QuantSpec int4_g128() {
  QuantSpec spec;
  spec.format = QuantFormat::INT4_GROUP;
  spec.group_size = 128;
  return spec;
}

constexpr int64_t kTokens = 256;
constexpr int64_t kCols = 512;
constexpr int64_t kRows = 192;

TEST(Awq, ScaleSearchBeatsRtnOnSalientChannels) {
  const std::vector<float> x = salient_activations(kTokens, kCols, 1);
  const std::vector<float> w1 = gaussian(kRows * kCols, 2, 0.05);
  const std::vector<float> w2 = gaussian(kRows * kCols, 3, 0.05);
  const WeightRef refs[] = {{w1.data(), kRows}, {w2.data(), kRows}};
  QuantSpec uint4 = int4_g128();
  uint4.format = QuantFormat::UINT4_GROUP;
  for (const QuantSpec& spec : {int4_g128(), uint4}) {
    auto r = awq_search_scales_linear(x.data(), kTokens, refs, kCols, spec, 20);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_EQ(r->losses.size(), 20u);
    ASSERT_EQ(r->scales.size(), static_cast<size_t>(kCols));
    std::printf("[          ] %s grid losses:", quant_spec_name(spec).c_str());
    for (double l : r->losses) std::printf(" %.3e", l);
    std::printf("\n[          ] %s best ratio %.2f, loss %.4e vs RTN %.4e (%.1f%% lower)\n",
                quant_spec_name(spec).c_str(), r->best_ratio, r->best_loss, r->losses[0],
                100.0 * (1.0 - r->best_loss / r->losses[0]));
    EXPECT_GT(r->best_ratio, 0.0);
    EXPECT_LT(r->best_loss, r->losses[0]);
    EXPECT_EQ(r->best_loss, *std::min_element(r->losses.begin(), r->losses.end()));
    for (double l : r->losses) EXPECT_TRUE(std::isfinite(l) && l > 0.0);

    // Grid point 0 is plain RTN: its loss is the MSE of x · Q(W)ᵀ against x · Wᵀ.
    const std::vector<float> y = linear(x, kTokens, w1, kRows, kCols);
    const std::vector<float> y2 = linear(x, kTokens, w2, kRows, kCols);
    const double rtn_mse =
        0.5 * (mse(y, linear(x, kTokens, rtn(w1, kRows, kCols, spec), kRows, kCols)) +
               mse(y2, linear(x, kTokens, rtn(w2, kRows, kCols, spec), kRows, kCols)));
    EXPECT_NEAR(r->losses[0], rtn_mse, 1e-4 * rtn_mse);
    // The salient channels get the largest scales.
    const auto top = std::max_element(r->scales.begin(), r->scales.end()) - r->scales.begin();
    EXPECT_EQ((top - 7) % 64, 0) << "largest scale on channel " << top;
  }
}

TEST(Awq, SearchCallsLossWithReferenceScales) {
  // act_mean_abs with a dead channel (0 -> clamped to 1e-4 for ratio > 0, 0^0 = 1 at ratio 0).
  const std::vector<float> act = {0.5f, 2.0f, 0.0f, 8.0f};
  std::vector<std::vector<float>> seen;
  const AwqLossFn loss = [&](std::span<const float> s) -> Result<double> {
    seen.emplace_back(s.begin(), s.end());
    return std::fabs(static_cast<double>(seen.size() - 1) - 7.0) + 1.0;  // minimum at point 7
  };
  auto r = awq_search_scales(act, 20, loss);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_EQ(r->best_ratio, 7.0 / 20.0);
  EXPECT_EQ(r->best_loss, 1.0);
  EXPECT_EQ(r->scales, seen[7]);
  EXPECT_EQ(seen[0], std::vector<float>(4, 1.0f));
  for (int i = 1; i < 20; ++i) {
    const double ratio = i / 20.0;
    std::vector<double> s;
    for (float a : act) s.push_back(std::max(std::pow(double{a}, ratio), 1e-4));
    const double norm =
        std::sqrt(*std::max_element(s.begin(), s.end()) * *std::min_element(s.begin(), s.end()));
    for (size_t j = 0; j < act.size(); ++j) {
      EXPECT_NEAR(seen[i][j], s[j] / norm, 1e-6 * s[j] / norm) << "grid " << i << " channel " << j;
    }
  }
  // Ties keep the smaller ratio; non-finite losses are recorded and skipped.
  int calls = 0;
  const AwqLossFn flat = [&](std::span<const float>) -> Result<double> {
    return ++calls == 1 ? std::numeric_limits<double>::quiet_NaN() : 3.0;
  };
  auto t = awq_search_scales(act, 5, flat);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->best_ratio, 0.2);
  EXPECT_TRUE(std::isnan(t->losses[0]));
}

// RMSNorm -> two linears (gate/up-like), AWQ scales folded into the norm: the float model is
// unchanged, and the quantized folded model beats RTN.
// AutoAWQ's duo scaling: w_mean from group-normalised |W|, the grid
// s = (x_mean^r / (w_mean^(1-r) + 1e-4)) normalised, with s = 1 scored first (kOn) or both grids
// (kBoth).
TEST(Awq, DuoScalingGridAndWeightMean) {
  // Two linears of one input, 4 columns, groups of 2.
  const std::vector<float> w1 = {1, -2, 4, 0, 0.5f, 0.5f, -1, 1};  // [2, 4]
  const std::vector<float> w2 = {2, 1, 1, 3};                      // [1, 4]
  const WeightRef refs[] = {{w1.data(), 2}, {w2.data(), 1}};
  auto wm = awq_weight_mean(refs, 4, 2);
  ASSERT_TRUE(wm.ok()) << wm.error().to_string();
  const double e = 1e-6;
  const double expect[4] = {(1 / (2 + e) + 0.5 / (0.5 + e) + 2 / (2 + e)) / 3,
                            (2 / (2 + e) + 0.5 / (0.5 + e) + 1 / (2 + e)) / 3,
                            (4 / (4 + e) + 1 / (1 + e) + 1 / (3 + e)) / 3,
                            (0 / (4 + e) + 1 / (1 + e) + 3 / (3 + e)) / 3};
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(wm.value()[j], expect[j], 1e-6) << j;

  const std::vector<float> x_mean = {0.5f, 2.0f, 1.0f, 4.0f};
  std::vector<std::vector<float>> seen;
  const AwqLossFn loss = [&](std::span<const float> s) -> Result<double> {
    seen.emplace_back(s.begin(), s.end());
    return 1.0 + std::fabs(s[3] - 1.2);  // any deterministic loss
  };
  auto r = awq_search_scales(x_mean, wm.value(), 4, AwqDuoScaling::kOn, loss);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(seen.size(), 5u);
  ASSERT_EQ(r->losses.size(), 5u);
  for (float v : seen[0]) EXPECT_EQ(v, 1.0f);  // plain RTN first
  for (int i = 0; i < 4; ++i) {
    const double ratio = i / 4.0;
    std::vector<double> s(4);
    for (int j = 0; j < 4; ++j) {
      s[j] =
          std::max(std::pow(x_mean[j], ratio) / (std::pow(wm.value()[j], 1 - ratio) + 1e-4), 1e-4);
    }
    const double norm =
        std::sqrt(*std::max_element(s.begin(), s.end()) * *std::min_element(s.begin(), s.end()));
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(seen[1 + i][j], s[j] / norm, 1e-5 * s[j] / norm);
  }
  seen.clear();
  auto both = awq_search_scales(x_mean, wm.value(), 4, AwqDuoScaling::kBoth, loss);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(seen.size(), 8u);
  seen.clear();
  auto off = awq_search_scales(x_mean, {}, 4, AwqDuoScaling::kOff, loss);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(seen.size(), 4u);
  for (float v : seen[0]) EXPECT_EQ(v, 1.0f);  // ratio 0 is s = 1 without duo scaling
  // A weight mean of the wrong size is refused when duo scaling needs it.
  EXPECT_FALSE(awq_search_scales(x_mean, {}, 4, AwqDuoScaling::kOn, loss).ok());
  EXPECT_TRUE(parse_awq_duo_scaling("both").ok());
  EXPECT_FALSE(parse_awq_duo_scaling("yes").ok());
}

TEST(Awq, FoldedLayerBeatsRtn) {
  const std::vector<float> x = gaussian(kTokens * kCols, 41);
  std::vector<float> gamma(kCols, 1.0f);
  for (int64_t j = 7, k = 0; j < kCols; j += 64, ++k) gamma[j] = 10.0f + 10.0f * (k % 5);
  const auto norm = [&](const std::vector<float>& g) {
    std::vector<float> h(x.size());
    for (int64_t t = 0; t < kTokens; ++t) {
      double ss = 0.0;
      for (int64_t j = 0; j < kCols; ++j) ss += double{x[t * kCols + j]} * x[t * kCols + j];
      const auto inv = static_cast<float>(1.0 / std::sqrt(ss / kCols + 1e-6));
      for (int64_t j = 0; j < kCols; ++j) h[t * kCols + j] = x[t * kCols + j] * inv * g[j];
    }
    return h;
  };
  const std::vector<float> h = norm(gamma);
  std::vector<std::vector<float>> w = {gaussian(kRows * kCols, 42, 0.05),
                                       gaussian(kRows * kCols, 43, 0.05)};
  const WeightRef refs[] = {{w[0].data(), kRows}, {w[1].data(), kRows}};
  const QuantSpec spec = int4_g128();
  auto r = awq_search_scales_linear(h.data(), kTokens, refs, kCols, spec);
  ASSERT_TRUE(r.ok()) << r.error().to_string();

  std::vector<float> gamma_folded = gamma;
  ASSERT_TRUE(fold_scales_into_norm(gamma_folded, {}, r->scales).ok());
  const std::vector<float> h_folded = norm(gamma_folded);
  double err_rtn = 0.0;
  double err_awq = 0.0;
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> y = linear(h, kTokens, w[i], kRows, kCols);
    std::vector<float> ws = w[i];
    ASSERT_TRUE(scale_weight_columns(ws.data(), kRows, kCols, r->scales).ok());
    const double float_change = mse(y, linear(h_folded, kTokens, ws, kRows, kCols)) /
                                mse(y, std::vector<float>(y.size(), 0.0f));
    EXPECT_LE(std::sqrt(float_change), 1e-5);
    err_rtn += mse(y, linear(h, kTokens, rtn(w[i], kRows, kCols, spec), kRows, kCols));
    err_awq += mse(y, linear(h_folded, kTokens, rtn(ws, kRows, kCols, spec), kRows, kCols));
  }
  std::printf("[          ] folded int4_g128 layer: output MSE %.4e AWQ (ratio %.2f) vs %.4e RTN\n",
              err_awq / 2, r->best_ratio, err_rtn / 2);
  EXPECT_LT(err_awq, 0.8 * err_rtn);
  // The folded model's error is the search's loss: the same computation, folded differently.
  EXPECT_NEAR(err_awq / 2, r->best_loss, 1e-2 * r->best_loss);
}

TEST(Awq, ClipLowersOutputError) {
  const QuantSpec spec = int4_g128();
  const std::vector<float> x = salient_activations(kTokens, kCols, 51);
  const std::vector<float> w = gaussian(kRows * kCols, 52, 0.05);
  const std::vector<float> y = linear(x, kTokens, w, kRows, kCols);

  // Plain RTN with and without clipping.
  auto clip = awq_search_clip(w.data(), kRows, kCols, x.data(), kTokens, spec);
  ASSERT_TRUE(clip.ok()) << clip.error().to_string();
  ASSERT_EQ(clip->size(), static_cast<size_t>(kRows * kCols / 128));
  std::vector<float> wc = w;
  ASSERT_TRUE(apply_clip(wc.data(), kRows, kCols, 128, *clip).ok());
  const double err_rtn = mse(y, linear(x, kTokens, rtn(w, kRows, kCols, spec), kRows, kCols));
  const double err_clip = mse(y, linear(x, kTokens, rtn(wc, kRows, kCols, spec), kRows, kCols));
  int64_t clipped = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kCols / 128; ++g) {
      float m = 0.0f;
      for (int64_t j = 0; j < 128; ++j) m = std::max(m, std::fabs(w[r * kCols + g * 128 + j]));
      const float c = (*clip)[r * (kCols / 128) + g];
      EXPECT_LE(c, m);
      EXPECT_GE(c, 0.55f * m * (1 - 1e-6f));  // at most 9/20 shrink
      clipped += c < m;
    }
  }
  std::printf("[          ] clip int4_g128: %lld of %lld groups clipped; output MSE %.4e -> %.4e\n",
              static_cast<long long>(clipped), static_cast<long long>(kRows * kCols / 128), err_rtn,
              err_clip);
  EXPECT_GT(clipped, 0);
  EXPECT_LT(err_clip, err_rtn);

  // After AWQ scaling (the pipeline's order): clip the scaled weight against the scaled input.
  const WeightRef refs[] = {{w.data(), kRows}};
  auto s = awq_search_scales_linear(x.data(), kTokens, refs, kCols, spec);
  ASSERT_TRUE(s.ok());
  std::vector<float> ws = w;
  std::vector<float> xs = x;
  ASSERT_TRUE(scale_weight_columns(ws.data(), kRows, kCols, s->scales).ok());
  ASSERT_TRUE(unscale_activation_columns(xs.data(), kTokens, kCols, s->scales).ok());
  const double err_awq = mse(y, linear(xs, kTokens, rtn(ws, kRows, kCols, spec), kRows, kCols));
  auto clip_s = awq_search_clip(ws.data(), kRows, kCols, xs.data(), kTokens, spec);
  ASSERT_TRUE(clip_s.ok());
  ASSERT_TRUE(apply_clip(ws.data(), kRows, kCols, 128, *clip_s).ok());
  const double err_awq_clip =
      mse(y, linear(xs, kTokens, rtn(ws, kRows, kCols, spec), kRows, kCols));
  std::printf(
      "[          ] AWQ scales (ratio %.2f) then clip: output MSE %.4e -> %.4e (RTN %.4e)\n",
      s->best_ratio, err_awq, err_awq_clip, err_rtn);
  EXPECT_LT(err_awq, err_rtn);
  EXPECT_LT(err_awq_clip, err_awq);
}

TEST(Awq, ClipUsesFormatBlocks) {
  EXPECT_EQ(awq_clip_group_size(int4_g128(), 512), 128);
  EXPECT_EQ(awq_clip_group_size(default_quant_spec(QuantFormat::NVFP4), 512), 16);
  EXPECT_EQ(awq_clip_group_size(default_quant_spec(QuantFormat::MXFP4), 512), 32);
  EXPECT_EQ(awq_clip_group_size(default_quant_spec(QuantFormat::INT8_PER_CHANNEL), 512), 512);
  const int64_t rows = 64;
  const int64_t cols = 256 + 40;  // a partial last group
  const std::vector<float> x = salient_activations(kTokens, cols, 61);
  const std::vector<float> w = gaussian(rows * cols, 62, 0.05);
  const std::vector<float> y = linear(x, kTokens, w, rows, cols);
  for (QuantFormat f : {QuantFormat::NVFP4, QuantFormat::MXFP4, QuantFormat::UINT4_GROUP}) {
    QuantSpec spec = default_quant_spec(f);
    if (f == QuantFormat::UINT4_GROUP) spec.group_size = 64;
    const int64_t g = awq_clip_group_size(spec, cols);
    auto clip = awq_search_clip(w.data(), rows, cols, x.data(), kTokens, spec);
    ASSERT_TRUE(clip.ok()) << clip.error().to_string();
    ASSERT_EQ(clip->size(), static_cast<size_t>(rows * ((cols + g - 1) / g)));
    std::vector<float> wc = w;
    ASSERT_TRUE(apply_clip(wc.data(), rows, cols, g, *clip).ok());
    const double err_rtn = mse(y, linear(x, kTokens, rtn(w, rows, cols, spec), rows, cols));
    const double err_clip = mse(y, linear(x, kTokens, rtn(wc, rows, cols, spec), rows, cols));
    std::printf("[          ] clip %s (group %lld): output MSE %.4e -> %.4e\n",
                quant_spec_name(spec).c_str(), static_cast<long long>(g), err_rtn, err_clip);
    EXPECT_LT(err_clip, err_rtn) << quant_spec_name(spec);
  }
}

TEST(Awq, SamplesAtMostMaxTokens) {
  // Only the sampled tokens matter: tokens outside the sample may be anything finite.
  const int64_t rows = 16;
  const int64_t n = 64;
  const std::vector<float> w = gaussian(rows * kCols, 71, 0.05);
  std::vector<float> x = salient_activations(n, kCols, 72);
  auto a = awq_search_clip(w.data(), rows, kCols, x.data(), n, int4_g128(), 20, 0.5, 8);
  ASSERT_TRUE(a.ok());
  for (int64_t t = 0; t < n; ++t) {
    if (t % 8 == 0) continue;  // tokens 0, 8, ..., 56 are the sample
    for (int64_t j = 0; j < kCols; ++j) x[t * kCols + j] = 1e3f;
  }
  auto b = awq_search_clip(w.data(), rows, kCols, x.data(), n, int4_g128(), 20, 0.5, 8);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(Awq, ActMeanAbs) {
  const std::vector<float> x = {1.0f, -2.0f, 0.0f, -3.0f, 4.0f, 0.0f};
  auto m = awq_act_mean_abs(x.data(), 2, 3);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (std::vector<float>{2.0f, 3.0f, 0.0f}));
}

TEST(Awq, RejectsBadInput) {
  const QuantSpec spec = int4_g128();
  const int64_t rows = 4;
  const int64_t cols = 128;
  const std::vector<float> w = gaussian(rows * cols, 81);
  const std::vector<float> x = gaussian(8 * cols, 82);
  const WeightRef refs[] = {{w.data(), rows}};
  const std::vector<float> ones(cols, 1.0f);
  const AwqLossFn zero = [](std::span<const float>) -> Result<double> { return 0.0; };

  // n_grid <= 0.
  EXPECT_FALSE(awq_search_scales(ones, 0, zero).ok());
  EXPECT_FALSE(awq_search_scales(ones, -3, zero).ok());
  EXPECT_FALSE(awq_search_clip(w.data(), rows, cols, x.data(), 8, spec, 0).ok());
  // Non-finite or negative activation statistics; empty ones.
  std::vector<float> bad = ones;
  bad[5] = std::nanf("");
  auto r = awq_search_scales(bad, 20, zero);
  ASSERT_FALSE(r.ok());
  std::printf("[          ] %s\n", r.error().to_string().c_str());
  bad[5] = -1.0f;
  EXPECT_FALSE(awq_search_scales(bad, 20, zero).ok());
  EXPECT_FALSE(awq_search_scales({}, 20, zero).ok());
  EXPECT_FALSE(awq_search_scales(ones, 20, AwqLossFn()).ok());
  // Non-finite activations.
  std::vector<float> xb = x;
  xb[3 * cols + 9] = std::numeric_limits<float>::infinity();
  auto l = awq_linear_loss(xb.data(), 8, refs, cols, spec, ones);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message().find("[3, 9]"), std::string::npos) << l.error().message();
  EXPECT_FALSE(awq_act_mean_abs(xb.data(), 8, cols).ok());
  EXPECT_FALSE(awq_search_scales_linear(xb.data(), 8, refs, cols, spec).ok());
  EXPECT_FALSE(awq_search_clip(w.data(), rows, cols, xb.data(), 8, spec).ok());
  // Mismatched sizes.
  EXPECT_FALSE(awq_linear_loss(x.data(), 8, refs, cols, spec, std::span(ones).first(64)).ok());
  EXPECT_FALSE(awq_fake_quantize_scaled(w.data(), rows, cols, spec, std::span(ones).first(1)).ok());
  EXPECT_FALSE(awq_linear_loss(x.data(), 8, {}, cols, spec, ones).ok());
  std::vector<float> wc = w;
  EXPECT_FALSE(apply_clip(wc.data(), rows, cols, 128, std::vector<float>(rows + 1, 1.0f)).ok());
  EXPECT_FALSE(apply_clip(wc.data(), rows, cols, 0, std::vector<float>(rows, 1.0f)).ok());
  EXPECT_FALSE(apply_clip(wc.data(), rows, cols, 128, std::vector<float>(rows, -1.0f)).ok());
  EXPECT_EQ(wc, w);
  // Bad clip parameters, bad scales.
  EXPECT_FALSE(awq_search_clip(w.data(), rows, cols, x.data(), 8, spec, 20, 1.0).ok());
  EXPECT_FALSE(awq_search_clip(w.data(), rows, cols, x.data(), 8, spec, 20, 0.5, 0).ok());
  std::vector<float> zero_scale = ones;
  zero_scale[0] = 0.0f;
  EXPECT_FALSE(awq_fake_quantize_scaled(w.data(), rows, cols, spec, zero_scale).ok());
  // A failing loss stops the search and keeps its message.
  const AwqLossFn failing = [](std::span<const float>) -> Result<double> {
    return make_error(ErrorCode::kInternal, "block forward failed");
  };
  auto f = awq_search_scales(ones, 20, failing);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().to_string().find("block forward failed"), std::string::npos);
  // A loss that is never finite.
  const AwqLossFn inf = [](std::span<const float>) -> Result<double> {
    return std::numeric_limits<double>::infinity();
  };
  EXPECT_FALSE(awq_search_scales(ones, 4, inf).ok());
}

}  // namespace
}  // namespace qforge
