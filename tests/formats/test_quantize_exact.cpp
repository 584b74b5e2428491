// The Highway quantization kernels (quantize_matrix, quantize_row_*) equal the scalar reference
// (quantize_matrix_ref, *_ref) BIT FOR BIT on every SIMD target this binary has and this CPU
// runs: codes, scales and dequantized floats, for random odd shapes and real-model shapes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(rng.normal());
  return x;
}

QuantSpec spec_of(QuantFormat f, int group = 0, ScaleType st = ScaleType::F16,
                  ScalarFormat fp8 = ScalarFormat::E4M3FN) {
  QuantSpec s = default_quant_spec(f);
  if (group != 0) s.group_size = group;
  s.scale_type = st;
  s.fp8 = fp8;
  return s;
}

// Every format, plus the variants whose kernels differ (group sizes, scale types, FP8 kinds).
std::vector<QuantSpec> all_specs() {
  std::vector<QuantSpec> specs;
  for (QuantFormat f : all_quant_formats()) specs.push_back(default_quant_spec(f));
  specs.push_back(spec_of(QuantFormat::INT4_GROUP, 16));
  specs.push_back(spec_of(QuantFormat::INT4_GROUP, 32));
  specs.push_back(spec_of(QuantFormat::INT4_GROUP, 64));
  specs.push_back(spec_of(QuantFormat::INT4_GROUP, 128, ScaleType::BF16));
  specs.push_back(spec_of(QuantFormat::UINT4_GROUP, 32, ScaleType::BF16));
  specs.push_back(spec_of(QuantFormat::UINT4_GROUP, 64));
  specs.push_back(spec_of(QuantFormat::FP8_PER_TENSOR, 0, ScaleType::F16, ScalarFormat::E4M3FNUZ));
  specs.push_back(spec_of(QuantFormat::FP8_PER_TENSOR, 0, ScaleType::F16, ScalarFormat::E5M2));
  specs.push_back(spec_of(QuantFormat::FP8_PER_TENSOR, 0, ScaleType::F16, ScalarFormat::E5M2FNUZ));
  specs.push_back(spec_of(QuantFormat::FP8_PER_CHANNEL, 0, ScaleType::F16, ScalarFormat::E5M2));
  specs.push_back(spec_of(QuantFormat::MXFP8, 0, ScaleType::F16, ScalarFormat::E5M2));
  return specs;
}

// First index where two byte ranges differ, or -1.
int64_t first_difference(const void* a, const void* b, size_t bytes) {
  const auto* pa = static_cast<const uint8_t*>(a);
  const auto* pb = static_cast<const uint8_t*>(b);
  for (size_t i = 0; i < bytes; ++i) {
    if (pa[i] != pb[i]) return static_cast<int64_t>(i);
  }
  return -1;
}

// Quantizes x on the current target and with the reference; asserts identical bytes, scales
// and dequantized floats. `where` names target, spec and shape for failure messages.
void expect_bit_exact(const std::vector<float>& x, int64_t rows, int64_t cols,
                      const QuantSpec& spec, const QuantizedMatrix& ref,
                      const std::vector<float>& ref_out, const std::string& where) {
  auto got = quantize_matrix(x.data(), rows, cols, spec);
  ASSERT_TRUE(got.ok()) << where << ": " << got.error().to_string();
  ASSERT_EQ(got->padded_cols, ref.padded_cols) << where;
  ASSERT_EQ(got->row_bytes, ref.row_bytes) << where;
  ASSERT_EQ(got->data.size(), ref.data.size()) << where;
  const int64_t d = first_difference(got->data.data(), ref.data.data(), ref.data.size());
  ASSERT_EQ(d, -1) << where << ": code byte " << d << " (row " << d / ref.row_bytes << ", byte "
                   << d % ref.row_bytes << ") simd=" << int{got->data[d]}
                   << " ref=" << int{ref.data[d]};
  ASSERT_EQ(got->scales.size(), ref.scales.size()) << where;
  const int64_t s =
      first_difference(got->scales.data(), ref.scales.data(), ref.scales.size() * sizeof(float));
  ASSERT_EQ(s, -1) << where << ": scale " << s / 4;
  ASSERT_EQ(std::bit_cast<uint32_t>(got->tensor_scale), std::bit_cast<uint32_t>(ref.tensor_scale))
      << where;

  std::vector<float> out(static_cast<size_t>(rows * cols) + 1, -1.0f);
  ASSERT_TRUE(dequantize_matrix(*got, out.data()).ok()) << where;
  const int64_t o = first_difference(out.data(), ref_out.data(), ref_out.size() * sizeof(float));
  ASSERT_EQ(o, -1) << where << ": dequantized element " << o / 4 << " simd=" << out[o / 4]
                   << " ref=" << ref_out[o / 4];
  EXPECT_EQ(out.back(), -1.0f) << where << ": dequantize wrote past rows * cols";
}

