// llama2.c tokenizer.bin on hand-made vocabularies: run.c's encode (dummy " " prefix only for
// non-empty text, per-character lookup with bytes + 3 fallback, highest-score merge first,
// leftmost on ties), its decode (space dropped after BOS, <0xNN> as raw bytes), and the
// whole-text merge path for vocabularies where word-by-word encoding would not be exact.
#include <gtest/gtest.h>

#include <cstring>

#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::decode_or_die;
using testing_tok::encode_or_die;
using Ids = std::vector<int32_t>;

struct Piece {
  std::string text;
  float score;
};

std::string tokenizer_bin(const std::vector<Piece>& pieces, bool with_bytes) {
  std::vector<Piece> all = {{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}};
  if (with_bytes) {
    for (int b = 0; b < 256; ++b) all.push_back({fmt::format("<0x{:02X}>", b), 0});
  }
  all.insert(all.end(), pieces.begin(), pieces.end());
  int32_t max_len = 0;
  for (const auto& p : all)
    max_len = std::max<int32_t>(max_len, static_cast<int32_t>(p.text.size()));
  std::string out(reinterpret_cast<const char*>(&max_len), 4);
  for (const auto& p : all) {
    const auto len = static_cast<int32_t>(p.text.size());
    out.append(reinterpret_cast<const char*>(&p.score), 4);
    out.append(reinterpret_cast<const char*>(&len), 4);
    out.append(p.text);
  }
  return out;
}

std::unique_ptr<Tokenizer> parse(const std::string& bytes) {
  auto t = parse_llama2c_tokenizer(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "test.bin");
  if (!t.ok()) {
    ADD_FAILURE() << t.error().to_string();
    return nullptr;
  }
  return std::move(t).value();
}

TEST(Llama2c, EncodeFollowsRunC) {
  // Ids: 259 " ", 260 "a", 261 "b", 262 " a", 263 "ab", 264 " ab", 265 "é"
  auto t = parse(tokenizer_bin(
      {{" ", -10}, {"a", -11}, {"b", -12}, {" a", -3}, {"ab", -1}, {" ab", -2}, {"\xC3\xA9", -13}},
      true));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 266);
  // " ab": ab (-1) beats " a" (-3); then " " + "ab" = " ab" (-2).
  EXPECT_EQ(encode_or_die(*t, "ab", true), (Ids{1, 264}));
  // Empty text: no dummy prefix.
  EXPECT_EQ(encode_or_die(*t, "", true), (Ids{1}));
  EXPECT_EQ(encode_or_die(*t, "", false), (Ids{}));
  // "é" is a piece; "ü" (C3 BC) is not: bytes + 3 = 198, 191.
  EXPECT_EQ(encode_or_die(*t, "é", false), (Ids{259, 265}));
  EXPECT_EQ(encode_or_die(*t, "ü", false), (Ids{259, 0xC3 + 3, 0xBC + 3}));
  // Ties go to the leftmost pair: "aaa" with "aa" pieces.
  auto tie = parse(tokenizer_bin({{" ", -10}, {"a", -11}, {"aa", -1}}, false));
  ASSERT_NE(tie, nullptr);
  EXPECT_EQ(encode_or_die(*tie, "aaa", false), (Ids{3, 5, 4}));  // " ", "aa", "a"
}

TEST(Llama2c, DecodeFollowsRunC) {
  auto t = parse(tokenizer_bin({{" ", -10}, {"a", -11}, {" ab", -2}}, true));
  ASSERT_NE(t, nullptr);
  // After BOS the leading space of the piece is dropped; elsewhere it stays.
  EXPECT_EQ(decode_or_die(*t, {1, 261}), "ab");
  EXPECT_EQ(decode_or_die(*t, {261}), " ab");
  EXPECT_EQ(decode_or_die(*t, {261, 261}), " ab ab");
  // Byte pieces decode to the raw byte; BOS/EOS to nothing.
  EXPECT_EQ(decode_or_die(*t, {1, 0xC3 + 3, 0xA9 + 3, 2}), "é");
  EXPECT_EQ(t->piece(1), "\n<s>\n");
  EXPECT_EQ(t->token_type(5), TokenType::kByte);
  EXPECT_EQ(t->token_type(1), TokenType::kControl);
  EXPECT_EQ(t->token_type(0), TokenType::kUnknown);
}

// A piece with a space inside ("a b") can merge across words: the encoder must then run the
// merge loop over the whole text, as run.c does.
TEST(Llama2c, PieceWithInnerSpaceMergesAcrossWords) {
  // Ids: 3 " ", 4 "a", 5 "b", 6 "a ", 7 "a b", 8 " a"
  auto t = parse(tokenizer_bin(
      {{" ", -10}, {"a", -11}, {"b", -12}, {"a ", 0}, {"a b", -0.5f}, {" a", -1}}, false));
  ASSERT_NE(t, nullptr);
  // " a b": "a " (0) first, then "a " + "b" = "a b" (-0.5): [" ", "a b"]. Word by word it
  // would have been " a" | " b".
  EXPECT_EQ(encode_or_die(*t, "a b", false), (Ids{3, 7}));
}

}  // namespace
}  // namespace qforge
