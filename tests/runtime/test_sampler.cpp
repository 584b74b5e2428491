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

namespace qforge {
namespace {

TEST(SamplerParams, MinPKeepsTokensWithinTheRatioOfTheMostLikely) {
  // Probabilities proportional to 8 : 4 : 2 : 1.
  const std::vector<float> logits = {std::log(8.0f), std::log(4.0f), std::log(2.0f), 0.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.4f;  // keeps 8 and 4 (ratios 1, 0.5); drops 0.25 and 0.125
  p.seed = 11;
  Sampler s(p);
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 3000; ++i) ++counts[s.sample(logits.data(), 4)];
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_NEAR(counts[0] / 3000.0, 2.0 / 3.0, 0.03);  // renormalized over the two kept
  p.min_p = 0.2f;                                    // also keeps ratio 0.25
  Sampler s2(p);
  bool saw2 = false;
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = s2.sample(logits.data(), 4);
    EXPECT_NE(t, 3);
    saw2 = saw2 || t == 2;
  }
  EXPECT_TRUE(saw2);
  p.min_p = 1.0f;  // only the most likely token
  Sampler s3(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s3.sample(logits.data(), 4), 0);
}

TEST(SamplerParams, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f};
  const std::vector<int32_t> context = {0, 1, 1, 7, -2};  // repeats count once; bad ids ignored
  apply_repetition_penalty(logits.data(), 4, context, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}));
  // Greedy with the penalty: 3.0 / 2 = 1.5 < 2.0, so the unseen token wins.
  const std::vector<float> row = {3.0f, 2.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  const std::vector<int32_t> seen = {0};
  EXPECT_EQ(s.sample(row.data(), 2, seen), 1);
  EXPECT_EQ(s.sample(row.data(), 2), 0);  // no context, no penalty
  // A penalty below 1 favours repeats (HF semantics): -1 * 0.5 = -0.5 > -0.75.
  const std::vector<float> neg = {-1.0f, -0.75f};
  p.repetition_penalty = 0.5f;
  Sampler s2(p);
  EXPECT_EQ(s2.sample(neg.data(), 2, seen), 0);
}

TEST(SamplerParams, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  const std::vector<float> logits = {0.0f, std::log(3.0f), std::log(3.0f), -1e30f};
  const SampleLogprobs lp = compute_logprobs(logits.data(), 4, 0, 3);
  // Probabilities 1/7, 3/7, 3/7, 0.
  EXPECT_EQ(lp.sampled.id, 0);
  EXPECT_NEAR(lp.sampled.logprob, std::log(1.0 / 7.0), 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].id, 1);  // tie: the smaller id first
  EXPECT_EQ(lp.top[1].id, 2);
  EXPECT_EQ(lp.top[2].id, 0);
  EXPECT_NEAR(lp.top[0].logprob, std::log(3.0 / 7.0), 1e-6);
  EXPECT_EQ(lp.top[0].logprob, lp.top[1].logprob);
  EXPECT_EQ(compute_logprobs(logits.data(), 4, 2, 0).top.size(), 0u);
  const std::vector<float> flat = {5.0f, 5.0f, 5.0f, 5.0f};
  EXPECT_NEAR(compute_logprobs(flat.data(), 4, 3, 1).sampled.logprob, -std::log(4.0), 1e-7);
}

TEST(SamplerParams, NewFieldsAreValidated) {
  const auto message = [](const SamplingParams& p) {
    const Status s = validate_sampling_params(p);
    return s.ok() ? std::string() : s.error().message();
  };
  SamplingParams p;
  EXPECT_EQ(message(p), "");
  p.min_p = 1.5f;
  EXPECT_NE(message(p).find("--min-p 1.5 is out of range"), std::string::npos);
  p = {};
  p.repetition_penalty = 0.0f;
  EXPECT_NE(message(p).find("--repetition-penalty 0 is invalid"), std::string::npos);
  p = {};
  p.stop_token_ids = {3, -1};
  EXPECT_NE(message(p).find("--stop-token-id -1 must be >= 0"), std::string::npos);
  p = {};
  p.logprobs = 21;
  EXPECT_NE(message(p).find("--logprobs 21 is out of range; expected [0, 20]"), std::string::npos);
  p.logprobs = 0;
  EXPECT_EQ(message(p), "");
}

}  // namespace
}  // namespace qforge
