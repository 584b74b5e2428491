// The vector kernels (RMSNorm, SwiGLU, softmax, RoPE, conversion, dot, axpy) against their
// scalar oracles on every compiled SIMD target, at lengths that exercise full vectors and tails.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <vector>

#include "backend/cpu/vector_ops.h"
#include "kernel_test_util.h"
#include "qforge/core/simd.h"

namespace qforge::cpu {
namespace {

using test::max_abs_diff;
using test::random_floats;
using test::relative_l2;

const std::vector<int64_t> kLengths = {1, 3, 8, 15, 16, 17, 64, 100, 172, 384, 1000, 4096};

TEST(VectorOps, RmsNormMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t n : kLengths) {
      const auto x = random_floats(n, 1 + n, 3.0);
      const auto w = random_floats(n, 2 + n, 1.0);
      std::vector<float> got(n), want(n);
      rmsnorm(x.data(), w.data(), n, 1e-5f, got.data());
      rmsnorm_ref(x.data(), w.data(), n, 1e-5f, want.data());
      EXPECT_LT(relative_l2(got.data(), want.data(), n), 1e-6) << target.name << " n=" << n;
      // In place gives the same result.
      std::vector<float> inplace = x;
      rmsnorm(inplace.data(), w.data(), n, 1e-5f, inplace.data());
      EXPECT_EQ(inplace, got) << target.name;
    }
  }
}

TEST(VectorOps, RmsNormOfConstantRowIsTheWeight) {
  std::vector<float> x(64, 2.5f), w(64), out(64);
  for (int i = 0; i < 64; ++i) w[i] = 0.5f * i;
  rmsnorm(x.data(), w.data(), 64, 0.0f, out.data());
  for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(out[i], w[i]);
}

TEST(VectorOps, SwiGluMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t n : kLengths) {
      auto gate = random_floats(n, 3 + n, 4.0);
      if (n > 2) {
        gate[0] = -200.0f;  // exp overflow region: silu -> -0
        gate[1] = 200.0f;   // silu -> g
      }
      const auto up = random_floats(n, 4 + n, 1.0);
      std::vector<float> got(n), want(n);
      swiglu(gate.data(), up.data(), n, got.data());
      swiglu_ref(gate.data(), up.data(), n, want.data());
      EXPECT_LT(max_abs_diff(got.data(), want.data(), n), 1e-5 * 200) << target.name;
      EXPECT_LT(relative_l2(got.data(), want.data(), n), 1e-6) << target.name << " n=" << n;
    }
  }
}

TEST(VectorOps, SoftmaxMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t n : kLengths) {
      auto got = random_floats(n, 5 + n, 10.0);
      auto want = got;
      softmax(got.data(), n);
      softmax_ref(want.data(), n);
      EXPECT_LT(max_abs_diff(got.data(), want.data(), n), 1e-6) << target.name << " n=" << n;
      double sum = 0;
      for (float p : got) sum += p;
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(VectorOps, RopeMatchesRefOnEveryTargetAndBothLayouts) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t head_dim : {2, 8, 16, 64, 128, 2048}) {
      for (bool interleaved : {false, true}) {
        const int64_t heads = 3;
        auto got = random_floats(heads * head_dim, 6 + head_dim);
        auto want = got;
        const auto angle = random_floats(head_dim / 2, 7 + head_dim, 3.0);
        std::vector<float> c(head_dim / 2), s(head_dim / 2);
        for (int64_t i = 0; i < head_dim / 2; ++i) {
          c[i] = std::cos(angle[i]);
          s[i] = std::sin(angle[i]);
        }
        rope(got.data(), heads, head_dim, c.data(), s.data(), interleaved);
        rope_ref(want.data(), heads, head_dim, c.data(), s.data(), interleaved);
        EXPECT_LT(max_abs_diff(got.data(), want.data(), heads * head_dim), 1e-5)
            << target.name << " head_dim=" << head_dim << " interleaved=" << interleaved;
      }
    }
  }
}

TEST(VectorOps, RopePairsAreTheDocumentedOnes) {
  // A rotation by 90 degrees: (a, b) -> (-b, a) on the pairs of each layout.
  std::vector<float> c(2, 0.0f), s(2, 1.0f);
  std::vector<float> half = {1, 2, 3, 4};  // pairs (0,2) and (1,3)
  rope(half.data(), 1, 4, c.data(), s.data(), false);
  EXPECT_EQ(half, (std::vector<float>{-3, -4, 1, 2}));
  std::vector<float> inter = {1, 2, 3, 4};  // pairs (0,1) and (2,3)
  rope(inter.data(), 1, 4, c.data(), s.data(), true);
  EXPECT_EQ(inter, (std::vector<float>{-2, 1, -4, 3}));
}

TEST(VectorOps, ConvertToF32IsExactOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    // Every 16-bit code (NaNs excluded: their payload need not survive).
    std::vector<uint16_t> codes;
    for (uint32_t c = 0; c < 65536; ++c) codes.push_back(static_cast<uint16_t>(c));
    for (DType dtype : {DType::BF16, DType::F16}) {
      std::vector<float> got(codes.size()), want(codes.size());
      convert_to_f32(codes.data(), dtype, static_cast<int64_t>(codes.size()), got.data());
      convert_to_f32_ref(codes.data(), dtype, static_cast<int64_t>(codes.size()), want.data());
      for (size_t i = 0; i < codes.size(); ++i) {
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(got[i]));
        } else {
          ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
              << target.name << " " << dtype_name(dtype) << " code " << i;
        }
      }
    }
  }
}

TEST(VectorOps, DotAndAxpyMatchRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t n : kLengths) {
      const auto a = random_floats(n, 8 + n);
      const auto b = random_floats(n, 9 + n);
      EXPECT_NEAR(dot(a.data(), b.data(), n), dot_ref(a.data(), b.data(), n),
                  1e-5 * std::sqrt(static_cast<double>(n)) * 4)
          << target.name;
      auto y1 = b;
      auto y2 = b;
      axpy(0.75f, a.data(), n, y1.data());
      axpy_ref(0.75f, a.data(), n, y2.data());
      EXPECT_LT(max_abs_diff(y1.data(), y2.data(), n), 1e-6) << target.name;
    }
  }
}

}  // namespace
}  // namespace qforge::cpu

namespace qforge::cpu {
namespace {

TEST(VectorOps, MaxSumAndSumExpMatchRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (int64_t n : kLengths) {
      const auto x = test::random_floats(n, 10 + n, 8.0);
      const float m = max_value(x.data(), n);
      EXPECT_EQ(m, max_value_ref(x.data(), n)) << target.name;
      EXPECT_NEAR(sum_exp(x.data(), n, m) / sum_exp_ref(x.data(), n, m), 1.0, 1e-6)
          << target.name << " n=" << n;
      EXPECT_NEAR(sum(x.data(), n), sum_ref(x.data(), n), 1e-4 * std::sqrt(n) * 8) << target.name;
    }
  }
}

}  // namespace
}  // namespace qforge::cpu
