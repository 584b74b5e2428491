// The forward pass against the naive double-precision reference (reference_forward.h) on tiny
// synthetic checkpoints that exercise what the shared real models do not: Qwen2 q/k/v biases
// with tied embeddings, Qwen3 per-head q/k RMSNorm with head_dim != hidden/heads, a Mistral
// sliding window, and every RoPE scaling type; for prefill, decode and sliced prefill.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model_test_util.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/synthetic.h"
#include "reference_forward.h"

namespace qforge {
namespace {

// Removes the synthetic checkpoints of this process at exit.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
TempDirs g_temp_dirs;

std::filesystem::path synth_dir(const std::string& preset, DType dtype = DType::BF16) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("qforge_test_arch_" + preset + "_" + std::string(dtype_name(dtype)) + "_" +
                    std::to_string(::getpid()));
  if (!std::filesystem::exists(dir / "config.json")) {
    SynthOptions o;
    o.dtype = dtype;
    o.seed = 7;
    o.outlier_channels = 2;
    EXPECT_TRUE(write_synthetic_checkpoint(synthetic_preset(preset).value(), o, dir).ok());
    g_temp_dirs.dirs.push_back(dir);
  }
  return dir;
}

// Loads `preset`, lets `edit` change the config, and compares prefill, decode and sliced
// prefill logits with the reference over `n` tokens.
void check_against_reference(const std::string& preset, int64_t n,
                             const std::function<void(ModelConfig&)>& edit = {},
                             DType dtype = DType::BF16, bool prefill_only = false) {
  auto loaded = load_model(synth_dir(preset, dtype).string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  if (edit) edit(loaded->config);
  const ModelConfig config = loaded->config;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i)
    ids.push_back(static_cast<int32_t>((i * 37 + 11) % config.vocab_size));
  const auto want = test::reference_logits(config, loaded->weights, ids);
  auto model = Model::create(std::move(loaded).value());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const int64_t vocab = config.vocab_size;

  SessionOptions whole;
  whole.context_length = n;
  SessionOptions sliced = whole;
  sliced.max_batch_tokens = 5;
  std::vector<std::pair<const char*, SessionOptions>> runs = {{"prefill", whole}};
  if (!prefill_only) runs.push_back({"sliced prefill", sliced});
  for (const auto& [label, options] : runs) {
    const auto got = test::all_logits(*model, ids, options);
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      num += (got[i] - want[i]) * (got[i] - want[i]);
      den += want[i] * want[i];
    }
    EXPECT_LT(std::sqrt(num / den), 2e-5) << preset << " " << label;
  }
  if (prefill_only) return;
  // Decode: token by token.
  auto session = InferenceSession::create(*model, whole);
  ASSERT_TRUE(session.ok());
  double num = 0, den = 0;
  for (int64_t t = 0; t < n; ++t) {
    auto l = session->forward(std::span<const int32_t>(&ids[t], 1));
    ASSERT_TRUE(l.ok());
    for (int64_t i = 0; i < vocab; ++i) {
      const double diff = l->data_as<float>()[i] - want[t * vocab + i];
      num += diff * diff;
      den += want[t * vocab + i] * want[t * vocab + i];
    }
  }
  EXPECT_LT(std::sqrt(num / den), 2e-5) << preset << " decode";
}

TEST(Architectures, LlamaMatchesReference) {
  check_against_reference("tiny", 24);
}

TEST(Architectures, LlamaF32AndF16WeightsMatchReference) {
  check_against_reference("tiny", 12, {}, DType::F32);
  check_against_reference("tiny", 12, {}, DType::F16);
}

TEST(Architectures, Qwen2BiasAndTiedEmbeddingsMatchReference) {
  const ModelConfig c = synthetic_preset("tiny-qwen2").value();
  ASSERT_TRUE(c.attention_bias && c.tie_word_embeddings);
  check_against_reference("tiny-qwen2", 20);
}

TEST(Architectures, Qwen3QkNormMatchesReference) {
  const ModelConfig c = synthetic_preset("tiny-qwen3").value();
  ASSERT_TRUE(c.qk_norm);
  ASSERT_NE(c.head_dim * c.num_attention_heads, c.hidden_size);
  check_against_reference("tiny-qwen3", 20);
}

TEST(Architectures, SlidingWindowMatchesReference) {
  // Window 6 over 40 tokens: the prefill takes the sgemm attention path, decode the other.
  check_against_reference("tiny", 40, [](ModelConfig& c) {
    c.architecture = Architecture::Mistral;
    c.sliding_window = 6;
  });
}

TEST(Architectures, InterleavedRopeLayoutMatchesReference) {
  check_against_reference("tiny", 16,
                          [](ModelConfig& c) { c.rope_layout = RopeLayout::Interleaved; });
}

TEST(Architectures, RopeScalingTypesMatchReference) {
  check_against_reference("tiny", 20, [](ModelConfig& c) {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = 4.0;
  });
  check_against_reference("tiny", 20, [](ModelConfig& c) {
    c.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 64};
  });
  check_against_reference("tiny", 20, [](ModelConfig& c) {
    c.rope_scaling.type = RopeScalingType::Yarn;
    c.rope_scaling.factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 128;
  });
}

TEST(Architectures, DynamicNtkRopeMatchesReferenceInOnePrefill) {
  // Dynamic NTK only changes past max_position_embeddings, so the sequence (24) runs past it
  // (16). The reference computes one set of frequencies for the whole sequence, as one
  // transformers forward does; decode and sliced prefill re-derive them as the length grows (as
  // transformers' generate does), so only the single prefill is comparable.
  check_against_reference(
      "tiny", 24,
      [](ModelConfig& c) {
        c.rope_scaling.type = RopeScalingType::Dynamic;
        c.rope_scaling.factor = 2.0;
        c.max_position_embeddings = 16;
      },
      DType::BF16, /*prefill_only=*/true);
}

}  // namespace
}  // namespace qforge
