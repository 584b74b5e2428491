// RoPE inverse frequencies for every scaling type against values from a line-by-line Python
// transcription of transformers' modeling_rope_utils.py (float32 tensor ops emulated), at
// real-model settings: Llama 3 (theta 5e5), Llama 3.1 (llama3, factor 8), Qwen2.5-style YaRN
// (factor 4 over 32768), linear x4 and dynamic NTK x2 at twice the trained length.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "qforge/model/rope.h"

namespace qforge {
namespace {

const std::vector<int> kIndex = {0, 1, 7, 20, 31, 40, 50, 63};

ModelConfig config(double theta, int64_t max_pos = 8192) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = theta;
  c.max_position_embeddings = max_pos;
  return c;
}

void expect_freqs(const RopeFrequencies& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.inv_freq.size(), 64u);
  for (size_t i = 0; i < kIndex.size(); ++i) {
    EXPECT_NEAR(got.inv_freq[kIndex[i]] / want[i], 1.0, 3e-7) << what << " i=" << kIndex[i];
  }
}

TEST(Rope, DefaultFrequencies) {
  expect_freqs(rope_frequencies(config(500000.0), 1),
               {1, 0.814617217, 0.238053814, 0.0165604409, 0.00173604675, 0.000274248188,
                3.52922762e-05, 2.4551407e-06},
               "default");
}

TEST(Rope, LinearScaling) {
  ModelConfig c = config(10000.0);
  c.rope_scaling.type = RopeScalingType::Linear;
  c.rope_scaling.factor = 4.0;
  expect_freqs(rope_frequencies(c, 1),
               {0.25, 0.216491088, 0.0912935361, 0.0140585322, 0.00288695493, 0.000790569466,
                0.000187473546, 2.88695483e-05},
               "linear");
}

TEST(Rope, DynamicNtkGrowsTheBasePastTheTrainedLength) {
  ModelConfig c = config(10000.0, 4096);
  c.rope_scaling.type = RopeScalingType::Dynamic;
  c.rope_scaling.factor = 2.0;
  expect_freqs(rope_frequencies(c, 8192),
               {1, 0.850994289, 0.323211312, 0.0396764651, 0.00672552269, 0.00157422165,
                0.000313568453, 3.84927334e-05},
               "dynamic");
  // Within the trained length it is the default RoPE.
  const auto base = rope_frequencies(config(10000.0, 4096), 1);
  EXPECT_EQ(rope_frequencies(c, 4096).inv_freq, base.inv_freq);
}

TEST(Rope, Llama3Scaling) {
  ModelConfig c = config(500000.0, 131072);
  c.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 8192};
  const auto got = rope_frequencies(c, 1);
  expect_freqs(got,
               {1, 0.814617217, 0.238053814, 0.0165604409, 0.00085675146, 3.42810235e-05,
                4.41153452e-06, 3.06892588e-07},
               "llama3");
  EXPECT_EQ(got.attention_factor, 1.0f);
}

TEST(Rope, YarnScalingAndAttentionFactor) {
  ModelConfig c = config(1000000.0, 131072);
  c.rope_scaling.type = RopeScalingType::Yarn;
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 32768;
  const auto got = rope_frequencies(c, 1);
  expect_freqs(got,
               {1, 0.805842221, 0.220673397, 0.0133352149, 0.000802959781, 4.44569851e-05,
                5.13381246e-06, 3.10234441e-07},
               "yarn");
  EXPECT_NEAR(got.attention_factor, 1.13862944, 1e-7);
  // An explicit attention_factor wins.
  c.rope_scaling.attention_factor = 1.5;
  EXPECT_EQ(rope_frequencies(c, 1).attention_factor, 1.5f);
}

TEST(Rope, CosSinTablesScaleByTheAttentionFactor) {
  RopeFrequencies f{{1.0f, 0.5f}, 2.0f};
  std::vector<float> c(4), s(4);
  rope_cos_sin(f, 3, 2, c.data(), s.data());  // positions 3 and 4
  EXPECT_FLOAT_EQ(c[0], 2.0f * std::cos(3.0f));
  EXPECT_FLOAT_EQ(s[1], 2.0f * std::sin(1.5f));
  EXPECT_FLOAT_EQ(c[2], 2.0f * std::cos(4.0f));
  EXPECT_FLOAT_EQ(s[3], 2.0f * std::sin(2.0f));
}

}  // namespace
}  // namespace qforge
