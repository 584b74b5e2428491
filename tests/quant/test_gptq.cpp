// GPTQ (src/quant/gptq.cpp): lower layer-output error than RTN on correlated inputs, the lazy
// blocked solver equal to the plain OBS oracle, exact qforge layouts (dequantize_matrix gives
// `dequantized` bit for bit; an identity Hessian gives RTN's bytes), dead columns, padding, errors.
#include "qforge/quant/gptq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

QuantSpec int4_spec(int g, ScaleType st = ScaleType::F16) {
  return {.format = QuantFormat::INT4_GROUP, .group_size = g, .scale_type = st};
}
QuantSpec uint4_spec(int g, ScaleType st = ScaleType::F16) {
  return {.format = QuantFormat::UINT4_GROUP, .group_size = g, .scale_type = st};
}
QuantSpec int8_channel_spec() {
  return {.format = QuantFormat::INT8_PER_CHANNEL};
}

// Calibration inputs with correlated features, X = Z·A: [n, cols], Z and A Gaussian, A scaled
// by 1/sqrt(cols), plus per-feature magnitudes spread over ~e^±1 as in real activations.
std::vector<float> correlated_inputs(int64_t n, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> a(static_cast<size_t>(cols * cols));
  for (double& v : a) v = rng.normal() / std::sqrt(static_cast<double>(cols));
  std::vector<double> feature_scale(static_cast<size_t>(cols));
  for (double& s : feature_scale) s = std::exp(0.5 * rng.normal());
  std::vector<double> z(static_cast<size_t>(cols));
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (int64_t i = 0; i < n; ++i) {
    for (double& v : z) v = rng.normal();
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < cols; ++t) acc += z[t] * a[t * cols + j];
      x[i * cols + j] = static_cast<float>(acc * feature_scale[j]);
    }
  }
  return x;
}

std::vector<float> gaussian_weights(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = static_cast<float>(0.02 * rng.normal());
  return w;
}

GptqHessian hessian_of(const std::vector<float>& x, int64_t cols) {
  GptqHessian h(cols);
  h.add(x.data(), static_cast<int64_t>(x.size()) / cols);
  return h;
}

// ||X Wᵀ - X Qᵀ||_F^2 for x: [n, cols], w and q: [rows, cols].
double output_error(const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& q, int64_t rows, int64_t cols) {
  const int64_t n = static_cast<int64_t>(x.size()) / cols;
  std::vector<double> d(w.size());
  for (size_t i = 0; i < w.size(); ++i) d[i] = double{w[i]} - double{q[i]};
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) acc += double{x[i * cols + c]} * d[r * cols + c];
      total += acc * acc;
    }
  }
  return total;
}

// 1/2 sum_r δ_r (H + percdamp * mean(diag H) * I) δ_rᵀ for δ = W - Q: [rows, cols].
double dampened_quadratic_form(const GptqHessian& h, const std::vector<float>& w,
                               const std::vector<float>& q, int64_t rows, double percdamp) {
  const int64_t cols = h.cols();
  const std::vector<double>& m = h.matrix();
  double mean_diag = 0;
  for (int64_t i = 0; i < cols; ++i) mean_diag += m[i * cols + i];
  const double damp = percdamp * mean_diag / static_cast<double>(cols);
  double total = 0;
  std::vector<double> d(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) d[c] = double{w[r * cols + c]} - double{q[r * cols + c]};
    for (int64_t i = 0; i < cols; ++i) {
      double acc = damp * d[i];
      for (int64_t j = 0; j < cols; ++j) acc += m[i * cols + j] * d[j];
      total += d[i] * acc;
    }
  }
  return total / 2;
}

std::vector<float> rtn(const std::vector<float>& w, int64_t rows, int64_t cols,
                       const QuantSpec& spec) {
  auto q = quantize_matrix(w.data(), rows, cols, spec);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  if (!q.ok()) return {};
  std::vector<float> out(static_cast<size_t>(rows * cols));
  EXPECT_TRUE(dequantize_matrix(*q, out.data()).ok());
  return out;
}

