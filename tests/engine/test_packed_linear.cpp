// Packed linear layers (engine/packed_linear.h): for every QuantAlgo the quantizer emits, the
// packed kernels against the fake-quant oracle (model/quantized_linear.h) on quantize_matrix
// output of random data; row determinism across m and thread counts; JSON round trips; hostile
// blobs and JSON.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/packed_linear_json.h"
#include "hwy/aligned_allocator.h"
#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/engine/packed_linear.h"
#include "qforge/formats/quantize.h"
#include "qforge/model/quantized_linear.h"

namespace qforge {
namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed, double stddev) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal(0.0, stddev));
  return v;
}

double relative_l2(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

struct Case {
  QuantAlgo algo;
  bool zero_point = false;
  int group = 128;
};

const std::vector<Case> kCases = {
    {QuantAlgo::FP8},
    {QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN},
    {QuantAlgo::FP8_BLOCK_SCALES},
    {QuantAlgo::W8A16},
    {QuantAlgo::W8A16_GPTQ},
    {QuantAlgo::W4A16},
    {QuantAlgo::W4A16, false, 32},
    {QuantAlgo::W4A16, true, 64},
    {QuantAlgo::W4A16_AWQ},
    {QuantAlgo::W4A16_AWQ, true},
    {QuantAlgo::W4A16_GPTQ},
    {QuantAlgo::W4A16_GPTQ, true},
    {QuantAlgo::W8A8_SQ_PER_CHANNEL},
    {QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN},
    {QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN},
    {QuantAlgo::W4A8_AWQ},
    {QuantAlgo::NVFP4},
    {QuantAlgo::W4A16_MXFP4},
    {QuantAlgo::W4A8_MXFP4_FP8},
};

// A layer as the quantizer would emit it: random weights, a calibrated static input scale from
// the test inputs' amax, a pre_quant_scale for the AWQ / SmoothQuant algorithms.
QuantizedLinear make_layer(const Case& c, int64_t rows, int64_t cols, uint64_t seed) {
  QuantConfig config;
  config.group_size = c.group;
  config.has_zero_point = c.zero_point;
  QuantizedLinear layer;
  layer.module = "test";
  layer.scheme = scheme_for_algo(c.algo, config).value();
  const auto w = random_floats(rows * cols, seed, 0.05);
  layer.weight = quantize_matrix(w.data(), rows, cols, layer.scheme.weight).value();
  const float amax = 4.0f;  // inputs are N(0, 1): a plausible calibrated clip
  switch (layer.scheme.activation) {
    case ActivationQuant::kFp8PerTensor:
      layer.input_scale = amax / 448.0f;
      break;
    case ActivationQuant::kInt8PerTensor:
      layer.input_scale = amax / 127.0f;
      break;
    case ActivationQuant::kNvfp4:
      layer.input_scale = amax / (6.0f * 448.0f);
      break;
    default:
      break;
  }
  if (layer.scheme.algorithm == WeightAlgorithm::kAwq ||
      layer.scheme.algorithm == WeightAlgorithm::kSmoothQuant) {
    Rng rng(seed + 1);
    for (int64_t k = 0; k < cols; ++k) {
      layer.pre_quant_scale.push_back(static_cast<float>(0.5 + rng.uniform()));
    }
  }
  return layer;
}

std::unique_ptr<WeightMatrix> oracle(const QuantizedLinear& layer) {
  ActivationQuantParams act;
  act.kind = layer.scheme.activation;
  act.input_scale = layer.input_scale;
  act.pre_quant_scale = layer.pre_quant_scale;
  return make_quantized_weight_matrix(layer.weight, act).value();
}

struct Opened {
  hwy::AlignedFreeUniquePtr<uint8_t[]> buf;
  PackedLinear packed;
  std::unique_ptr<WeightMatrix> matrix;
};

Opened open_first_candidate(const QuantizedLinear& layer) {
  const auto cands = packed_linear_candidates(layer.scheme, layer.weight.rows, layer.weight.cols);
  EXPECT_FALSE(cands.empty()) << quant_algo_name(layer.scheme.algo);
  Opened o;
  o.packed = pack_linear(layer, cands.front()).value();
  o.buf = hwy::AllocateAligned<uint8_t>(o.packed.blob.size());
  std::memcpy(o.buf.get(), o.packed.blob.data(), o.packed.blob.size());
  o.matrix =
      open_packed_linear(o.packed.info, {o.buf.get(), o.packed.blob.size()}, nullptr).value();
  return o;
}

// Budget of every float format: the packed kernels use exactly the oracle's dequantized weights
// and activation rounding; only the F32 accumulation order differs (and, for W8A8, the integer
// dot product replaces the F32 sum of the same products).
constexpr double kBudget = 2e-6;

TEST(PackedLinear, EveryAlgoMatchesTheFakeQuantOracle) {
  for (const Case& c : kCases) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 200}, {64, 256}}) {
      const QuantizedLinear layer = make_layer(c, rows, cols, 11 + rows);
      const auto want_m = oracle(layer);
      for (const PackedLinearInfo& cand : packed_linear_candidates(layer.scheme, rows, cols)) {
        auto packed = pack_linear(layer, cand);
        ASSERT_TRUE(packed.ok()) << packed.error().message();
        auto buf = hwy::AllocateAligned<uint8_t>(packed.value().blob.size());
        std::memcpy(buf.get(), packed.value().blob.data(), packed.value().blob.size());
        auto got_m =
            open_packed_linear(packed.value().info, {buf.get(), packed.value().blob.size()}, {});
        ASSERT_TRUE(got_m.ok()) << got_m.error().message();
        for (int64_t m : {1, 3, 9}) {
          const auto x = random_floats(m * cols, 5 + m, 1.0);
          std::vector<float> got(m * rows), want(m * rows);
          got_m.value()->matmul(x.data(), m, got.data());
          want_m->matmul(x.data(), m, want.data());
          EXPECT_LT(relative_l2(got.data(), want.data(), m * rows), kBudget)
              << quant_algo_name(c.algo) << " zp=" << c.zero_point << " g=" << c.group << " "
              << cand.kernel << " [" << rows << ", " << cols << "] m=" << m;
        }
        // Dequantized rows are the oracle's exactly.
        std::vector<float> a(cols), b(cols);
        for (int64_t r : {int64_t{0}, rows - 1}) {
          got_m.value()->row_to_f32(r, a.data());
          want_m->row_to_f32(r, b.data());
          EXPECT_EQ(0, std::memcmp(a.data(), b.data(), cols * sizeof(float)))
              << cand.kernel << " row " << r;
        }
        EXPECT_EQ(got_m.value()->rows(), rows);
        EXPECT_EQ(got_m.value()->cols(), cols);
      }
    }
  }
}

