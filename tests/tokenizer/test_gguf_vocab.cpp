// The Llama-2 vocabulary embedded in llama.cpp's ggml-vocab-llama-spm.gguf: it loads with 32,000
// tokens, gives the ids the real Llama-2 tokenizer gives ("Hello world" -> 1 15043 3186), and
// agrees with libsentencepiece running the same vocabulary (a ModelProto written here from the
// GGUF pieces, scores and types: BPE, byte_fallback, identity normalizer, dummy prefix) on text.
#include <gtest/gtest.h>

#include <cstring>

#include "qforge/io/gguf.h"
#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::data_dir;
using testing_tok::decode_or_die;
using testing_tok::encode_or_die;
using testing_tok::load_or_die;
using testing_tok::models_dir;
using Ids = std::vector<int32_t>;

std::filesystem::path llama2_gguf() {
  return models_dir() / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf";
}

// Minimal protobuf writer for sentencepiece_model.proto.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, uint32_t wire) {
  put_varint(out, (field << 3) | wire);
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_float(std::string& out, uint32_t field, float v) {
  put_key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

// ModelProto for the Llama-2 recipe from a tokenizer's pieces, scores and types.
std::string model_proto_from(const Tokenizer& t, int model_type = 2) {
  std::string proto;
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    std::string piece;
    put_bytes(piece, 1, t.piece(id));
    put_float(piece, 2, t.token_score(id));
    put_int(piece, 3, static_cast<int>(t.token_type(id)));
    put_bytes(proto, 1, piece);
  }
  std::string trainer;
  put_int(trainer, 3, model_type);  // 1 UNIGRAM, 2 BPE
  put_int(trainer, 4, t.vocab_size());
  put_int(trainer, 35, 1);   // byte_fallback
  put_int(trainer, 40, 0);   // unk_id
  put_int(trainer, 41, 1);   // bos_id
  put_int(trainer, 42, 2);   // eos_id
  put_int(trainer, 43, -1);  // pad_id
  put_bytes(proto, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_int(normalizer, 3, 1);  // add_dummy_prefix
  put_int(normalizer, 4, 0);  // remove_extra_whitespaces
  put_int(normalizer, 5, 1);  // escape_whitespaces
  put_bytes(proto, 3, normalizer);
  return proto;
}

TEST(GgufVocab, Llama2LoadsWith32000Tokens) {
  QF_TOK_REQUIRE_SHARED();
  auto t = load_or_die(llama2_gguf());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "gguf-llama");
  EXPECT_EQ(t->vocab_size(), 32000);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->piece(0), "<unk>");
  EXPECT_EQ(t->piece(1), "<s>");
  EXPECT_EQ(t->piece(13), "<0x0A>");
  EXPECT_EQ(t->piece(278), "\xE2\x96\x81the");
  EXPECT_EQ(t->piece(15043), "\xE2\x96\x81Hello");
  EXPECT_EQ(t->piece(3186), "\xE2\x96\x81world");
  EXPECT_EQ(t->piece(29871), "\xE2\x96\x81");
  EXPECT_EQ(t->token_type(1), TokenType::kControl);
  EXPECT_EQ(t->token_type(13), TokenType::kByte);
  EXPECT_EQ(t->token_type(278), TokenType::kNormal);
}

TEST(GgufVocab, Llama2KnownIds) {
  QF_TOK_REQUIRE_SHARED();
  auto t = load_or_die(llama2_gguf());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(encode_or_die(*t, "Hello world", true), (Ids{1, 15043, 3186}));
  EXPECT_EQ(encode_or_die(*t, "Hello world", false), (Ids{15043, 3186}));
  // The well-known Llama-2 quirk: a lone newline is "▁" + <0x0A>.
  EXPECT_EQ(encode_or_die(*t, "\n", true), (Ids{1, 29871, 13}));
  EXPECT_EQ(encode_or_die(*t, " Hello", false), (Ids{29871, 15043}));
  EXPECT_EQ(encode_or_die(*t, "", true), (Ids{1}));
  EXPECT_EQ(decode_or_die(*t, {1, 15043, 3186}), "Hello world");
  EXPECT_EQ(decode_or_die(*t, {1, 29871, 13}), "\n");
}

TEST(GgufVocab, Llama2AgreesWithSentencePieceOnRealText) {
  QF_TOK_REQUIRE_SHARED();
  auto t = load_or_die(llama2_gguf());
  ASSERT_NE(t, nullptr);
  const std::string proto = model_proto_from(*t);
  auto sp = parse_sentencepiece_model(
      std::span(reinterpret_cast<const std::byte*>(proto.data()), proto.size()), "llama2 proto");
  ASSERT_TRUE(sp.ok()) << sp.error().to_string();
  EXPECT_EQ((*sp)->vocab_size(), 32000);
  EXPECT_EQ(encode_or_die(**sp, "Hello world", true), (Ids{1, 15043, 3186}));
  std::vector<std::string> texts = testing_tok::tinystories(20);
  for (const auto& line :
       testing_tok::text_lines(data_dir() / "wikitext-2-raw" / "wiki.test.raw", 150000)) {
    texts.push_back(line);
  }
  texts.push_back("naïve café — 日本語 😀 \t tabs\n\n  two spaces, digits 1234567 and ½ ☃");
  size_t tokens = 0;
  for (const std::string& text : texts) {
    const Ids a = encode_or_die(*t, text, true);
    const Ids b = encode_or_die(**sp, text, true);
    ASSERT_EQ(a, b) << "text: " << text.substr(0, 200);
    EXPECT_EQ(decode_or_die(*t, a), decode_or_die(**sp, b));
    tokens += a.size();
  }
  EXPECT_GT(tokens, 30000u);
}

// A Unigram model is named as such, and not exported as BPE (its scores are not merge ranks).
TEST(GgufVocab, UnigramModelIsNotExportedAsBpe) {
  QF_TOK_REQUIRE_SHARED();
  auto t = load_or_die(llama2_gguf());
  ASSERT_NE(t, nullptr);
  const std::string proto = model_proto_from(*t, 1);
  auto sp = parse_sentencepiece_model(
      std::span(reinterpret_cast<const std::byte*>(proto.data()), proto.size()), "unigram proto");
  ASSERT_TRUE(sp.ok()) << sp.error().to_string();
  EXPECT_EQ((*sp)->kind(), "sentencepiece-unigram");
  auto json = export_tokenizer_json(**sp, TokenizerJsonStyle::kSentencePieceBpe);
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.error().code(), ErrorCode::kUnsupported);
  // The GGUF vocabulary itself exports (BPE by scores).
  auto gguf_json = export_tokenizer_json(*t, TokenizerJsonStyle::kSentencePieceBpe);
  ASSERT_TRUE(gguf_json.ok()) << gguf_json.error().to_string();
  auto hf = parse_tokenizer_json(*gguf_json, "llama-2 tokenizer.json (exported)");
  ASSERT_TRUE(hf.ok()) << hf.error().to_string();
  EXPECT_EQ(encode_or_die(**hf, "Hello world", true), (Ids{1, 15043, 3186}));
  EXPECT_EQ(encode_or_die(**hf, "\n", true), (Ids{1, 29871, 13}));
}

}  // namespace
}  // namespace qforge
