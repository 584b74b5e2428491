// The scored-vocabulary (GGUF "llama") tokenizer on a hand-made vocabulary: merges by piece
// score, byte fallback, user-defined pieces matched whole (with llama.cpp's space prefix after
// them), add_space_prefix / add_eos options, and decoding.
#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::decode_or_die;
using testing_tok::encode_or_die;
using Ids = std::vector<int32_t>;

ScoredVocab tiny_vocab() {
  ScoredVocab v;
  auto add = [&](std::string piece, float score, TokenType type) {
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::kByte);
  add("\xE2\x96\x81", -100, TokenType::kNormal);  // 259 ▁
  add("a", -101, TokenType::kNormal);             // 260
  add("b", -102, TokenType::kNormal);             // 261
  add("\xE2\x96\x81"
      "a",
      -1, TokenType::kNormal);                // 262 ▁a
  add("ab", -2, TokenType::kNormal);          // 263
  add("<tool>", 0, TokenType::kUserDefined);  // 264
  add("\xE2\x96\x81"
      "ab",
      -3, TokenType::kNormal);  // 265 ▁ab
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  return v;
}

std::unique_ptr<Tokenizer> make(ScoredVocab v) {
  auto t = make_scored_vocab_tokenizer(std::move(v), "tiny");
  if (!t.ok()) {
    ADD_FAILURE() << t.error().to_string();
    return nullptr;
  }
  return std::move(t).value();
}

TEST(ScoredVocab, MergesByScore) {
  auto t = make(tiny_vocab());
  ASSERT_NE(t, nullptr);
  // "▁ab": ▁+a (-1) beats a+b (-2); then ▁a+b = ▁ab (-3).
  EXPECT_EQ(encode_or_die(*t, "ab", true), (Ids{1, 265}));
  // é (C3 A9) is not a piece: byte fallback.
  EXPECT_EQ(encode_or_die(*t, "é", false), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(decode_or_die(*t, {1, 265}), "ab");
  EXPECT_EQ(decode_or_die(*t, {259, 3 + 0xC3, 3 + 0xA9}), "é");
  EXPECT_EQ(decode_or_die(*t, {0}), " \xE2\x81\x87 ");  // <unk> as SentencePiece shows it
}

TEST(ScoredVocab, UserDefinedPiecesAreMatchedWhole) {
  auto t = make(tiny_vocab());
  ASSERT_NE(t, nullptr);
  // llama.cpp prefixes the text after a matched special/user-defined token with a space again.
  EXPECT_EQ(encode_or_die(*t, "ab<tool>ab", false), (Ids{265, 264, 265}));
  EXPECT_EQ(decode_or_die(*t, {265, 264, 265}), "ab<tool> ab");
}

TEST(ScoredVocab, Options) {
  ScoredVocab v = tiny_vocab();
  v.add_space_prefix = false;
  v.add_eos = true;
  auto t = make(v);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(encode_or_die(*t, "ab", true), (Ids{1, 263, 2}));
  EXPECT_EQ(encode_or_die(*t, "ab", false), (Ids{263}));
  ScoredVocab bad = tiny_vocab();
  bad.scores.pop_back();
  auto r = make_scored_vocab_tokenizer(bad, "bad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("266 tokens but 265 scores"), std::string::npos);
}

}  // namespace
}  // namespace qforge
