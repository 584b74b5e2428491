// Synthetic checkpoints: every preset's config.json reads back (through the HF config parser)
// to the same architecture, and the generated values have the documented distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "qforge/io/hf_config.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/synthetic.h"

namespace qforge {
namespace {

TEST(Synthetic, EveryPresetConfigRoundTripsThroughTheHfParser) {
  for (const std::string& name : synthetic_preset_names()) {
    const ModelConfig c = synthetic_preset(name).value();
    auto parsed = parse_hf_config(hf_config_json(c), name + "/config.json");
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().to_string();
    EXPECT_EQ(parsed->architecture, c.architecture) << name;
    EXPECT_EQ(parsed->vocab_size, c.vocab_size) << name;
    EXPECT_EQ(parsed->hidden_size, c.hidden_size) << name;
    EXPECT_EQ(parsed->intermediate_size, c.intermediate_size) << name;
    EXPECT_EQ(parsed->num_hidden_layers, c.num_hidden_layers) << name;
    EXPECT_EQ(parsed->num_attention_heads, c.num_attention_heads) << name;
    EXPECT_EQ(parsed->num_key_value_heads, c.num_key_value_heads) << name;
    EXPECT_EQ(parsed->head_dim, c.head_dim) << name;
    EXPECT_EQ(parsed->rope_theta, c.rope_theta) << name;
    EXPECT_EQ(parsed->rope_scaling.type, c.rope_scaling.type) << name;
    EXPECT_EQ(parsed->rope_scaling.factor, c.rope_scaling.factor) << name;
    EXPECT_EQ(parsed->tie_word_embeddings, c.tie_word_embeddings) << name;
    EXPECT_EQ(parsed->attention_bias, c.attention_bias) << name;
    EXPECT_EQ(parsed->qk_norm, c.qk_norm) << name;
    EXPECT_EQ(parsed->sliding_window, c.sliding_window) << name;
  }
  EXPECT_FALSE(synthetic_preset("llama-9b").ok());
}

TEST(Synthetic, ValuesHaveTheDocumentedScaleAndOutliers) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("qforge_test_synth_values_" + std::to_string(::getpid()));
  SynthOptions o;
  o.dtype = DType::F32;
  o.outlier_channels = 3;
  o.seed = 5;
  ASSERT_TRUE(write_synthetic_checkpoint(synthetic_preset("tiny").value(), o, dir).ok());
  auto loaded = load_model(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  const TensorView q = loaded->weights.get("model.layers.0.self_attn.q_proj.weight").value();
  double sum = 0, sum_sq = 0;
  const float* p = q.data_as<const float>();
  for (int64_t i = 0; i < q.numel(); ++i) {
    sum += p[i];
    sum_sq += double(p[i]) * p[i];
  }
  const double mean = sum / q.numel();
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(std::sqrt(sum_sq / q.numel() - mean * mean), 0.02, 0.001);
  // Norm weights: about 1, except exactly 3 channels at about 20.
  const TensorView norm = loaded->weights.get("model.layers.1.input_layernorm.weight").value();
  int large = 0;
  for (int64_t i = 0; i < norm.numel(); ++i) {
    const float v = norm.data_as<const float>()[i];
    if (v > 10) {
      ++large;
      EXPECT_NEAR(v, 20.0, 2.0);
    } else {
      EXPECT_NEAR(v, 1.0, 0.1);
    }
  }
  EXPECT_EQ(large, 3);
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(write_synthetic_checkpoint(synthetic_preset("tiny").value(),
                                          SynthOptions{DType::I8, 0, 0, 1 << 30}, dir)
                   .ok());
}

}  // namespace
}  // namespace qforge
