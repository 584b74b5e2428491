// Rng: published SplitMix64/xoshiro256** vectors, pinned outputs (the stability promise),
// accuracy of the in-house log/exp/sincos, and distribution moments.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "qforge/core/rng.h"

namespace qforge {
namespace {

TEST(Rng, SplitMix64MatchesTheReferenceSequence) {
  SplitMix64 sm(0);
  EXPECT_EQ(sm.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(sm.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(sm.next(), 0x06C45D188009454FULL);
  EXPECT_EQ(sm.next(), 0xF88BB8A8724C81ECULL);
}

TEST(Rng, Xoshiro256StarStarMatchesTheReferenceSequence) {
  // State {1, 2, 3, 4}: the vector from the reference C implementation.
  Rng rng = Rng::from_state({1, 2, 3, 4});
  EXPECT_EQ(rng.next_u64(), 11520u);
  EXPECT_EQ(rng.next_u64(), 0u);
  EXPECT_EQ(rng.next_u64(), 1509978240u);
  EXPECT_EQ(rng.next_u64(), 1215971899390074240u);
  EXPECT_EQ(rng.next_u64(), 0x10E0B61CE1009D80ULL);
  EXPECT_EQ(rng.next_u64(), 0x0870021CE143AD00ULL);
}

// The stability promise: these constants must never change.
TEST(Rng, SeededOutputsArePinned) {
  Rng rng(42);
  EXPECT_EQ(rng.next_u64(), 0x15780B2E0C2EC716ULL);
  EXPECT_EQ(rng.next_u64(), 0x6104D9866D113A7EULL);
  EXPECT_EQ(rng.next_u64(), 0xAE17533239E499A1ULL);
  EXPECT_EQ(rng.next_u64(), 0xECB8AD4703B360A1ULL);

  Rng u(42);
  EXPECT_EQ(u.uniform(), 0x1.5780b2e0c2ecp-4);

  Rng n(42);
  EXPECT_EQ(n.normal(), -0x1.9cfc3b5554225p+0);
  EXPECT_EQ(n.normal(), 0x1.88d42946b3dep+0);
  EXPECT_EQ(n.normal(), 0x1.9039f092211ccp-1);
  EXPECT_EQ(n.normal(), -0x1.99cc52c8c3eb7p-2);
  EXPECT_EQ(n.normal(), 0x1.0409077faf54cp-6);
  EXPECT_EQ(n.normal(), -0x1.04bb11bdc1bafp-3);

  Rng t(42);
  EXPECT_EQ(t.student_t(5.0), -0x1.7eb7584f22dbep-1);
  EXPECT_EQ(t.student_t(5.0), 0x1.cd4c9e9845bb4p-3);
  EXPECT_EQ(t.student_t(5.0), 0x1.ee143fcde7172p-2);
  EXPECT_EQ(t.student_t(5.0), 0x1.ac2bd0c93c8c4p+0);

  Rng s(7);
  std::vector<int> items = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  s.shuffle(std::span<int>(items));
  EXPECT_EQ(items, (std::vector<int>{1, 8, 3, 0, 4, 5, 9, 6, 2, 7}));

  EXPECT_EQ(Rng(1, 0).next_u64(), 0x141CA55678C723BCULL);
  EXPECT_EQ(Rng(1, 1).next_u64(), 0x7CDCC4BF829BE944ULL);
}

TEST(Rng, DeterministicMathIsAccurate) {
  Rng rng(3);
  double worst_log = 0;
  double worst_exp = 0;
  double worst_sincos = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = rng.uniform() + 1e-300;
    worst_log = std::max(worst_log, std::fabs(rng_detail::log(x) - std::log(x)) /
                                        std::max(std::fabs(std::log(x)), 1e-300));
    const double y = rng.uniform(-700.0, 700.0);
    worst_exp = std::max(worst_exp, std::fabs(rng_detail::exp(y) - std::exp(y)) / std::exp(y));
    const double u = rng.uniform();
    double s = 0;
    double c = 0;
    rng_detail::sincos_turns(u, &s, &c);
    const double angle = 2 * std::numbers::pi * u;
    worst_sincos =
        std::max({worst_sincos, std::fabs(s - std::sin(angle)), std::fabs(c - std::cos(angle))});
  }
  EXPECT_LT(worst_log, 2e-15);
  EXPECT_LT(worst_exp, 2e-15);
  EXPECT_LT(worst_sincos, 4e-15);
  EXPECT_EQ(rng_detail::log(1.0), 0.0);
  EXPECT_EQ(rng_detail::exp(0.0), 1.0);
  EXPECT_DOUBLE_EQ(rng_detail::expm1(1e-10), std::expm1(1e-10));
  EXPECT_DOUBLE_EQ(rng_detail::expm1(-0.2), std::expm1(-0.2));
  EXPECT_TRUE(std::isinf(rng_detail::exp(800.0)));
  EXPECT_EQ(rng_detail::exp(-800.0), 0.0);
  double s = 0;
  double c = 0;
  rng_detail::sincos_turns(0.25, &s, &c);
  EXPECT_EQ(s, 1.0);
  EXPECT_EQ(c, 0.0);
}

TEST(Rng, UniformMoments) {
  Rng rng(11);
  constexpr int kN = 100000;
  double sum = 0;
  double lo = 1;
  double hi = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = rng.uniform();
    sum += u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.005);
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  const double x = rng.uniform(-2.0, 3.0);
  EXPECT_GE(x, -2.0);
  EXPECT_LT(x, 3.0);
}

TEST(Rng, UniformIntIsInRangeAndFlat) {
  Rng rng(5);
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100000; ++i) counts[rng.uniform_int(10)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
  EXPECT_EQ(rng.uniform_int(1), 0u);
  EXPECT_EQ(rng.uniform_int(0), 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.uniform_int(3), 3u);
}

TEST(Rng, NormalMeanStdAndShape) {
  Rng rng(1234);
  constexpr int kN = 100000;
  double sum = 0;
  double sum_sq = 0;
  int within_one = 0;
  for (int i = 0; i < kN; ++i) {
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
    within_one += std::fabs(z) < 1.0;
  }
  const double mean = sum / kN;
  const double stddev = std::sqrt(sum_sq / kN - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.015);  // standard error 0.0032
  EXPECT_NEAR(stddev, 1.0, 0.01);
  EXPECT_NEAR(static_cast<double>(within_one) / kN, 0.6827, 0.006);

  std::vector<float> w(50000);
  rng.fill_normal(std::span<float>(w), 2.0, 0.5);
  double wsum = 0;
  for (float v : w) wsum += v;
  EXPECT_NEAR(wsum / static_cast<double>(w.size()), 2.0, 0.02);
}

TEST(Rng, StudentTVarianceAndTails) {
  constexpr int kN = 100000;
  Rng rng(99);
  // nu = 10: variance nu / (nu - 2) = 1.25.
  double sum = 0;
  double sum_sq = 0;
  for (int i = 0; i < kN; ++i) {
    const double t = rng.student_t(10.0);
    sum += t;
    sum_sq += t * t;
  }
  EXPECT_NEAR(sum / kN, 0.0, 0.02);
  EXPECT_NEAR(sum_sq / kN, 1.25, 0.05);
  // nu = 1 (Cauchy): P(|t| < 1) = 1/2.
  int inside = 0;
  for (int i = 0; i < kN; ++i) inside += std::fabs(rng.student_t(1.0)) < 1.0;
  EXPECT_NEAR(static_cast<double>(inside) / kN, 0.5, 0.01);
  // Huge nu approaches the normal (exercises the small-argument expm1 path).
  double big_sq = 0;
  for (int i = 0; i < kN; ++i) {
    const double t = rng.student_t(1e6);
    big_sq += t * t;
  }
  EXPECT_NEAR(big_sq / kN, 1.0, 0.03);
}

TEST(Rng, StreamsAreReproducibleAndDistinct) {
  Rng a(77, 3);
  Rng b(77, 3);
  Rng c(77, 4);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
}

}  // namespace
}  // namespace qforge
