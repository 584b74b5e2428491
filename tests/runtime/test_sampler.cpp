// Sampler: greedy at temperature 0 (ties to the lower id), top-k 1 and a tiny top-p are greedy
// too, sampling is reproducible per seed and follows the softmax distribution, and the
// parameter checks name the bad field.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "qforge/runtime/sampling.h"

namespace qforge {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

TEST(Sampler, TemperatureZeroIsArgmaxWithTiesToTheLowerId) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  EXPECT_EQ(s.sample(kLogits.data(), 5), 1);
  EXPECT_EQ(argmax_token(kLogits.data(), 5), 1);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 1;
  Sampler k1(p);
  p.top_k = 0;
  p.top_p = 1e-6f;
  Sampler tiny_p(p);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(k1.sample(kLogits.data(), 5), 1);
    EXPECT_EQ(tiny_p.sample(kLogits.data(), 5), 1);
  }
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits.data(), 5), b.sample(kLogits.data(), 5));
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler s(p);
  std::vector<int> counts(5, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(kLogits.data(), 5)];
  double z = 0;
  for (float l : kLogits) z += std::exp(l);
  for (int i = 0; i < 5; ++i) {
    const double p_i = std::exp(kLogits[i]) / z;
    EXPECT_NEAR(counts[i] / static_cast<double>(n), p_i, 4 * std::sqrt(p_i * (1 - p_i) / n) + 1e-3)
        << "id " << i;
  }
  // top-k 2 keeps only ids 1 and 3 (equal logits): about half each.
  p.top_k = 2;
  Sampler k2(p);
  std::vector<int> c2(5, 0);
  for (int i = 0; i < 4000; ++i) ++c2[k2.sample(kLogits.data(), 5)];
  EXPECT_EQ(c2[0] + c2[2] + c2[4], 0);
  EXPECT_NEAR(c2[1] / 4000.0, 0.5, 0.05);
}

TEST(Sampler, ValidationNamesTheField) {
  SamplingParams p;
  p.temperature = -1.0f;
  auto s = validate_sampling_params(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("--temperature"), std::string::npos);
  p = SamplingParams{};
  p.top_p = 0.0f;
  EXPECT_FALSE(validate_sampling_params(p).ok());
  p = SamplingParams{};
  p.top_k = -2;
  EXPECT_FALSE(validate_sampling_params(p).ok());
  p = SamplingParams{};
  p.stop = {""};
  EXPECT_FALSE(validate_sampling_params(p).ok());
  EXPECT_TRUE(validate_sampling_params(SamplingParams{}).ok());
}

}  // namespace
}  // namespace qforge