// result.dequantized is exactly what dequantize_matrix (and its scalar oracle) reads back.
void expect_dequantize_exact(const GptqResult& r, const std::string& what) {
  const QuantizedMatrix& q = r.quantized;
  ASSERT_EQ(r.dequantized.size(), static_cast<size_t>(q.rows * q.cols)) << what;
  std::vector<float> out(r.dequantized.size() + 1, 12345.0f);
  std::vector<float> out_ref(r.dequantized.size());
  ASSERT_TRUE(dequantize_matrix(q, out.data()).ok()) << what;
  ASSERT_TRUE(dequantize_matrix_ref(q, out_ref.data()).ok()) << what;
  EXPECT_EQ(out.back(), 12345.0f) << what << ": dequantize wrote past rows * cols";
  out.pop_back();
  EXPECT_EQ(std::memcmp(out.data(), r.dequantized.data(), out.size() * sizeof(float)), 0) << what;
  EXPECT_EQ(std::memcmp(out_ref.data(), r.dequantized.data(), out.size() * sizeof(float)), 0)
      << what;
}

// Layout fields, sizes and storage match what quantize_matrix produces for the same shape.
void expect_layout_like_rtn(const QuantizedMatrix& q, const QuantSpec& spec, int64_t rows,
                            int64_t cols) {
  const std::vector<float> zeros(static_cast<size_t>(rows * cols), 0.0f);
  auto ref = quantize_matrix(zeros.data(), rows, cols, spec);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(q.rows, ref->rows);
  EXPECT_EQ(q.cols, ref->cols);
  EXPECT_EQ(q.padded_cols, ref->padded_cols);
  EXPECT_EQ(q.row_bytes, ref->row_bytes);
  EXPECT_EQ(q.data.size(), ref->data.size());
  EXPECT_EQ(q.scales.size(), ref->scales.size());
  EXPECT_EQ(q.storage_bytes(), quantized_bytes(spec, rows, cols));
}

// The blocked solver and the OBS oracle agree: same codes and scales, dequantized values and
// losses equal up to FP64 rounding.
void expect_same_result(const GptqResult& a, const GptqResult& b, const std::string& what) {
  EXPECT_EQ(a.quantized.data, b.quantized.data) << what << ": codes or block scales differ";
  EXPECT_EQ(a.quantized.scales, b.quantized.scales) << what;
  ASSERT_EQ(a.dequantized.size(), b.dequantized.size());
  for (size_t i = 0; i < a.dequantized.size(); ++i) {
    ASSERT_NEAR(a.dequantized[i], b.dequantized[i], 1e-5 * std::fabs(b.dequantized[i]))
        << what << " element " << i;
  }
  EXPECT_NEAR(a.error, b.error, 1e-9 * b.error) << what;
}

constexpr int64_t kRows = 64;
constexpr int64_t kCols = 256;
constexpr int64_t kSamples = 768;

TEST(GptqTest, BeatsRtnOnCorrelatedInputs) {
  const std::vector<float> x = correlated_inputs(kSamples, kCols, 11);
  const std::vector<float> w = gaussian_weights(kRows, kCols, 12);
  const GptqHessian h = hessian_of(x, kCols);
  struct Case {
    QuantSpec spec;
    double max_ratio;            // GPTQ / RTN output error must stay below this
    double max_ratio_act_order;  // the same with act_order
  };
  // Measured (seeded): about 0.53 in natural column order and 0.21 with act_order for every
  // format (the features' magnitudes spread over ~e^±1, so their order matters).
  const Case cases[] = {{int4_spec(32), 0.65, 0.3},
                        {int4_spec(128), 0.65, 0.3},
                        {uint4_spec(128), 0.65, 0.3},
                        {int8_channel_spec(), 0.65, 0.3}};
  for (const Case& c : cases) {
    const std::string name = quant_spec_name(c.spec);
    const double rtn_err = output_error(x, w, rtn(w, kRows, kCols, c.spec), kRows, kCols);
    for (bool act_order : {false, true}) {
      auto r = gptq_quantize(w.data(), kRows, kCols, h, c.spec, {.act_order = act_order});
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      const double gptq_err = output_error(x, w, r->dequantized, kRows, kCols);
      const double ratio = gptq_err / rtn_err;
      std::printf("[          ] %-18s act_order=%d  ||XWᵀ-XQᵀ||² RTN %.4e  GPTQ %.4e  ratio %.3f\n",
                  name.c_str(), act_order, rtn_err, gptq_err, ratio);
      EXPECT_LT(ratio, act_order ? c.max_ratio_act_order : c.max_ratio)
          << name << " act_order=" << act_order;
      // The OBS losses add up to the final value of the objective, 1/2 sum_r δ_r H' δ_rᵀ with
      // δ = W - Q and H' = H + percdamp * mean(diag H) * I (the dampened Hessian).
      const double quadratic = dampened_quadratic_form(h, w, r->dequantized, kRows, 0.01);
      EXPECT_NEAR(r->error, quadratic, 1e-9 * quadratic) << name;
      expect_dequantize_exact(*r, name);
    }
  }
}

