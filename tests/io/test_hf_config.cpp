// HF config.json / generation_config.json parsing for llama, mistral, qwen2 and qwen3, with the
// transformers v4 and v5 spellings of RoPE settings.
#include "io/io_test_util.h"
#include "qforge/io/hf_config.h"

namespace qforge {
namespace {

ModelConfig parse_ok(const std::string& text) {
  auto c = parse_hf_config(text, "config.json");
  EXPECT_TRUE(c.ok()) << c.error().to_string();
  return c.ok() ? *c : ModelConfig{};
}

std::string parse_error(const std::string& text) {
  auto c = parse_hf_config(text, "config.json");
  EXPECT_FALSE(c.ok());
  return c.ok() ? "" : c.error().to_string();
}

TEST(HfConfig, Llama31WithLlama3RopeScalingAndEosList) {
  const ModelConfig c = parse_ok(R"({
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "torch_dtype": "bfloat16", "tie_word_embeddings": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.kv_dim(), 1024);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.torch_dtype, DType::BF16);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_layout, RopeLayout::HalfSplit);
}

TEST(HfConfig, MistralSlidingWindowNullAbsentAndSet) {
  const std::string base = R"("model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 32000, "head_dim": null)";
  EXPECT_EQ(parse_ok("{" + base + R"(, "sliding_window": null})").sliding_window, 0);
  EXPECT_EQ(parse_ok("{" + base + "}").sliding_window, 4096);  // MistralConfig default
  const ModelConfig c = parse_ok("{" + base + R"(, "sliding_window": 2048})");
  EXPECT_EQ(c.sliding_window, 2048);
  EXPECT_EQ(c.architecture, Architecture::Mistral);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.torch_dtype, DType::F32);  // transformers' default when absent
}

TEST(HfConfig, Qwen2ImpliesQkvBiasAndYarnWithTypeKey) {
  const ModelConfig c = parse_ok(R"({
    "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    "tie_word_embeddings": true, "use_sliding_window": false, "sliding_window": 32768,
    "max_window_layers": 21, "eos_token_id": 151643, "bos_token_id": 151643,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}})");
  EXPECT_EQ(c.architecture, Architecture::Qwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window false
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Yarn);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);
}

TEST(HfConfig, Qwen3HeadDimIndependentOfHiddenAndQkNorm) {
  const ModelConfig c = parse_ok(R"({
    "model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 151936, "attention_bias": false, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}})");
  EXPECT_EQ(c.architecture, Architecture::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.q_dim(), 2048);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::None);
  EXPECT_EQ(c.torch_dtype, DType::BF16);
}

TEST(HfConfig, RopeScalingLinearAndDynamic) {
  const std::string base = R"("model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, )";
  auto lin = parse_ok("{" + base + R"("rope_scaling": {"type": "linear", "factor": 2.0}})");
  EXPECT_EQ(lin.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_DOUBLE_EQ(lin.rope_scaling.factor, 2.0);
  auto dyn = parse_ok("{" + base + R"("rope_scaling": {"rope_type": "dynamic", "factor": 3}})");
  EXPECT_EQ(dyn.rope_scaling.type, RopeScalingType::Dynamic);
  EXPECT_EQ(parse_ok("{" + base + R"("rope_scaling": null})").rope_scaling.type,
            RopeScalingType::None);
  const std::string err =
      parse_error("{" + base + R"("rope_scaling": {"type": "longrope", "factor": 2}})");
  EXPECT_NE(err.find("'longrope' is not supported"), std::string::npos) << err;
}

TEST(HfConfig, ErrorsNameTheFieldAndValue) {
  std::string e = parse_error(R"({"model_type": "gemma2", "hidden_size": 8})");
  EXPECT_NE(e.find("model_type 'gemma2' is not supported"), std::string::npos) << e;
  e = parse_error(R"({"model_type": "llama", "hidden_size": "384", "vocab_size": 100})");
  EXPECT_NE(e.find("hidden_size = \"384\" is not an integer"), std::string::npos) << e;
  e = parse_error(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2000, "num_attention_heads": 4, "vocab_size": 100})");
  EXPECT_NE(e.find("num_hidden_layers = 2000"), std::string::npos) << e;
  e = parse_error(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 6, "vocab_size": 100})");
  EXPECT_NE(e.find("num_attention_heads = 6 does not divide hidden_size = 64"), std::string::npos)
      << e;
}

TEST(HfConfig, GenerationConfigReplacesSpecialIds) {
  ModelConfig c = parse_ok(R"({"model_type": "llama", "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "vocab_size": 100, "eos_token_id": 2, "bos_token_id": 1})");
  ASSERT_TRUE(apply_generation_config(R"({"eos_token_id": [2, 7], "bos_token_id": 1})",
                                      "generation_config.json", &c)
                  .ok());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
  auto bad = apply_generation_config(R"({"eos_token_id": 100})", "generation_config.json", &c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().to_string().find("eos_token_id = 100"), std::string::npos);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));  // unchanged on error
}

TEST(HfConfig, SharedLlamaMixConfigWithGenerationConfig) {
  QF_REQUIRE_SHARED();
  auto c = load_hf_config(testing_io::models_dir() / "llama-mix-16m");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->pad_token_id, -1);  // "pad_token_id": null
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{2});
}

}  // namespace
}  // namespace qforge
