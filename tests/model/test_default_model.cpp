// The built-in default model, models/qforge-tiny-shakespeare (trained by
// scripts/train_default_model.py): its config and parameter count, the tokenizer's ids for the
// prompt, a greedy continuation, and the perplexity of a fixed slice of its held-out text. The
// reference values were recorded from qforge after its full held-out PPL was checked equal to the
// training script's own (torch) PPL under the same protocol (MODEL_CARD.md); the greedy ids
// also equal the script's torch greedy decode in reference.json.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model_test_util.h"
#include "qforge/eval/perplexity.h"
#include "qforge/io/model_loader.h"
#include "qforge/runtime/generate.h"

namespace qforge {
namespace {

const std::filesystem::path kDir =
    std::filesystem::path(QFORGE_SOURCE_DIR) / "models" / "qforge-tiny-shakespeare";

// BOS + "ROMEO:" and its 48 greedy tokens ("\nO, I am gone.\n\nROMEO:\nI have been, sir, ...").
const std::vector<int32_t> kPromptIds = {1, 812, 983};
const std::vector<int32_t> kGreedyIds = {
    13,  991, 975, 294, 476, 305, 456, 985, 13,  13,   812, 983,  13,  980, 359, 815,
    975, 525, 975, 525, 975, 294, 476, 261, 271, 801,  971, 1006, 13,  13,  812, 983,
    13,  991, 975, 294, 476, 261, 271, 286, 987, 1006, 13,  13,   812, 983, 13,  991};
// qforge eval ppl --ctx 256 --max-chunks 16 on heldout.txt: bytes [1003856, end) of
// tinyshakespeare (read here from ../shared; scripts/default_model_data.sh writes the file).
constexpr size_t kHeldOutBegin = 1003856;
constexpr int64_t kPplChunks = 16;
constexpr double kPpl16 = 18.2383;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DefaultModel, ConfigAndParameterCount) {
  auto loaded = load_model(kDir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  const ModelConfig& c = loaded->config;
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.intermediate_size, 384);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, DType::BF16);
  int64_t params = 0;
  for (const auto& [name, view] : loaded->weights.tensors()) {
    EXPECT_EQ(view.dtype(), DType::BF16) << name;
    params += view.numel();
  }
  EXPECT_EQ(params, 1115520);
  // The safetensors file stays small enough to live in git.
  EXPECT_LT(std::filesystem::file_size(kDir / "model.safetensors"), 4u << 20);
}

TEST(DefaultModel, GreedyContinuationOfRomeo) {
  auto model = test::load_or_die(kDir.string());
  ASSERT_NE(model, nullptr);
  auto tokenizer = load_tokenizer_for_model(kDir.string(), "", model->config().vocab_size);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().to_string();
  auto prompt = (*tokenizer)->encode("ROMEO:", true);
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(*prompt, kPromptIds);
  const auto ids =
      test::greedy(model, kPromptIds, static_cast<int64_t>(kPromptIds.size() + kGreedyIds.size()));
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + static_cast<int64_t>(kPromptIds.size()), ids.end()),
            kGreedyIds);
  // Same ids as the training script's torch decode.
  const auto ref = test::read_json(kDir / "reference.json");
  const auto torch_ids = ref["greedy"]["output_ids"].get<std::vector<int32_t>>();
  ASSERT_GE(torch_ids.size(), kGreedyIds.size());
  EXPECT_EQ(std::vector<int32_t>(torch_ids.begin(),
                                 torch_ids.begin() + static_cast<int64_t>(kGreedyIds.size())),
            kGreedyIds);
}

TEST(DefaultModel, HeldOutPerplexityOfTheFirstChunks) {
  auto model = test::load_or_die(kDir.string());
  ASSERT_NE(model, nullptr);
  auto tokenizer = load_tokenizer_for_model(kDir.string(), "", model->config().vocab_size);
  ASSERT_TRUE(tokenizer.ok());
  PerplexityOptions o;
  o.ctx = 256;
  o.max_chunks = kPplChunks;
  const std::string text = read_text(std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared" /
                                     "data" / "tinyshakespeare" / "input.txt");
  ASSERT_EQ(text.size(), 1115394u) << "tinyshakespeare/input.txt missing or changed";
  auto dataset = make_ppl_dataset(text.substr(kHeldOutBegin), **tokenizer, o, "heldout.txt");
  ASSERT_TRUE(dataset.ok()) << dataset.error().to_string();
  SessionOptions so;
  so.context_length = o.ctx;
  auto session = InferenceSession::create(model, so);
  ASSERT_TRUE(session.ok());
  auto r = evaluate_perplexity(*session, *dataset, nullptr, false);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->scored_tokens, kPplChunks * (o.ctx - 1));
  EXPECT_NEAR(r->ppl, kPpl16, kPpl16 * 1e-4) << dataset->protocol;
}

}  // namespace
}  // namespace qforge
