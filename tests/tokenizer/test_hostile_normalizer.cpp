// tokenizer.json normalizer "bombs" (issue 15, cause 6): chained Replace steps ("a" -> 1024 x
// "a") multiplied the text without bound. Every step's output is now capped at
// kMaxNormalizerGrowth x the input (+ 4 KiB), checked while the replacement is written, so a
// bomb fails fast with a clear error and bounded memory, while real normalizers still work.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <string>
#include <vector>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::fixture;
using testing_tok::read_file;

// The spm-style fixture with its normalizer replaced by `normalizer` (a JSON value).
std::string with_normalizer(const std::string& normalizer) {
  std::string json = read_file(fixture("spm_style_llama2.json"));
  const size_t begin = json.find("\"normalizer\":");
  const size_t end = json.find("\"pre_tokenizer\":");
  EXPECT_NE(begin, std::string::npos);
  return json.substr(0, begin) + "\"normalizer\": " + normalizer + ",\n  " + json.substr(end);
}

std::string replace_step(const std::string& from, const std::string& to) {
  return "{\"type\": \"Replace\", \"pattern\": {\"String\": \"" + from + "\"}, \"content\": \"" +
         to + "\"}";
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST(HostileNormalizer, ReplaceChainBombFailsFastWithBoundedMemory) {
  // Five steps of "a" -> 1024 x "a": 1024^5 = 10^15 bytes for one input "a" without a cap.
  std::string steps;
  for (int i = 0; i < 5; ++i) steps += (i ? ", " : "") + replace_step("a", std::string(1024, 'a'));
  auto tok = parse_tokenizer_json(
      with_normalizer("{\"type\": \"Sequence\", \"normalizers\": [" + steps + "]}"), "bomb.json");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  const long rss_before = peak_rss_kib();
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& text : std::vector<std::string>{"a", "aaaa", std::string(10000, 'a')}) {
    auto ids = (*tok)->encode(text, true);
    ASSERT_FALSE(ids.ok()) << "encoded " << text.size() << " bytes";
    EXPECT_EQ(ids.error().code(), ErrorCode::kFormat);
    EXPECT_NE(ids.error().to_string().find("past the"), std::string::npos)
        << ids.error().to_string();
    EXPECT_NE(ids.error().to_string().find("limit"), std::string::npos);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 5.0);
  // 10000 x 32 + 4 KiB = 324 KB per intermediate: nothing near a gigabyte.
  EXPECT_LT(peak_rss_kib() - rss_before, 256 * 1024) << "KiB of extra peak RSS";
}

TEST(HostileNormalizer, OneStepBombIsCappedToo) {
  // A single step growing 1024x: the cap is per step, not only after the chain.
  auto tok = parse_tokenizer_json(with_normalizer(replace_step("a", std::string(1024, 'b'))),
                                  "bomb1.json");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  auto ids = (*tok)->encode(std::string(1000, 'a'), false);
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.error().to_string().find("normalizer step 0"), std::string::npos)
      << ids.error().to_string();
}

TEST(HostileNormalizer, RealGrowthIsAllowed) {
  // " " -> "\u2581" triples every space, and a 30x replacement stays under the 32x cap.
  auto tok = parse_tokenizer_json(
      with_normalizer("{\"type\": \"Sequence\", \"normalizers\": [" + replace_step(" ", "\u2581") +
                      ", " + replace_step("o", std::string(30, 'o')) + "]}"),
      "real.json");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  auto ids = (*tok)->encode(std::string(5000, ' ') + "Hello world", false);
  EXPECT_TRUE(ids.ok()) << ids.error().to_string();
}

TEST(HostileNormalizer, DecoderReplaceChainIsBoundedAtLoad) {
  // The decoders run over every vocabulary piece at load: a Replace chain there is capped too
  // (the step is skipped for the piece), so loading stays fast and small.
  std::string json = read_file(fixture("spm_style_llama2.json"));
  const std::string decoder_key = "\"decoders\": [";
  const size_t at = json.find(decoder_key);
  ASSERT_NE(at, std::string::npos);
  std::string steps;
  for (int i = 0; i < 6; ++i) steps += replace_step("l", std::string(1024, 'l')) + ", ";
  json.insert(at + decoder_key.size(), steps);
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = parse_tokenizer_json(json, "decoder_bomb.json");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  auto text = (*tok)->decode(std::vector<int32_t>{15});  // "ll"
  ASSERT_TRUE(text.ok());
  EXPECT_LT(text->size(), 100000u);
}

}  // namespace
}  // namespace qforge
