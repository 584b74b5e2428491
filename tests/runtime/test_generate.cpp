// generate(): greedy reproduces the reference continuation, stop strings cut the text before
// the match (also when the match spans tokens), EOS ends with finish reason "eos", and a prompt
// that does not fit the context is an error before any work.
#include <gtest/gtest.h>

#include <filesystem>

#include "qforge/runtime/generate.h"

namespace qforge {
namespace {

const auto kShared = std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared" / "models";

struct Loaded {
  std::shared_ptr<const Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded load(const std::filesystem::path& path) {
  Loaded l;
  l.model = Model::load(path.string()).value();
  l.tokenizer = load_tokenizer_for_model(path.string(), "", l.model->config().vocab_size).value();
  return l;
}

TEST(Generate, GreedyStopStringAndStreaming) {
  const auto path = kShared / "stories260K" / "stories260K.bin";
  if (!std::filesystem::exists(path)) GTEST_SKIP();
  const Loaded l = load(path);
  const auto prompt = l.tokenizer->encode("Once upon a time", true).value();
  SamplingParams p;
  p.max_tokens = 40;
  auto session = InferenceSession::create(l.model).value();
  std::string streamed;
  auto r = generate(session, *l.tokenizer, prompt, p, [&](std::string_view s) { streamed += s; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->output_ids.size(), 40u);
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->text.rfind(", there was a little girl named Lily.", 0), 0u) << r->text;

  // "named Lily" spans several tokens: the text stops right before it.
  p.stop = {"named Lily"};
  session.reset();
  streamed.clear();
  r = generate(session, *l.tokenizer, prompt, p, [&](std::string_view s) { streamed += s; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kStop);
  EXPECT_EQ(r->text, ", there was a little girl ");
  EXPECT_EQ(streamed, r->text);
}

TEST(Generate, EosEndsGeneration) {
  const auto path = kShared / "llama-mix-16m";
  if (!std::filesystem::exists(path)) GTEST_SKIP();
  const Loaded l = load(path);
  // reference.json: "Call me Ishmael." is followed by EOS (id 2) under greedy decoding.
  const std::vector<int32_t> prompt = {1, 359, 445, 430, 1743, 7920, 3870, 630, 7934};
  SamplingParams p;
  p.max_tokens = 20;
  auto session = InferenceSession::create(l.model).value();
  auto r = generate(session, *l.tokenizer, prompt, p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kEos);
  EXPECT_EQ(r->output_ids, std::vector<int32_t>{2});
  EXPECT_EQ(r->text, "");
}

TEST(Generate, PromptLongerThanTheContextIsAnError) {
  const auto path = kShared / "stories260K" / "stories260K.bin";
  if (!std::filesystem::exists(path)) GTEST_SKIP();
  const Loaded l = load(path);
  SessionOptions o;
  o.context_length = 8;
  auto session = InferenceSession::create(l.model, o).value();
  const std::vector<int32_t> prompt(9, 300);
  auto r = generate(session, *l.tokenizer, prompt, SamplingParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("the prompt has 9 tokens but the context holds 8"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(session.n_past(), 0);
  // A prompt that fills the context exactly still yields one token, then stops ("length").
  const std::vector<int32_t> full(8, 300);
  auto ok = generate(session, *l.tokenizer, full, SamplingParams{});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->output_ids.size(), 1u);
  EXPECT_EQ(ok->finish_reason, FinishReason::kLength);
}

}  // namespace
}  // namespace qforge