TEST(GptqTest, BlockedEqualsReferenceOracle) {
  const std::vector<float> x = correlated_inputs(512, 192, 21);
  const std::vector<float> w = gaussian_weights(48, 192, 22);
  const GptqHessian h = hessian_of(x, 192);
  // block_size 48 does not divide the group sizes 32 / 64: groups straddle batch boundaries, so
  // their scales need the pending batch updates; 32 and 128 exercise aligned batches.
  const QuantSpec specs[] = {int4_spec(32), int4_spec(64, ScaleType::BF16), uint4_spec(64),
                             uint4_spec(32, ScaleType::BF16), int8_channel_spec()};
  for (const QuantSpec& spec : specs) {
    for (bool act_order : {false, true}) {
      auto ref = gptq_quantize_ref(w.data(), 48, 192, h, spec, {.act_order = act_order});
      ASSERT_TRUE(ref.ok()) << ref.error().to_string();
      expect_dequantize_exact(*ref, "ref");
      for (int64_t block : {int64_t{32}, int64_t{48}, int64_t{128}}) {
        const std::string what = quant_spec_name(spec) + " act_order=" + std::to_string(act_order) +
                                 " block=" + std::to_string(block);
        auto r = gptq_quantize(w.data(), 48, 192, h, spec,
                               {.act_order = act_order, .block_size = block});
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        expect_same_result(*r, *ref, what);
        expect_dequantize_exact(*r, what);
        expect_layout_like_rtn(r->quantized, spec, 48, 192);
      }
    }
  }
}

TEST(GptqTest, IdentityHessianGivesRtnBytes) {
  // With H = I the inverse is diagonal: no error is propagated and every scale is taken from
  // the original weights, so GPTQ must reproduce quantize_matrix byte for byte.
  const int64_t rows = 24;
  for (int64_t cols : {int64_t{256}, int64_t{200}}) {
    std::vector<double> eye(static_cast<size_t>(cols * cols), 0.0);
    for (int64_t i = 0; i < cols; ++i) eye[i * cols + i] = 1.0;
    auto h = GptqHessian::from_matrix(cols, eye, 1);
    ASSERT_TRUE(h.ok());
    const std::vector<float> w = gaussian_weights(rows, cols, 31);
    for (const QuantSpec& spec :
         {int4_spec(32), int4_spec(128, ScaleType::BF16), uint4_spec(64), int8_channel_spec()}) {
      auto ref = quantize_matrix(w.data(), rows, cols, spec);
      ASSERT_TRUE(ref.ok());
      for (bool act_order : {false, true}) {
        auto r = gptq_quantize(w.data(), rows, cols, *h, spec,
                               {.act_order = act_order, .block_size = 48, .scale_search_grid = 0});
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        EXPECT_EQ(r->quantized.data, ref->data) << quant_spec_name(spec) << " cols=" << cols;
        EXPECT_EQ(r->quantized.scales, ref->scales) << quant_spec_name(spec);
        EXPECT_EQ(r->quantized.padded_cols, ref->padded_cols);
      }
    }
  }
}