TEST(PackedLinear, RowsAreBitIdenticalWhateverMAndThreads) {
  const int64_t rows = 70, cols = 300;
  for (const Case& c : kCases) {
    const QuantizedLinear layer = make_layer(c, rows, cols, 3);
    Opened o = open_first_candidate(layer);
    const auto x = random_floats(64 * cols, 9, 1.0);
    set_num_threads(2);
    std::vector<float> y64(64 * rows), y7(7 * rows), y1(rows);
    o.matrix->matmul(x.data(), 64, y64.data());
    set_num_threads(1);
    std::vector<float> y64_1(64 * rows);
    o.matrix->matmul(x.data(), 64, y64_1.data());
    o.matrix->matmul(x.data() + 5 * cols, 7, y7.data());
    set_num_threads(0);
    EXPECT_EQ(0, std::memcmp(y64.data(), y64_1.data(), y64.size() * 4)) << o.packed.info.kernel;
    for (int64_t i = 0; i < 7; ++i) {
      EXPECT_EQ(0, std::memcmp(y7.data() + i * rows, y64.data() + (5 + i) * rows, rows * 4))
          << o.packed.info.kernel << " m=7 row " << i;
    }
    for (int64_t i : {0, 5, 63}) {
      o.matrix->matmul(x.data() + i * cols, 1, y1.data());
      EXPECT_EQ(0, std::memcmp(y1.data(), y64.data() + i * rows, rows * 4))
          << o.packed.info.kernel << " m=1 row " << i;
    }
  }
}