void check_all_targets(const std::vector<float>& x, int64_t rows, int64_t cols,
                       const QuantSpec& spec) {
  const std::string shape = fmt::format("[{}, {}]", rows, cols);
  auto ref = quantize_matrix_ref(x.data(), rows, cols, spec);
  ASSERT_TRUE(ref.ok()) << quant_spec_name(spec) << shape << ": " << ref.error().to_string();
  std::vector<float> ref_out(static_cast<size_t>(rows * cols));
  ASSERT_TRUE(dequantize_matrix_ref(*ref, ref_out.data()).ok());
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    const std::string where = fmt::format("target {}, {} {}", t.name, quant_spec_name(spec), shape);
    ASSERT_EQ(simd_dispatch_target_name(), t.name);
    expect_bit_exact(x, rows, cols, spec, *ref, ref_out, where);
  }
}

TEST(QuantizeSimd, TargetsListedAndDispatchFollowsScope) {
  const std::vector<SimdTarget> targets = simd_targets();
  ASSERT_FALSE(targets.empty());
  std::printf("[          ] SIMD targets compiled and supported:");
  for (const SimdTarget& t : targets) std::printf(" %s", t.name.c_str());
  std::printf("\n");
  const std::string best = simd_dispatch_target_name();
  EXPECT_EQ(best, targets.front().name);
  {
    ScopedSimdTarget scope(targets.back().bits);
    EXPECT_EQ(simd_dispatch_target_name(), targets.back().name);
  }
  EXPECT_EQ(simd_dispatch_target_name(), best);
}