// With a diagonal Hessian nothing propagates, so every group is exactly the scale search's
// choice: the shrink factor 1 - 0.5 i / grid (i = 0..grid) whose codes give the least
// sum_j H[j, j] (w_j - q_j)^2, found here by brute force through the RTN codecs.
TEST(GptqTest, ScaleSearchPicksTheHessianWeightedBestShrink) {
  const int64_t rows = 16, cols = 96;
  std::vector<double> diag_h(static_cast<size_t>(cols * cols), 0.0);
  SplitMix64 rng(77);
  std::vector<double> d(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) {
    d[i] = 0.05 + 4.0 * static_cast<double>(rng.next() % 1000) / 1000.0;
    diag_h[i * cols + i] = d[i];
  }
  auto h = GptqHessian::from_matrix(cols, diag_h, 1);
  ASSERT_TRUE(h.ok());
  const std::vector<float> w = gaussian_weights(rows, cols, 78);
  const int grid = 20;
  for (const QuantSpec& spec : {int4_spec(32), int8_channel_spec()}) {
    const bool int4 = spec.format == QuantFormat::INT4_GROUP;
    const int64_t g = int4 ? 32 : cols;
    auto r = gptq_quantize(w.data(), rows, cols, *h, spec,
                           {.percdamp = 0.0, .act_order = true, .scale_search_grid = grid});
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    expect_dequantize_exact(*r, quant_spec_name(spec));
    int64_t shrunk = 0;
    for (int64_t row = 0; row < rows; ++row) {
      for (int64_t c0 = 0; c0 < cols; c0 += g) {
        float amax = 0;
        for (int64_t j = c0; j < c0 + g; ++j) amax = std::max(amax, std::fabs(w[row * cols + j]));
        double best = INFINITY, at_amax = 0;
        for (int i = 0; i <= grid; ++i) {
          const auto f = static_cast<float>(1.0 - 0.5 * i / grid);
          const float scale =
              int4 ? f16_to_float(float_to_f16(amax * f / 7.0f)) : amax * f / 127.0f;
          double err = 0;
          for (int64_t j = 0; j < g; ++j) {
            const float x = w[row * cols + c0 + j];
            const float q = int4 ? dequantize_int(quantize_int4(x, scale), scale)
                                 : dequantize_int(quantize_int8(x, scale), scale);
            err += d[c0 + j] * (x - q) * (x - q);
          }
          if (i == 0) at_amax = err;
          best = std::min(best, err);
        }
        double got = 0;
        for (int64_t j = 0; j < g; ++j) {
          const double e = w[row * cols + c0 + j] - r->dequantized[row * cols + c0 + j];
          got += d[c0 + j] * e * e;
        }
        // The implementation ranks in float: equal to the best up to that rounding.
        EXPECT_LE(got, best * (1 + 1e-5) + 1e-12)
            << quant_spec_name(spec) << " row " << row << " group at " << c0;
        if (got < at_amax * (1 - 1e-6)) ++shrunk;
      }
    }
    std::printf("[          ] %-18s %lld of %lld groups shrunk\n", quant_spec_name(spec).c_str(),
                static_cast<long long>(shrunk), static_cast<long long>(rows * (cols / g)));
    // INT8's 2.5% grid steps are 3 codes wide: a shrink costs more than it saves, so only the
    // INT4 groups must show the search at work.
    if (int4) EXPECT_GT(shrunk, 0) << "the search never shrank a range: nothing was tested";
  }
}

// The search lowers GPTQ's own objective and the output error against the amax recipe.
TEST(GptqTest, ScaleSearchBeatsAmaxScales) {
  const std::vector<float> x = correlated_inputs(kSamples, kCols, 81);
  const std::vector<float> w = gaussian_weights(kRows, kCols, 82);
  const GptqHessian h = hessian_of(x, kCols);
  for (const QuantSpec& spec : {int4_spec(128), uint4_spec(64), int4_spec(32)}) {
    auto plain = gptq_quantize(w.data(), kRows, kCols, h, spec, {.scale_search_grid = 0});
    auto searched = gptq_quantize(w.data(), kRows, kCols, h, spec);
    ASSERT_TRUE(plain.ok() && searched.ok());
    const double e0 = output_error(x, w, plain->dequantized, kRows, kCols);
    const double e1 = output_error(x, w, searched->dequantized, kRows, kCols);
    std::printf("[          ] %-18s output error amax %.4e  searched %.4e  ratio %.3f\n",
                quant_spec_name(spec).c_str(), e0, e1, e1 / e0);
    // INT4 (symmetric): the search must win. UINT4: the diagonal weighting ignores the
    // cross terms GPTQ then compensates, and measured 1.031x here: it must stay within 5 %.
    if (spec.format == QuantFormat::INT4_GROUP) {
      EXPECT_LT(e1, e0) << quant_spec_name(spec);
    } else {
      EXPECT_LT(e1, 1.05 * e0) << quant_spec_name(spec);
    }
    expect_dequantize_exact(*searched, quant_spec_name(spec));
    expect_layout_like_rtn(searched->quantized, spec, kRows, kCols);
  }
}

