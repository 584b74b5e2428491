// matmul (GEMV, tiled GEMV and F32-tile sgemm paths) against the double-precision oracle for
// F32, F16 and BF16 weights, on every compiled SIMD target, over shapes with vector tails and odd
// row counts.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/matmul.h"
#include "kernel_test_util.h"
#include "qforge/core/parallel.h"
#include "qforge/core/simd.h"

namespace qforge::cpu {
namespace {

using test::make_weights;
using test::random_floats;
using test::relative_l2;

struct Shape2 {
  int64_t n;
  int64_t k;
};

void check(DType dtype, Shape2 s, int64_t m, MatmulPath path, const std::string& target) {
  const auto w = make_weights(dtype, s.n * s.k, 100 + s.n + s.k);
  const auto x = random_floats(m * s.k, 200 + m);
  const WeightView view{w.data(), dtype, s.n, s.k, s.k};
  std::vector<float> got(m * s.n, -1.0f), want(m * s.n);
  matmul(view, x.data(), m, got.data(), path);
  matmul_ref(view, x.data(), m, want.data());
  EXPECT_LT(relative_l2(got.data(), want.data(), m * s.n), 2e-6)
      << target << " " << dtype_name(dtype) << " n=" << s.n << " k=" << s.k << " m=" << m
      << " path=" << static_cast<int>(path);
}

TEST(Matmul, GemvMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
      for (Shape2 s : {Shape2{1, 1}, Shape2{7, 3}, Shape2{5, 17}, Shape2{33, 64}, Shape2{64, 172},
                       Shape2{13, 100}}) {
        for (int64_t m : {1, 2, 3, 4, 5, 9}) check(dtype, s, m, MatmulPath::kGemv, target.name);
      }
    }
  }
}

TEST(Matmul, SgemmPathMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
      for (Shape2 s : {Shape2{7, 3}, Shape2{300, 64}, Shape2{513, 172}}) {
        for (int64_t m : {1, 8, 33}) check(dtype, s, m, MatmulPath::kSgemm, target.name);
      }
    }
  }
}

TEST(Matmul, TiledPathMatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
      for (Shape2 s : {Shape2{7, 3}, Shape2{300, 64}, Shape2{513, 172}, Shape2{70, 4100}}) {
        for (int64_t m : {1, 5, 8, 33}) check(dtype, s, m, MatmulPath::kTiled, target.name);
      }
    }
  }
}

TEST(Matmul, AutoPathAndThreadCountsAgree) {
  const auto w = make_weights(DType::BF16, 96 * 80, 7);
  const WeightView view{w.data(), DType::BF16, 96, 80, 80};
  for (int64_t m : {1, 4, 7, 8, 40}) {
    const auto x = random_floats(m * 80, 8);
    std::vector<float> one(m * 96), many(m * 96);
    set_num_threads(1);
    matmul(view, x.data(), m, one.data());
    set_num_threads(4);
    matmul(view, x.data(), m, many.data());
    set_num_threads(0);
    // Each output element is computed by exactly one thread with the same kernel: bit-equal.
    EXPECT_EQ(one, many) << "m=" << m;
  }
}

TEST(Matmul, RowStrideSelectsASubmatrix) {
  // A view of the first 10 columns of a (6, 16) matrix.
  const auto w = make_weights(DType::F32, 6 * 16, 9);
  const auto x = random_floats(10, 10);
  std::vector<float> dense(6 * 10);
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 10; ++c) dense[r * 10 + c] = w.f32[r * 16 + c];
  }
  std::vector<float> got(6), want(6);
  matmul({w.data(), DType::F32, 6, 10, 16}, x.data(), 1, got.data());
  matmul_ref({dense.data(), DType::F32, 6, 10, 10}, x.data(), 1, want.data());
  EXPECT_LT(relative_l2(got.data(), want.data(), 6), 1e-6);
}

}  // namespace
}  // namespace qforge::cpu