TEST(QuantizeExact, OddShapesGaussianEveryTarget) {
  const int64_t col_sizes[] = {1, 15, 17, 100, 129, 4097};
  uint64_t seed = 1;
  for (const QuantSpec& spec : all_specs()) {
    for (size_t i = 0; i < std::size(col_sizes); ++i) {
      const int64_t cols = col_sizes[i];
      const int64_t rows = static_cast<int64_t>((i + seed) % 7) + 1;
      check_all_targets(gaussian(rows * cols, ++seed), rows, cols, spec);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(QuantizeExact, RealModelShapeEveryTarget) {
  // A [384, 1024] projection-sized matrix (about one quarter of a small LLM's q_proj), with a
  // few outlier channels as real checkpoints have.
  const int64_t rows = 384;
  const int64_t cols = 1024;
  std::vector<float> x = gaussian(rows * cols, 42);
  for (float& v : x) v *= 0.02f;
  for (int64_t r = 0; r < rows; ++r) x[r * cols + 77] *= 50.0f;
  for (const QuantSpec& spec : all_specs()) {
    check_all_targets(x, rows, cols, spec);
    if (HasFatalFailure()) return;
  }
}

TEST(QuantizeExact, ParallelRowsMatchReference) {
  // [1100, 1031] = 1.13M elements: large enough for the threaded row loop (on the best target;
  // the row kernels themselves are covered on every target above).
  const int64_t rows = 1100;
  const int64_t cols = 1031;
  const std::vector<float> x = gaussian(rows * cols, 5);
  for (QuantFormat f : {QuantFormat::INT4_GROUP, QuantFormat::NVFP4, QuantFormat::FP8_PER_TENSOR,
                        QuantFormat::FP8_BLOCK128, QuantFormat::MXFP4}) {
    const QuantSpec spec = default_quant_spec(f);
    auto ref = quantize_matrix_ref(x.data(), rows, cols, spec);
    ASSERT_TRUE(ref.ok());
    std::vector<float> ref_out(x.size());
    ASSERT_TRUE(dequantize_matrix_ref(*ref, ref_out.data()).ok());
    expect_bit_exact(x, rows, cols, spec, *ref, ref_out,
                     fmt::format("{} [{}, {}], threaded", quant_spec_name(spec), rows, cols));
  }
}

TEST(QuantizeExact, MultiTileFp8Block128EveryTarget) {
  // 3 x 3 tiles, the last row and column of tiles partial.
  check_all_targets(gaussian(300 * 260, 7), 300, 260,
                    default_quant_spec(QuantFormat::FP8_BLOCK128));
}

TEST(QuantizeExact, ZerosAndTinyValuesEveryTarget) {
  // All-zero groups, -0.0, and float subnormals (scales that underflow the scale types).
  const int64_t rows = 3;
  const int64_t cols = 300;
  std::vector<float> x(static_cast<size_t>(rows * cols), 0.0f);
  for (int64_t c = 0; c < cols; ++c) {
    x[cols + c] = (c % 3 == 0) ? -0.0f : 0.0f;
    x[2 * cols + c] = std::ldexp(static_cast<float>(c % 17) - 8.0f, -140);
  }
  for (const QuantSpec& spec : all_specs()) {
    check_all_targets(x, rows, cols, spec);
    if (HasFatalFailure()) return;
  }
}

// Floats spread over the whole finite range (every 65537th bit pattern, both signs) plus every
// midpoint between neighbouring codes of `fp8` and the floats just around it: the rounding ties.
std::vector<float> codec_sweep(ScalarFormat fp8) {
  std::vector<float> v;
  for (uint32_t bits = 0; bits < 0x7F800000u; bits += 65537u) {
    v.push_back(std::bit_cast<float>(bits));
    v.push_back(-std::bit_cast<float>(bits));
  }
  std::vector<float> values;
  for (int c = 0; c < 256; ++c) {
    const uint8_t code = static_cast<uint8_t>(c);
    float f = 0;
    dequantize_row_fp8_ref(&code, 1, 1.0f, fp8, &f);
    if (std::isfinite(f) && f >= 0) values.push_back(f);
  }
  std::sort(values.begin(), values.end());
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    const float mid = static_cast<float>((double{values[i]} + double{values[i + 1]}) / 2);
    for (float m : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      v.push_back(m);
      v.push_back(-m);
    }
  }
  const float max = values.back();
  for (float m : {max * 1.03f, max * 1.0625f, max * 2.0f, 3e38f}) {
    v.push_back(m);
    v.push_back(-m);
  }
  return v;
}

TEST(QuantizeExact, Fp8CodecSweepEveryTarget) {
  for (ScalarFormat fp8 :
       {ScalarFormat::E4M3FN, ScalarFormat::E4M3FNUZ, ScalarFormat::E5M2, ScalarFormat::E5M2FNUZ}) {
    const std::vector<float> x = codec_sweep(fp8);
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> ref(x.size());
    quantize_row_fp8_ref(x.data(), n, 1.0f, fp8, ref.data());
    for (const SimdTarget& t : simd_targets()) {
      ScopedSimdTarget scope(t.bits);
      std::vector<uint8_t> got(x.size());
      quantize_row_fp8(x.data(), n, 1.0f, fp8, got.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i], ref[i]) << "target " << t.name << ", " << scalar_format_info(fp8).name
                                  << ": x = " << x[i] << " (bits 0x" << std::hex
                                  << std::bit_cast<uint32_t>(x[i]) << ")";
      }
    }
  }
}