TEST(GptqTest, DeadColumnsAreZeroed) {
  std::vector<float> x = correlated_inputs(512, 128, 41);
  const std::vector<int64_t> dead = {0, 7, 64, 127};
  for (int64_t i = 0; i < 512; ++i) {
    for (int64_t c : dead) x[i * 128 + c] = 0.0f;
  }
  const std::vector<float> w = gaussian_weights(32, 128, 42);
  const GptqHessian h = hessian_of(x, 128);
  for (const QuantSpec& spec : {int4_spec(32), uint4_spec(32), int8_channel_spec()}) {
    for (bool act_order : {false, true}) {
      const std::string what = quant_spec_name(spec) + " act_order=" + std::to_string(act_order);
      auto r =
          gptq_quantize(w.data(), 32, 128, h, spec, {.act_order = act_order, .block_size = 48});
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      for (int64_t row = 0; row < 32; ++row) {
        for (int64_t c : dead) EXPECT_EQ(r->dequantized[row * 128 + c], 0.0f) << what;
      }
      expect_dequantize_exact(*r, what);
      auto ref = gptq_quantize_ref(w.data(), 32, 128, h, spec, {.act_order = act_order});
      ASSERT_TRUE(ref.ok());
      expect_same_result(*r, *ref, what);
      // Dead inputs never contribute to the output, so GPTQ still beats RTN there.
      EXPECT_LT(output_error(x, w, r->dequantized, 32, 128),
                output_error(x, w, rtn(w, 32, 128, spec), 32, 128))
          << what;
    }
  }
}

TEST(GptqTest, PaddedLastGroup) {
  // cols = 200 = 3 groups of 64 + 8: the last group holds 56 padding zeros.
  const int64_t rows = 32;
  const int64_t cols = 200;
  const std::vector<float> x = correlated_inputs(400, cols, 51);
  const std::vector<float> w = gaussian_weights(rows, cols, 52);
  const GptqHessian h = hessian_of(x, cols);
  for (const QuantSpec& spec : {int4_spec(64), uint4_spec(64, ScaleType::BF16)}) {
    for (bool act_order : {false, true}) {
      const std::string what = quant_spec_name(spec) + " act_order=" + std::to_string(act_order);
      auto r = gptq_quantize(w.data(), rows, cols, h, spec, {.act_order = act_order});
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      const QuantizedMatrix& q = r->quantized;
      expect_layout_like_rtn(q, spec, rows, cols);
      EXPECT_EQ(q.padded_cols, 256);
      expect_dequantize_exact(*r, what);
      // Padding codes: 0 for INT4, the group's zero point for UINT4 (both dequantize to 0).
      const bool uint4 = spec.format == QuantFormat::UINT4_GROUP;
      const int64_t block_bytes = uint4 ? uint4_block_bytes(64) : int4_block_bytes(64);
      for (int64_t row = 0; row < rows; ++row) {
        const uint8_t* block = q.row_data(row) + 3 * block_bytes;
        const uint8_t* qs = block + (uint4 ? 4 : 2);
        const int expected = uint4 ? block[2] : 0;
        if (uint4) {
          EXPECT_EQ(block[3], 0) << "reserved byte";
        }
        for (int64_t i = cols - 192; i < 64; ++i) {
          const int code = (i & 1) ? qs[i / 2] >> 4 : qs[i / 2] & 0xF;
          ASSERT_EQ(code, expected) << what << " row " << row << " padding element " << i;
        }
      }
      auto ref = gptq_quantize_ref(w.data(), rows, cols, h, spec, {.act_order = act_order});
      ASSERT_TRUE(ref.ok());
      expect_same_result(*r, *ref, what);
      EXPECT_LT(output_error(x, w, r->dequantized, rows, cols),
                output_error(x, w, rtn(w, rows, cols, spec), rows, cols))
          << what;
    }
  }
}

