// tokenizer.json SentencePiece-style BPE (Llama-2 / Mistral / TinyLlama layouts) on hand-made
// fixtures: Prepend+Replace normalizer vs Metaspace, byte fallback, fused <unk>, the BOS
// template, and the Replace/ByteFallback/Fuse/Strip and Metaspace decoders.
#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::decode_or_die;
using testing_tok::decode_streaming;
using testing_tok::encode_or_die;
using testing_tok::fixture;
using testing_tok::load_or_die;
using Ids = std::vector<int32_t>;

TEST(HfSpmStyle, Llama2LayoutEncodes) {
  auto t = load_or_die(fixture("spm_style_llama2.json"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "hf-bpe-sentencepiece");
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  // "▁Hello▁world" is one word: ll(r0) He(r1) Hell(r2) Hello(r3) ▁Hello(r4) ▁w(r5) or(r6)
  // ▁wor(r7) ▁worl(r8) ▁world(r9); the queued ▁+H (r11) is stale by then.
  EXPECT_EQ(encode_or_die(*t, "Hello world", true), (Ids{1, 19, 24}));
  EXPECT_EQ(encode_or_die(*t, "Hello world", false), (Ids{19, 24}));
  // Two spaces: ▁w (r5) merges before ▁▁ (r10), leaving a lone ▁; "\n" falls back to <0x0A>.
  EXPECT_EQ(encode_or_die(*t, "Hello  world\n", true), (Ids{1, 19, 6, 24, 3}));
  EXPECT_EQ(encode_or_die(*t, "", true), (Ids{1}));
  EXPECT_EQ(encode_or_die(*t, "", false), (Ids{}));
}

TEST(HfSpmStyle, ByteFallbackAndFusedUnk) {
  auto t = load_or_die(fixture("spm_style_llama2.json"));
  ASSERT_NE(t, nullptr);
  // é = C3 A9: both byte pieces exist.
  EXPECT_EQ(encode_or_die(*t, "é!", false), (Ids{6, 4, 5, 14}));
  // € = E2 82 AC: no byte pieces -> <unk>; consecutive unknowns fuse into one (fuse_unk).
  EXPECT_EQ(encode_or_die(*t, "€", false), (Ids{6, 0}));
  EXPECT_EQ(encode_or_die(*t, "€€!", false), (Ids{6, 0, 14}));
  EXPECT_EQ(t->token_type(4), TokenType::kByte);
  EXPECT_EQ(t->token_type(0), TokenType::kControl);  // <unk> is a special added token
}

TEST(HfSpmStyle, DecodersStripTheDummyPrefixOnce) {
  auto t = load_or_die(fixture("spm_style_llama2.json"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(decode_or_die(*t, {1, 19, 24}), "Hello world");
  EXPECT_EQ(decode_or_die(*t, {19, 24}), "Hello world");
  EXPECT_EQ(decode_or_die(*t, {1, 19, 6, 24, 3}), "Hello  world\n");
  EXPECT_EQ(decode_or_die(*t, {6, 4, 5, 14}), "é!");
  EXPECT_EQ(decode_or_die(*t, {24, 24}), "world world");  // strips only the first space
  EXPECT_EQ(decode_or_die(*t, {19, 2}), "Hello");         // </s> is special: nothing
  for (const Ids& ids : {Ids{1, 19, 6, 24, 3}, Ids{6, 4, 5, 14}, Ids{24, 24, 19}}) {
    EXPECT_EQ(decode_streaming(*t, ids), decode_or_die(*t, ids));
  }
}

TEST(HfSpmStyle, PrependNormalizerRunsPerSegment) {
  auto t = load_or_die(fixture("spm_style_llama2.json"));
  ASSERT_NE(t, nullptr);
  // HF's Prepend normalizer applies to each text segment between added tokens (the "legacy"
  // behaviour of Llama-2 tokenizer.json): "Hello" after <s> becomes "▁Hello" again.
  EXPECT_EQ(encode_or_die(*t, "Hello<s>Hello", false), (Ids{19, 1, 19}));
}

TEST(HfSpmStyle, MetaspacePrependsOnlyAtTheStart) {
  auto t = load_or_die(fixture("metaspace_style.json"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "hf-bpe-sentencepiece");
  EXPECT_EQ(encode_or_die(*t, "Hello world", true), (Ids{1, 19, 24}));
  // prepend_scheme "first": the segment after <s> does not start the text: "Hello" = 18.
  EXPECT_EQ(encode_or_die(*t, "Hello<s>Hello", false), (Ids{19, 1, 18}));
  // Metaspace does not prepend when the text already starts with a space.
  EXPECT_EQ(encode_or_die(*t, " Hello", false), (Ids{19}));
  // Metaspace decoder: the first token loses its "▁".
  EXPECT_EQ(decode_or_die(*t, {1, 19, 24}), "Hello world");
  EXPECT_EQ(decode_or_die(*t, {19, 1, 18}), "HelloHello");
}

TEST(HfSpmStyle, PieceAndTokenIdRoundTrip) {
  auto t = load_or_die(fixture("spm_style_llama2.json"));
  ASSERT_NE(t, nullptr);
  for (int32_t id = 0; id < t->vocab_size(); ++id) EXPECT_EQ(t->token_id(t->piece(id)), id);
  EXPECT_EQ(t->token_id("no such piece"), -1);
  EXPECT_EQ(t->piece(19), "\xE2\x96\x81Hello");
}

}  // namespace
}  // namespace qforge