TEST(QuantizeExact, E2m1CodecSweepEveryTarget) {
  // MXFP4 blocks whose first element is 6 get scale 2^0, so the other 31 elements go through
  // the E2M1 encoder unscaled: sweep every tie (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5) and
  // everything in (-6, 6) at a fine spacing, plus float subnormals.
  std::vector<float> vals;
  for (float t : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f}) {
    for (float m : {t, std::nextafter(t, 0.0f), std::nextafter(t, 7.0f)}) {
      vals.push_back(m);
      vals.push_back(-m);
    }
  }
  for (int i = -6000; i <= 6000; ++i) vals.push_back(static_cast<float>(i) * 0.001f);
  for (int i = 1; i < 40; ++i) vals.push_back(std::ldexp(1.0f, -126 - i % 23) * (i % 2 ? 1 : -1));
  vals.push_back(-0.0f);
  std::vector<float> x;
  for (size_t i = 0; i < vals.size(); ++i) {
    if (x.size() % 32 == 0) x.push_back(6.0f);
    x.push_back(vals[i]);
  }
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t blocks = (n + 31) / 32;
  std::vector<BlockMxfp4> ref(static_cast<size_t>(blocks));
  quantize_row_mxfp4_ref(x.data(), n, ref.data());
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    std::vector<BlockMxfp4> got(static_cast<size_t>(blocks));
    quantize_row_mxfp4(x.data(), n, got.data());
    for (int64_t b = 0; b < blocks; ++b) {
      ASSERT_EQ(got[b].scale_e8m0, 127) << "block " << b;
      ASSERT_EQ(std::memcmp(got[b].qs, ref[b].qs, sizeof(ref[b].qs)), 0)
          << "target " << t.name << ", block " << b << " starting at x = " << x[b * 32 + 1];
    }
  }
}

TEST(QuantizeExact, IntegerRoundingSweepEveryTarget) {
  // Ties and near-ties of round-to-nearest-even, inside and beyond the INT8 range.
  std::vector<float> x;
  for (int i = -140; i <= 140; ++i) {
    const float h = static_cast<float>(i) + 0.5f;
    for (float m : {static_cast<float>(i), h, std::nextafter(h, -1e9f), std::nextafter(h, 1e9f)}) {
      x.push_back(m);
    }
  }
  x.push_back(0.49999997f);
  x.push_back(-0.49999997f);
  x.push_back(1e30f);
  x.push_back(-1e30f);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int8_t> ref(x.size());
  quantize_row_int8_ref(x.data(), n, 1.0f, ref.data());
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    std::vector<int8_t> got(x.size());
    quantize_row_int8(x.data(), n, 1.0f, got.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], ref[i]) << "target " << t.name << ": x = " << x[i];
    }
  }
}

TEST(QuantizeExact, RowKernelsWithGivenScalesEveryTarget) {
  // The row API with caller-chosen scales (calibrated activations): 1000 values, odd tail.
  const std::vector<float> x = gaussian(1000, 99);
  const int64_t n = 1000;
  std::vector<uint8_t> ref8(n);
  std::vector<float> ref_out(n);
  quantize_row_fp8_ref(x.data(), n, 0.01f, ScalarFormat::E4M3FN, ref8.data());
  dequantize_row_fp8_ref(ref8.data(), n, 0.01f, ScalarFormat::E4M3FN, ref_out.data());
  std::vector<BlockNvfp4> ref_nv((n + 15) / 16);
  std::vector<float> ref_nv_out(n);
  const float s2 = nvfp4_tensor_scale(row_amax_ref(x.data(), n) * 0.5f);  // clipped on purpose
  quantize_row_nvfp4_ref(x.data(), n, s2, ref_nv.data());
  dequantize_row_nvfp4_ref(ref_nv.data(), n, s2, ref_nv_out.data());
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    EXPECT_EQ(std::bit_cast<uint32_t>(row_amax(x.data(), n)),
              std::bit_cast<uint32_t>(row_amax_ref(x.data(), n)));
    std::vector<uint8_t> got8(n);
    std::vector<float> out(n);
    quantize_row_fp8(x.data(), n, 0.01f, ScalarFormat::E4M3FN, got8.data());
    EXPECT_EQ(got8, ref8) << t.name;
    dequantize_row_fp8(got8.data(), n, 0.01f, ScalarFormat::E4M3FN, out.data());
    EXPECT_EQ(std::memcmp(out.data(), ref_out.data(), n * sizeof(float)), 0) << t.name;
    std::vector<BlockNvfp4> nv((n + 15) / 16);
    quantize_row_nvfp4(x.data(), n, s2, nv.data());
    EXPECT_EQ(std::memcmp(nv.data(), ref_nv.data(), nv.size() * sizeof(BlockNvfp4)), 0) << t.name;
    dequantize_row_nvfp4(nv.data(), n, s2, out.data());
    EXPECT_EQ(std::memcmp(out.data(), ref_nv_out.data(), n * sizeof(float)), 0) << t.name;
  }
}

}  // namespace
}  // namespace qforge