// Kernel selection picks among the variants (execution tactics of one blob layout) by speed
// alone, so every variant must give the same bits for every m: the GEMV passes of 4 rows, the
// GEMM, and both chunkings.
TEST(PackedLinear, EveryVariantComputesTheSameBits) {
  const int64_t rows = 70, cols = 256;
  for (const Case& c : kCases) {
    const QuantizedLinear layer = make_layer(c, rows, cols, 21);
    const auto cands = packed_linear_candidates(layer.scheme, rows, cols);
    ASSERT_GE(cands.size(), 2u) << quant_algo_name(c.algo) << ": nothing to select from";
    const auto x = random_floats(17 * cols, 13, 1.0);
    std::vector<std::vector<float>> first;
    for (const PackedLinearInfo& cand : cands) {
      if (cand.kernel != cands.front().kernel) continue;
      auto packed = pack_linear(layer, cand);
      ASSERT_TRUE(packed.ok()) << packed.error().message();
      EXPECT_EQ(packed.value().info.variant, cand.variant);
      // Variants share the layout: the blob is the same bytes.
      EXPECT_EQ(packed.value().blob, pack_linear(layer, cands.front()).value().blob);
      auto buf = hwy::AllocateAligned<uint8_t>(packed.value().blob.size());
      std::memcpy(buf.get(), packed.value().blob.data(), packed.value().blob.size());
      auto m = open_packed_linear(packed.value().info, {buf.get(), packed.value().blob.size()}, {});
      ASSERT_TRUE(m.ok()) << m.error().message();
      std::vector<std::vector<float>> ys;
      for (int64_t rows_of_x : {1, 3, 5, 8, 9, 12, 16, 17}) {
        std::vector<float> y(rows_of_x * rows);
        m.value()->matmul(x.data(), rows_of_x, y.data());
        // Each row equals the same row computed alone.
        std::vector<float> y1(rows);
        m.value()->matmul(x.data() + (rows_of_x - 1) * cols, 1, y1.data());
        EXPECT_EQ(0, std::memcmp(y1.data(), y.data() + (rows_of_x - 1) * rows, rows * 4))
            << cand.kernel << "/" << cand.variant << " m=" << rows_of_x;
        ys.push_back(std::move(y));
      }
      if (first.empty()) {
        first = std::move(ys);
      } else {
        for (size_t i = 0; i < ys.size(); ++i) {
          EXPECT_EQ(ys[i], first[i]) << cand.kernel << "/" << cand.variant << " case " << i;
        }
      }
    }
  }
}

TEST(PackedLinear, DenseWeightsRoundTripAndMatchTheirRows) {
  const int64_t rows = 45, cols = 77;
  const auto w = random_floats(rows * cols, 4, 0.1);
  const TensorView view =
      TensorView::make(static_cast<const void*>(w.data()), DType::F32, Shape{rows, cols}).value();
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    PackedLinear p = pack_dense_linear(view, dt).value();
    EXPECT_EQ(p.blob.size(), static_cast<size_t>(rows * cols * dtype_size(dt)));
    auto m = open_packed_linear(p.info, p.blob, nullptr).value();
    std::vector<float> row(cols);
    m->row_to_f32(3, row.data());
    const double tol = dt == DType::F32 ? 0.0 : dt == DType::F16 ? 1e-3 : 1e-2;
    for (int64_t k = 0; k < cols; ++k) {
      EXPECT_NEAR(row[k], w[3 * cols + k], tol * std::fabs(w[3 * cols + k]) + 1e-7);
    }
    const auto x = random_floats(9 * cols, 2, 1.0);
    std::vector<float> y9(9 * rows), y1(rows);
    m->matmul(x.data(), 9, y9.data());
    m->matmul(x.data() + 4 * cols, 1, y1.data());
    EXPECT_EQ(0, std::memcmp(y1.data(), y9.data() + 4 * rows, rows * 4)) << dtype_name(dt);
    // Against a plain double-precision product of the stored weights.
    std::vector<float> wr(cols);
    for (int64_t r = 0; r < rows; ++r) {
      m->row_to_f32(r, wr.data());
      double s = 0;
      for (int64_t k = 0; k < cols; ++k) s += static_cast<double>(wr[k]) * x[4 * cols + k];
      EXPECT_NEAR(y1[r], s, 1e-5 * (1 + std::fabs(s)));
    }
  }
}

TEST(PackedLinear, Int4G128StorageIsFourPointOneTwoFiveBits) {
  const QuantizedLinear layer = make_layer({QuantAlgo::W4A16}, 256, 1024, 1);
  Opened o = open_first_candidate(layer);
  EXPECT_DOUBLE_EQ(8.0 * o.matrix->storage_bytes() / (256.0 * 1024), 4.125);
}

TEST(PackedLinear, JsonRoundTrips) {
  for (const Case& c : kCases) {
    const QuantizedLinear layer = make_layer(c, 20, 64, 2);
    Opened o = open_first_candidate(layer);
    const nlohmann::json j = packed_linear_info_to_json(o.packed.info);
    auto back = packed_linear_info_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << back.error().message();
    const PackedLinearInfo& a = o.packed.info;
    const PackedLinearInfo& b = back.value();
    EXPECT_EQ(a.kernel, b.kernel);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.cols, b.cols);
    EXPECT_EQ(quant_spec_name(a.weight), quant_spec_name(b.weight));
    EXPECT_EQ(a.weight.scale_type, b.weight.scale_type);
    EXPECT_EQ(a.activation, b.activation);
    EXPECT_EQ(a.input_scale, b.input_scale);
    EXPECT_EQ(a.tensor_scale, b.tensor_scale);
    EXPECT_EQ(a.has_pre_quant_scale, b.has_pre_quant_scale);
  }
}

