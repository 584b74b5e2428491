// SentencePiece .model files with hostile normalizer charsmaps (issue 15, cause 2):
// libsentencepiece walks NormalizerSpec.precompiled_charsmap (a darts-clone trie plus a string
// blob) without bounds checks, so a garbage charsmap made it read wild addresses (SIGSEGV). qforge
// validates every reachable trie unit and string offset first. The fixture
// spm_rules_charsmap.model is a real BPE model trained by libsentencepiece 0.1.97 with a
// normalization rule TSV (A->a, B->b, C->c, Q->q), so it carries a real charsmap.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "spm_proto_util.h"
#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::fixture;
using testing_tok::get_charsmap;
using testing_tok::read_file;
using testing_tok::with_charsmap;

std::string rules_model() {
  return read_file(fixture("spm_rules_charsmap.model"));
}

Result<std::unique_ptr<Tokenizer>> parse(const std::string& model) {
  return parse_sentencepiece_model(std::as_bytes(std::span<const char>(model.data(), model.size())),
                                   "hostile.model");
}

std::string u32le(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

TEST(HostileSpm, RealCharsmapLoadsAndNormalizes) {
  const std::string model = rules_model();
  ASSERT_FALSE(model.empty());
  const auto charsmap = get_charsmap(model);
  ASSERT_TRUE(charsmap.has_value());
  EXPECT_GT(charsmap->size(), 8u);
  auto tok = parse(model);
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  // The rules map A, B, C to a, b, c: upper and lower case encode the same.
  auto upper = (*tok)->encode("ABC xyz", false);
  auto lower = (*tok)->encode("abc xyz", false);
  ASSERT_TRUE(upper.ok() && lower.ok());
  EXPECT_EQ(*upper, *lower);
  EXPECT_FALSE(upper->empty());
}

void expect_rejected(const std::string& charsmap, const std::string& needle,
                     uint32_t spec_field = 3) {
  const std::string model = with_charsmap(rules_model(), charsmap, spec_field);
  auto tok = parse(model);
  ASSERT_FALSE(tok.ok()) << "accepted a charsmap that should fail with: " << needle;
  EXPECT_EQ(tok.error().code(), ErrorCode::kFormat);
  EXPECT_NE(tok.error().to_string().find(needle), std::string::npos) << tok.error().to_string();
}

TEST(HostileSpm, TrieSizePastTheBlob) {
  // libsentencepiece's own check lets trie_size == blob.size() - 1 through (it forgets the
  // 4 bytes of the size field): both are refused here.
  expect_rejected(u32le(1000) + std::string(10, 'x'), "trie size 1000 bytes runs past");
  expect_rejected(u32le(9) + std::string(6, '\0') + "ab", "trie size 9 bytes runs past");
  expect_rejected(std::string("\x01\x02", 2), "too short for its 4-byte trie size");
}

TEST(HostileSpm, EmptyTrie) {
  expect_rejected(u32le(0) + std::string("a\0", 2), "empty trie");
  expect_rejected(u32le(3) + std::string("abc") + "x", "empty trie");
}

TEST(HostileSpm, RootOffsetOutsideTheArray) {
  // 256 units; unit 0's offset (bits 10..31) points its children far past the end.
  std::string trie(256 * 4, '\0');
  const uint32_t root = (0x3FFFFFu << 10);
  std::memcpy(trie.data(), &root, 4);
  expect_rejected(u32le(static_cast<uint32_t>(trie.size())) + trie + std::string("a\0", 2),
                  "points to children at");
  // The same in denormalizer_spec (ModelProto field 5), which libsentencepiece loads too.
  expect_rejected(u32le(static_cast<uint32_t>(trie.size())) + trie + std::string("a\0", 2),
                  "denormalizer_spec.precompiled_charsmap", 5);
}

TEST(HostileSpm, TooFewUnitsForTheChildren) {
  // 16 units: the root's children at 0..255 do not fit.
  expect_rejected(u32le(64) + std::string(64, '\0') + std::string("a\0", 2),
                  "outside the 16 units");
}

TEST(HostileSpm, StringOffsetsOutsideTheBlob) {
  const auto real = get_charsmap(rules_model());
  ASSERT_TRUE(real.has_value());
  uint32_t trie_bytes = 0;
  std::memcpy(&trie_bytes, real->data(), 4);
  // No NUL left in the strings blob: every value points at an unterminated string.
  std::string no_nul = *real;
  for (size_t i = 4 + trie_bytes; i < no_nul.size(); ++i) {
    if (no_nul[i] == '\0') no_nul[i] = 'x';
  }
  expect_rejected(no_nul, "does not start a NUL-terminated string");
  // The blob cut off entirely.
  expect_rejected(real->substr(0, 4 + trie_bytes), "does not start a NUL-terminated string");
}

TEST(HostileSpm, MutatedCharsmapsAreRejectedOrSafe) {
  // 400 copies of the real charsmap with random bytes changed (trie and blob): each is rejected
  // with a clear error, or accepted and then encodes without reading out of bounds (ASan).
  const std::string base = rules_model();
  const auto real = get_charsmap(base);
  ASSERT_TRUE(real.has_value());
  uint64_t x = 0x2545F4914F6CDD1Dull;
  const auto next = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  int rejected = 0;
  int accepted = 0;
  for (int round = 0; round < 400; ++round) {
    std::string m = *real;
    const int flips = 1 + static_cast<int>(next() % 8);
    for (int f = 0; f < flips; ++f) {
      const size_t at = 4 + next() % (m.size() - 4);
      m[at] = static_cast<char>(next());
    }
    auto tok = parse(with_charsmap(base, m));
    if (!tok.ok()) {
      ++rejected;
      EXPECT_NE(tok.error().to_string().find("precompiled_charsmap"), std::string::npos);
      continue;
    }
    ++accepted;
    for (const char* text : {"ABC abc", "Quick brown fox", "\xE2\x96\x81 Z\x01\xFF", "QQQQ"}) {
      (void)(*tok)->encode(text, true);
    }
  }
  EXPECT_EQ(rejected + accepted, 400);
}

}  // namespace
}  // namespace qforge
