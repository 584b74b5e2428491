// Perplexity of the shared real models under the protocols their reference files state
// (stories260K/config.json, llama-mix-16m/reference.json), within the stated tolerances.
#include <gtest/gtest.h>

#include <cstdio>

#include "eval_test_util.h"

namespace qforge {
namespace {

using test::shared_dir;

const auto kTinyStories = shared_dir() / "data" / "tinystories" / "tinystories_valid_first1000.txt";
const auto kWikiText = shared_dir() / "data" / "wikitext-2-raw" / "wiki.test.raw";

#define QF_REQUIRE(path)                                                              \
  do {                                                                                \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing fixture " << (path); \
  } while (0)

void report(const char* what, const test::PplRun& run) {
  std::printf(
      "%s: PPL %.4f +/- %.4f over %lld tokens, %lld chunks (%.1f s)\n  protocol: %s\n", what,
      run.result.ppl, run.result.ppl_stderr, static_cast<long long>(run.result.scored_tokens),
      static_cast<long long>(run.result.chunks), run.result.seconds, run.dataset.protocol.c_str());
}

// stories260K/config.json: first 10 stories, split on <|endoftext|>, stripped, BOS per story,
// truncated to 512 tokens: 3211 predicted tokens, PPL 3.351.
TEST(PerplexityReference, Stories260KTenStories) {
  const auto model = shared_dir() / "models" / "stories260K" / "stories260K.bin";
  QF_REQUIRE(model);
  QF_REQUIRE(kTinyStories);
  PerplexityOptions o;
  o.ctx = 512;
  o.doc_separator = "<|endoftext|>";
  o.max_chunks = 10;
  const auto run = test::run_ppl(model, kTinyStories, o);
  report("stories260K", run);
  EXPECT_EQ(run.result.scored_tokens, 3211);
  EXPECT_NEAR(run.result.ppl, 3.351, 0.002);
}

// llama-mix-16m/reference.json, 'docs' set: first 100 TinyStories stories, [BOS]+ids truncated
// to 512, every token after BOS scored: 18910 tokens, PPL 29.0965 (+-0.05%).
TEST(PerplexityReference, LlamaMixTinyStoriesFirst100) {
  const auto model = shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE(model);
  QF_REQUIRE(kTinyStories);
  PerplexityOptions o;
  o.ctx = 512;
  o.doc_separator = "<|endoftext|>";
  o.max_chunks = 100;
  const auto run = test::run_ppl(model, kTinyStories, o);
  report("llama-mix-16m TinyStories first 100", run);
  EXPECT_EQ(run.result.chunks, 100);
  EXPECT_EQ(run.result.scored_tokens, 18910);
  EXPECT_NEAR(run.result.ppl / 29.09654869447963, 1.0, 5e-4);
}

// llama-mix-16m/reference.json, 'stream' set: WikiText-2 raw test (CRLF->LF) encoded once,
// 727 chunks of [BOS] + 511 ids; all tokens: 151.965, second half: 144.781 (+-0.05% each).
TEST(PerplexityReferenceSlow, LlamaMixWikiTextAllTokens) {
  const auto model = shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE(model);
  QF_REQUIRE(kWikiText);
  PerplexityOptions o;
  o.ctx = 512;
  const auto run = test::run_ppl(model, kWikiText, o);
  report("llama-mix-16m WikiText-2 all tokens", run);
  EXPECT_EQ(run.result.chunks, 727);
  EXPECT_EQ(run.result.scored_tokens, 371497);
  EXPECT_NEAR(run.result.ppl / 151.96515122540504, 1.0, 5e-4);
}

TEST(PerplexityReferenceSlow, LlamaMixWikiTextSecondHalf) {
  const auto model = shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE(model);
  QF_REQUIRE(kWikiText);
  PerplexityOptions o;
  o.ctx = 512;
  o.scoring = PplScoring::kSecondHalf;
  const auto run = test::run_ppl(model, kWikiText, o);
  report("llama-mix-16m WikiText-2 second half", run);
  EXPECT_EQ(run.result.chunks, 727);
  EXPECT_EQ(run.result.scored_tokens, 727 * 256);
  EXPECT_NEAR(run.result.ppl / 144.78106032325047, 1.0, 5e-4);
}

}  // namespace
}  // namespace qforge