TEST(GptqTest, HessianIsTheRunningMeanOfTwoXxT) {
  const int64_t cols = 48;
  const std::vector<float> x = correlated_inputs(301, cols, 61);
  GptqHessian h(cols);
  h.add(x.data(), 100);
  h.add(x.data() + 100 * cols, 0);
  h.add(x.data() + 100 * cols, 200);
  h.add(x.data() + 300 * cols, 1);
  EXPECT_EQ(h.n_samples(), 301);
  double max_abs = 0;
  double max_diff = 0;
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0;
      for (int64_t n = 0; n < 301; ++n) acc += double{x[n * cols + i]} * double{x[n * cols + j]};
      const double expected = 2.0 / 301.0 * acc;
      max_abs = std::max(max_abs, std::fabs(expected));
      max_diff = std::max(max_diff, std::fabs(h.matrix()[i * cols + j] - expected));
      EXPECT_EQ(h.matrix()[i * cols + j], h.matrix()[j * cols + i]) << "not symmetric";
    }
  }
  EXPECT_LT(max_diff, 1e-12 * max_abs);
}

TEST(GptqTest, Errors) {
  const int64_t rows = 8;
  const int64_t cols = 64;
  const std::vector<float> x = correlated_inputs(128, cols, 71);
  std::vector<float> w = gaussian_weights(rows, cols, 72);
  const GptqHessian h = hessian_of(x, cols);

  for (QuantFormat f : {QuantFormat::NVFP4, QuantFormat::FP8_PER_TENSOR, QuantFormat::F16,
                        QuantFormat::INT8_PER_TENSOR}) {
    auto r = gptq_quantize(w.data(), rows, cols, h, default_quant_spec(f));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
    EXPECT_NE(r.error().message().find(quant_format_info(f).name), std::string::npos)
        << r.error().message();
    EXPECT_FALSE(gptq_quantize_ref(w.data(), rows, cols, h, default_quant_spec(f)).ok());
  }

  const GptqHessian wrong = hessian_of(correlated_inputs(64, 32, 73), 32);
  auto mismatch = gptq_quantize(w.data(), rows, cols, wrong, int4_spec(32));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(mismatch.error().message().find("[32, 32]"), std::string::npos)
      << mismatch.error().message();

  auto empty = gptq_quantize(w.data(), rows, cols, GptqHessian(cols), int4_spec(32));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("no calibration rows"), std::string::npos);

  w[3 * cols + 5] = std::numeric_limits<float>::quiet_NaN();
  for (bool ref : {false, true}) {
    auto r = ref ? gptq_quantize_ref(w.data(), rows, cols, h, uint4_spec(32))
                 : gptq_quantize(w.data(), rows, cols, h, uint4_spec(32));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("row 3, col 5"), std::string::npos) << r.error().message();
  }
  w[3 * cols + 5] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(gptq_quantize(w.data(), rows, cols, h, int8_channel_spec()).ok());
  w[3 * cols + 5] = 0.01f;

  // An indefinite "Hessian" (from elsewhere) with no dampening: a clear error, never garbage.
  std::vector<double> indefinite(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i) indefinite[i * cols + i] = 1.0;
  indefinite[1] = indefinite[cols] = 2.0;  // [[1, 2], [2, 1]] block: eigenvalue -1
  auto bad_h = GptqHessian::from_matrix(cols, indefinite, 10);
  ASSERT_TRUE(bad_h.ok());
  for (bool ref : {false, true}) {
    const GptqOptions no_damp{.percdamp = 0.0};
    auto r = ref ? gptq_quantize_ref(w.data(), rows, cols, *bad_h, int4_spec(32), no_damp)
                 : gptq_quantize(w.data(), rows, cols, *bad_h, int4_spec(32), no_damp);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("not positive definite"), std::string::npos);
    EXPECT_NE(r.error().message().find("percdamp"), std::string::npos) << r.error().message();
  }

  EXPECT_FALSE(gptq_quantize(w.data(), rows, cols, h, int4_spec(32), {.percdamp = -1.0}).ok());
  EXPECT_FALSE(gptq_quantize(w.data(), rows, cols, h, int4_spec(32), {.block_size = 0}).ok());
  EXPECT_FALSE(gptq_quantize(nullptr, rows, cols, h, int4_spec(32)).ok());
  EXPECT_FALSE(gptq_quantize(w.data(), 0, cols, h, int4_spec(32)).ok());
  EXPECT_FALSE(gptq_quantize(w.data(), rows, cols, h, int4_spec(48)).ok());
  EXPECT_FALSE(GptqHessian::from_matrix(cols, std::vector<double>(10), 1).ok());
}

}  // namespace
}  // namespace qforge
