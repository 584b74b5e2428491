// The chunking protocol of make_ppl_dataset on short texts (stories260K's tokenizer): chunk
// counts, BOS placement, scored positions for every mode, and the errors for datasets too small
// for one chunk and inconsistent options.
#include <gtest/gtest.h>

#include <filesystem>

#include "eval_test_util.h"

namespace qforge {
namespace {

const auto kModelDir = test::shared_dir() / "models" / "stories260K";

std::unique_ptr<Tokenizer> tokenizer() {
  return load_tokenizer_for_model((kModelDir / "stories260K.bin").string(), "", 512).value();
}

std::string long_text() {
  std::string s;
  for (int i = 0; i < 60; ++i) s += "Once upon a time, there was a little girl named Lily.\r\n";
  return s;
}

TEST(PplProtocol, StreamChunksAreNonOverlappingWithBos) {
  if (!std::filesystem::exists(kModelDir)) GTEST_SKIP();
  const auto tok = tokenizer();
  PerplexityOptions o;
  o.ctx = 64;
  const auto ds = make_ppl_dataset(long_text(), *tok, o, "text").value();
  const int64_t body = 63;
  EXPECT_EQ(static_cast<int64_t>(ds.chunks.size()), ds.total_text_tokens / body);
  for (const auto& c : ds.chunks) {
    ASSERT_EQ(c.tokens.size(), 64u);
    EXPECT_EQ(c.tokens[0], tok->bos_id());
    EXPECT_EQ(c.first_target, 1);
  }
  EXPECT_EQ(ds.scored_tokens, static_cast<int64_t>(ds.chunks.size()) * 63);
  // The ids of chunk 1 continue those of chunk 0 (CRLF became LF before encoding).
  const auto ids = tok->encode("Once upon a time", false).value();
  EXPECT_EQ(std::vector<int32_t>(ds.chunks[0].tokens.begin() + 1,
                                 ds.chunks[0].tokens.begin() + 1 + ids.size()),
            ids);
}

TEST(PplProtocol, SecondHalfScoringAndNoBos) {
  if (!std::filesystem::exists(kModelDir)) GTEST_SKIP();
  const auto tok = tokenizer();
  PerplexityOptions o;
  o.ctx = 64;
  o.add_bos = false;
  o.scoring = PplScoring::kSecondHalf;
  o.max_chunks = 3;
  const auto ds = make_ppl_dataset(long_text(), *tok, o, "text").value();
  ASSERT_EQ(ds.chunks.size(), 3u);
  for (const auto& c : ds.chunks) {
    EXPECT_NE(c.tokens[0], tok->bos_id());
    EXPECT_EQ(c.first_target, 32);
  }
  EXPECT_EQ(ds.scored_tokens, 3 * 32);
}

TEST(PplProtocol, OverlappingStrideScoresOnlyNewTokens) {
  if (!std::filesystem::exists(kModelDir)) GTEST_SKIP();
  const auto tok = tokenizer();
  PerplexityOptions o;
  o.ctx = 64;
  o.stride = 16;
  const auto ds = make_ppl_dataset(long_text(), *tok, o, "text").value();
  ASSERT_GT(ds.chunks.size(), 2u);
  EXPECT_EQ(ds.chunks[0].first_target, 1);
  EXPECT_EQ(ds.chunks[1].first_target, 64 - 16);
  o.scoring = PplScoring::kSecondHalf;
  EXPECT_FALSE(make_ppl_dataset(long_text(), *tok, o, "text").ok());
}

TEST(PplProtocol, DocumentModeSplitsStripsAndTruncates) {
  if (!std::filesystem::exists(kModelDir)) GTEST_SKIP();
  const auto tok = tokenizer();
  PerplexityOptions o;
  o.ctx = 8;
  o.doc_separator = "<|endoftext|>";
  const auto ds =
      make_ppl_dataset("  The cat sat.\n<|endoftext|>\n\n<|endoftext|>A dog ran and ran and ran.",
                       *tok, o, "docs")
          .value();
  ASSERT_EQ(ds.chunks.size(), 2u);  // the empty document is dropped
  const auto first = tok->encode("The cat sat.", true).value();
  EXPECT_EQ(ds.chunks[0].tokens, first);
  EXPECT_EQ(ds.chunks[1].tokens.size(), 8u);  // truncated to ctx
}

TEST(PplProtocol, TooSmallDatasetAndBadOptionsAreClearErrors) {
  if (!std::filesystem::exists(kModelDir)) GTEST_SKIP();
  const auto tok = tokenizer();
  PerplexityOptions o;
  o.ctx = 512;
  auto small = make_ppl_dataset("A short text.", *tok, o, "small.txt");
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message().find("small.txt"), std::string::npos);
  EXPECT_NE(small.error().message().find("one chunk"), std::string::npos);
  o.ctx = 1;
  EXPECT_FALSE(make_ppl_dataset(long_text(), *tok, o, "t").ok());
  o.ctx = 64;
  o.stride = 100;
  EXPECT_FALSE(make_ppl_dataset(long_text(), *tok, o, "t").ok());
  EXPECT_FALSE(parse_ppl_scoring("half").ok());
}

}  // namespace
}  // namespace qforge