TEST(PackedLinear, HostileInputIsAnError) {
  const QuantizedLinear layer = make_layer({QuantAlgo::W4A16_AWQ}, 20, 64, 2);
  Opened o = open_first_candidate(layer);
  const PackedLinearInfo& info = o.packed.info;
  // Blob sizes.
  auto short_blob = open_packed_linear(info, {o.buf.get(), o.packed.blob.size() - 1}, nullptr);
  ASSERT_FALSE(short_blob.ok());
  EXPECT_NE(short_blob.error().message().find("bytes"), std::string::npos);
  std::vector<uint8_t> big(o.packed.blob.size() + 64);
  EXPECT_FALSE(open_packed_linear(info, big, nullptr).ok());
  // Info fields.
  PackedLinearInfo bad = info;
  bad.kernel = "w5a16";
  EXPECT_FALSE(open_packed_linear(bad, o.packed.blob, nullptr).ok());
  EXPECT_FALSE(pack_linear(layer, bad).ok());
  bad = info;
  bad.layout_version = 2;
  EXPECT_FALSE(open_packed_linear(bad, o.packed.blob, nullptr).ok());
  bad = info;
  bad.kernel = "fp8w";  // cannot run INT4 weights
  EXPECT_FALSE(open_packed_linear(bad, o.packed.blob, nullptr).ok());
  EXPECT_FALSE(pack_linear(layer, bad).ok());
  bad = info;
  bad.rows = -3;
  EXPECT_FALSE(open_packed_linear(bad, o.packed.blob, nullptr).ok());
  // JSON.
  const nlohmann::json good = packed_linear_info_to_json(info);
  EXPECT_TRUE(packed_linear_info_from_json(good).ok());
  const auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = good;
    j[key] = std::move(v);
    return packed_linear_info_from_json(j);
  };
  EXPECT_FALSE(with("kernel", "nope").ok());
  EXPECT_FALSE(with("kernel", 3).ok());
  EXPECT_FALSE(with("rows", -1).ok());
  EXPECT_FALSE(with("rows", 0).ok());
  EXPECT_FALSE(with("cols", "many").ok());
  EXPECT_FALSE(with("cols", 1e30).ok());
  EXPECT_FALSE(with("rows", int64_t{1} << 40).ok());
  EXPECT_FALSE(with("weight", "int4_g96").ok());
  EXPECT_FALSE(with("weight", "fp8").ok());  // not what kernel w4a16 runs
  EXPECT_FALSE(with("activation", "fp7").ok());
  EXPECT_FALSE(with("input_scale", "x").ok());
  EXPECT_FALSE(with("tensor_scale", -1.0).ok());
  EXPECT_FALSE(with("has_pre_quant_scale", 1).ok());
  EXPECT_FALSE(with("variant", 7).ok());
  nlohmann::json missing = good;
  missing.erase("cols");
  EXPECT_FALSE(packed_linear_info_from_json(missing).ok());
  EXPECT_FALSE(packed_linear_info_from_json(nlohmann::json::array()).ok());
  // A static scheme without its scale.
  nlohmann::json fp8 = packed_linear_info_to_json(
      open_first_candidate(make_layer({QuantAlgo::FP8}, 20, 64, 2)).packed.info);
  fp8["input_scale"] = 0.0;
  EXPECT_FALSE(packed_linear_info_from_json(fp8).ok());
}

TEST(PackedLinear, CandidatesCoverEveryEmittedAlgo) {
  for (const Case& c : kCases) {
    QuantConfig config;
    config.has_zero_point = c.zero_point;
    const LinearQuantScheme s = scheme_for_algo(c.algo, config).value();
    EXPECT_FALSE(packed_linear_candidates(s, 64, 128).empty()) << quant_algo_name(c.algo);
  }
  QuantSpec mxfp8 = default_quant_spec(QuantFormat::MXFP8);
  LinearQuantScheme s;
  s.algo = QuantAlgo::W4A16_MXFP4;
  s.weight = mxfp8;
  EXPECT_EQ(packed_linear_candidates(s, 64, 128).front().kernel, "mxfp8w");
}

}  // namespace
}  // namespace qforge
