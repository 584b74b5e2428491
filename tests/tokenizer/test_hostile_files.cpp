// Hostile tokenizer files, generated here (one per failure class and format): each must give a
// clear error naming the file and the field at fault, never a crash or a huge allocation.
// tokenizer.json, llama2.c tokenizer.bin, SentencePiece .model, GGUF vocabularies, directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "qforge/io/gguf.h"
#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::ScratchDir;
using testing_tok::write_file;

struct BadFile {
  std::string name;    // file name (its extension selects the parser)
  std::string bytes;   // content
  std::string expect;  // a substring the error message must contain (the field)
};

// A small valid tokenizer.json body; `model_extra` and `extra` splice fields in.
std::string tokenizer_json(const std::string& vocab, const std::string& merges,
                           const std::string& model_extra = "", const std::string& extra = "") {
  return R"({"version": "1.0", )" + extra + R"("model": {"type": "BPE", "vocab": )" + vocab +
         R"(, "merges": )" + merges + model_extra + "}}";
}

const std::string kVocab = R"({"a": 0, "b": 1, "ab": 2})";

std::vector<BadFile> bad_tokenizer_json() {
  std::vector<BadFile> f;
  f.push_back(
      {"merge_unknown_piece.json", tokenizer_json(kVocab, R"(["a q"])"), "model.merges[0]"});
  f.push_back({"merge_result_missing.json", tokenizer_json(R"({"a": 0, "b": 1})", R"(["a b"])"),
               "'ab' is not in model.vocab"});
  f.push_back({"merge_pair_unknown.json", tokenizer_json(kVocab, R"([["a", "zz"]])"),
               "'zz' is not in model.vocab"});
  f.push_back(
      {"vocab_id_negative.json", tokenizer_json(R"({"a": -1})", "[]"), "model.vocab[\"a\"]"});
  f.push_back(
      {"vocab_id_huge.json", tokenizer_json(R"({"a": 4000000000})", "[]"), "model.vocab[\"a\"]"});
  f.push_back({"vocab_id_float.json", tokenizer_json(R"({"a": 1.5})", "[]"), "model.vocab[\"a\"]"});
  f.push_back(
      {"vocab_id_string.json", tokenizer_json(R"({"a": "0"})", "[]"), "model.vocab[\"a\"]"});
  f.push_back({"vocab_ids_sparse.json", tokenizer_json(R"({"a": 0, "b": 5000})", "[]"),
               "model.vocab[\"b\"]"});
  f.push_back(
      {"vocab_duplicate_id.json", tokenizer_json(R"({"a": 0, "b": 0})", "[]"), "gives id 0"});
  f.push_back({"vocab_not_object.json", tokenizer_json("[]", "[]"), "model.vocab"});
  f.push_back({"vocab_huge_piece.json",
               tokenizer_json("{\"" + std::string(70000, 'x') + "\": 0}", "[]"), "70000 bytes"});
  f.push_back({"deep_nesting.json", std::string(100000, '['), "nests deeper than 64"});
  f.push_back({"deep_nesting_objects.json",
               tokenizer_json(kVocab, "[]", "",
                              [] {
                                std::string s = "\"x\": ";
                                for (int i = 0; i < 70; ++i) s += "{\"y\": ";
                                s += "1";
                                for (int i = 0; i < 70; ++i) s += "}";
                                return s + ", ";
                              }()),
               "nests deeper than 64"});
  f.push_back({"not_json.json", "{ this is not json", "not valid JSON"});
  f.push_back(
      {"truncated.json", tokenizer_json(kVocab, R"(["a b"])").substr(0, 60), "not valid JSON"});
  f.push_back({"empty.json", "", "not valid JSON"});
  f.push_back({"invalid_utf8.json", tokenizer_json("{\"\xC3(\": 0}", "[]"), "not valid JSON"});
  f.push_back({"root_array.json", "[1, 2]", "(root)"});
  f.push_back({"missing_model.json", "{}", "'model'"});
  f.push_back({"model_unigram.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})",
               "model.type"});
  f.push_back({"merges_not_array.json", tokenizer_json(kVocab, "5"), "model.merges"});
  f.push_back({"merge_bad_element.json", tokenizer_json(kVocab, "[42]"), "model.merges[0]"});
  f.push_back(
      {"merge_three_parts.json", tokenizer_json(kVocab, R"(["a b ab"])"), "model.merges[0]"});
  f.push_back({"merge_pair_of_three.json", tokenizer_json(kVocab, R"([["a", "b", "c"]])"),
               "model.merges[0]"});
  f.push_back({"unk_not_in_vocab.json", tokenizer_json(kVocab, "[]", R"(, "unk_token": "<unk>")"),
               "model.unk_token"});
  f.push_back({"bool_wrong_type.json", tokenizer_json(kVocab, "[]", R"(, "byte_fallback": "yes")"),
               "model.byte_fallback"});
  f.push_back(
      {"added_token_id_out_of_range.json",
       tokenizer_json(kVocab, "[]", "",
                      R"("added_tokens": [{"id": 999999, "content": "<s>", "special": true}], )"),
       "added_tokens[0].id"});
  f.push_back({"added_token_empty.json",
               tokenizer_json(kVocab, "[]", "",
                              R"("added_tokens": [{"id": 1, "content": "", "special": true}], )"),
               "added_tokens[0].content"});
  f.push_back(
      {"template_id_out_of_range.json",
       tokenizer_json(
           kVocab, "[]", "",
           R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [77], "tokens": ["<s>"]}}}, )"),
       "post_processor.special_tokens.<s>.ids[0]"});
  f.push_back(
      {"template_missing_special.json",
       tokenizer_json(
           kVocab, "[]", "",
           R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<x>", "type_id": 0}}], "special_tokens": {}}, )"),
       "post_processor.special_tokens"});
  f.push_back(
      {"bad_regex.json",
       tokenizer_json(
           kVocab, "[]", "",
           R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}, )"),
       "pre_tokenizer.pattern.Regex"});
  f.push_back(
      {"bad_split_behavior.json",
       tokenizer_json(
           kVocab, "[]", "",
           R"("pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false}, )"),
       "pre_tokenizer.behavior"});
  f.push_back(
      {"unknown_pre_tokenizer.json",
       tokenizer_json(kVocab, "[]", "", R"("pre_tokenizer": {"type": "BertPreTokenizer"}, )"),
       "pre_tokenizer.type"});
  f.push_back(
      {"unknown_normalizer.json",
       tokenizer_json(
           kVocab, "[]", "",
           R"("normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled"}]}, )"),
       "normalizer.normalizers[0].type"});
  f.push_back({"unknown_decoder.json",
               tokenizer_json(kVocab, "[]", "", R"("decoder": {"type": "WordPiece"}, )"),
               "decoder.type"});
  f.push_back(
      {"strip_stop.json",
       tokenizer_json(kVocab, "[]", "",
                      R"("decoder": {"type": "Strip", "content": " ", "start": 0, "stop": 1}, )"),
       "decoder.stop"});
  f.push_back({"too_many_steps.json",
               tokenizer_json(kVocab, "[]", "",
                              [] {
                                std::string s =
                                    R"("normalizer": {"type": "Sequence", "normalizers": [)";
                                for (int i = 0; i < 100; ++i)
                                  s += std::string(i ? "," : "") + R"({"type": "NFC"})";
                                return s + "]}, ";
                              }()),
               "normalizer.normalizers"});
  return f;
}

std::string i32(int32_t v) {
  return std::string(reinterpret_cast<const char*>(&v), 4);
}
std::string f32(float v) {
  return std::string(reinterpret_cast<const char*>(&v), 4);
}
std::string token(float score, const std::string& piece) {
  return f32(score) + i32(static_cast<int32_t>(piece.size())) + piece;
}
std::string three_tokens() {
  return token(0, "<unk>") + token(0, "\n<s>\n") + token(0, "\n</s>\n");
}

std::vector<BadFile> bad_llama2c() {
  std::vector<BadFile> f;
  f.push_back({"too_short.bin", "ab", "too short"});
  f.push_back({"max_len_zero.bin", i32(0) + three_tokens(), "max_token_length is 0"});
  f.push_back({"max_len_negative.bin", i32(-5) + three_tokens(), "max_token_length is -5"});
  f.push_back({"max_len_huge.bin", i32(1 << 30) + three_tokens(), "max_token_length"});
  f.push_back({"length_past_end.bin", i32(8) + three_tokens() + f32(0) + i32(5) + "ab",
               "field length is 5"});
  f.push_back(
      {"length_negative.bin", i32(8) + three_tokens() + f32(0) + i32(-3), "field length is -3"});
  f.push_back({"length_over_max.bin", i32(4) + token(0, "<unk>"), "field length is 5"});
  f.push_back(
      {"score_nan.bin", i32(8) + three_tokens() + token(std::nanf(""), "x"), "field score"});
  f.push_back({"score_inf.bin",
               i32(8) + three_tokens() + token(std::numeric_limits<float>::infinity(), "x"),
               "field score"});
  f.push_back({"two_tokens.bin", i32(8) + token(0, "<unk>") + token(0, "<s>"), "at least"});
  f.push_back({"partial_header.bin", i32(8) + three_tokens() + "xyz", "needs 8 bytes"});
  return f;
}

std::vector<BadFile> bad_sentencepiece() {
  std::vector<BadFile> f;
  f.push_back({"empty.model", "", "no pieces"});
  f.push_back({"garbage.model", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "varint"});
  f.push_back({"length_past_end.model",
               std::string("\x0A\x7F"
                           "a",
                           3),
               "length 127"});
  f.push_back(
      {"piece_without_string.model", std::string("\x0A\x02\x18\x01", 4), "no piece string"});
  f.push_back({"truncated_varint.model", std::string("\x0A\x80", 2), "truncated varint"});
  f.push_back({"bad_wire_type.model", std::string("\x0F\x00", 2), "wire type"});
  // Well-formed protobuf, but not a usable model (a single normal piece, no <unk>).
  f.push_back({"no_unk.model",
               std::string("\x0A\x03\x0A\x01"
                           "a",
                           5),
               "libsentencepiece"});
  return f;
}

void expect_rejected(const ScratchDir& dir, const BadFile& bad) {
  const auto path = dir / bad.name;
  write_file(path, bad.bytes);
  auto t = load_tokenizer(path.string());
  ASSERT_FALSE(t.ok()) << bad.name << " was accepted";
  const std::string message = t.error().to_string();
  EXPECT_NE(message.find(bad.name), std::string::npos) << bad.name << ": " << message;
  EXPECT_NE(message.find(bad.expect), std::string::npos)
      << bad.name << ": expected '" << bad.expect << "' in: " << message;
}

TEST(HostileFiles, TokenizerJson) {
  ScratchDir dir;
  const auto files = bad_tokenizer_json();
  EXPECT_GE(files.size(), 30u);
  for (const BadFile& bad : files) expect_rejected(dir, bad);
}

TEST(HostileFiles, Llama2cTokenizerBin) {
  ScratchDir dir;
  for (const BadFile& bad : bad_llama2c()) expect_rejected(dir, bad);
  // The model's vocab_size must match the file exactly.
  const std::string ok = i32(8) + three_tokens() + token(-1, "a");
  const auto* bytes = reinterpret_cast<const std::byte*>(ok.data());
  auto more = parse_llama2c_tokenizer({bytes, ok.size()}, "hint.bin", 1000);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.error().message().find("vocab_size 1000"), std::string::npos);
  auto fewer = parse_llama2c_tokenizer({bytes, ok.size()}, "hint.bin", 3);
  ASSERT_FALSE(fewer.ok());
  EXPECT_NE(fewer.error().message().find("bytes left after token 3"), std::string::npos);
  auto exact = parse_llama2c_tokenizer({bytes, ok.size()}, "hint.bin", 4);
  ASSERT_TRUE(exact.ok()) << exact.error().to_string();
  EXPECT_EQ((*exact)->vocab_size(), 4);
}

TEST(HostileFiles, SentencePieceModel) {
  ScratchDir dir;
  for (const BadFile& bad : bad_sentencepiece()) expect_rejected(dir, bad);
}

// GGUF vocabularies written with the io module's GgufWriter, each with one fault.
TEST(HostileFiles, GgufVocabulary) {
  ScratchDir dir;
  const std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", "a"};
  const std::vector<float> scores = {0, 0, 0, -1};
  const std::vector<int32_t> types = {2, 3, 3, 1};
  struct Case {
    std::string name;
    std::string expect;
    std::function<void(GgufWriter&)> fill;
  };
  auto base = [&](GgufWriter& w, const std::string& model) {
    ASSERT_TRUE(w.set("general.architecture", GgufValue::string("llama")).ok());
    ASSERT_TRUE(w.set("tokenizer.ggml.model", GgufValue::string(model)).ok());
  };
  const std::vector<Case> cases = {
      {"model_gpt2.gguf", "tokenizer.ggml.model",
       [&](GgufWriter& w) {
         base(w, "gpt2");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
       }},
      {"missing_tokens.gguf", "tokenizer.ggml.tokens", [&](GgufWriter& w) { base(w, "llama"); }},
      {"tokens_not_array.gguf", "tokenizer.ggml.tokens",
       [&](GgufWriter& w) {
         base(w, "llama");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string("a")).ok());
       }},
      {"scores_short.gguf", "tokenizer.ggml.scores",
       [&](GgufWriter& w) {
         base(w, "llama");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
         ASSERT_TRUE(w.set("tokenizer.ggml.scores",
                           GgufValue::array_of<float>(GgufType::FLOAT32,
                                                      std::span<const float>(scores).first(2)))
                         .ok());
       }},
      {"token_type_bad.gguf", "tokenizer.ggml.token_type[3]",
       [&](GgufWriter& w) {
         base(w, "llama");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
         const std::vector<int32_t> bad = {2, 3, 3, 9};
         ASSERT_TRUE(
             w.set("tokenizer.ggml.token_type", GgufValue::array_of<int32_t>(GgufType::INT32, bad))
                 .ok());
       }},
      {"bos_out_of_range.gguf", "tokenizer.ggml.bos_token_id",
       [&](GgufWriter& w) {
         base(w, "llama");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
         ASSERT_TRUE(w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(99)).ok());
       }},
      {"bool_wrong_type.gguf", "tokenizer.ggml.add_bos_token",
       [&](GgufWriter& w) {
         base(w, "llama");
         ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
         ASSERT_TRUE(w.set("tokenizer.ggml.add_bos_token", GgufValue::string("yes")).ok());
       }},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    c.fill(w);
    ASSERT_TRUE(w.write(dir / c.name).ok()) << c.name;
    auto t = load_tokenizer((dir / c.name).string());
    ASSERT_FALSE(t.ok()) << c.name << " was accepted";
    const std::string message = t.error().to_string();
    EXPECT_NE(message.find(c.name), std::string::npos) << message;
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.name << ": " << message;
  }
  // A good one, for contrast.
  GgufWriter w;
  base(w, "llama");
  ASSERT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array(pieces)).ok());
  ASSERT_TRUE(
      w.set("tokenizer.ggml.scores", GgufValue::array_of<float>(GgufType::FLOAT32, scores)).ok());
  ASSERT_TRUE(
      w.set("tokenizer.ggml.token_type", GgufValue::array_of<int32_t>(GgufType::INT32, types))
          .ok());
  ASSERT_TRUE(w.write(dir / "good.gguf").ok());
  auto good = load_tokenizer((dir / "good.gguf").string());
  ASSERT_TRUE(good.ok()) << good.error().to_string();
  EXPECT_EQ((*good)->vocab_size(), 4);
  // Truncated GGUF: the reader's own error, naming the file.
  const std::string bytes = testing_tok::read_file(dir / "good.gguf");
  write_file(dir / "truncated.gguf", bytes.substr(0, bytes.size() / 2));
  auto truncated = load_tokenizer((dir / "truncated.gguf").string());
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().to_string().find("truncated.gguf"), std::string::npos);
}

TEST(HostileFiles, PathsAndDirectories) {
  ScratchDir dir;
  auto missing = load_tokenizer((dir / "nope.json").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto empty_dir = load_tokenizer(dir.path().string());
  ASSERT_FALSE(empty_dir.ok());
  EXPECT_NE(empty_dir.error().message().find("no tokenizer in directory"), std::string::npos);
  write_file(dir / "tok512.bin", "");
  write_file(dir / "tok1024.bin", "");
  auto ambiguous = load_tokenizer(dir.path().string());
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.error().message().find("tok1024.bin, tok512.bin"), std::string::npos);
  write_file(dir / "weird.txt", "hello");
  auto unknown = load_tokenizer((dir / "weird.txt").string());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("cannot tell the format"), std::string::npos);
}

// Directory dispatch order: tokenizer.json, then tokenizer.model, then tokenizer.bin / tok*.bin.
TEST(LoadTokenizer, DirectoryPreferenceOrder) {
  ScratchDir dir;
  const std::string bin = i32(8) + three_tokens() + token(-1, " ") + token(-2, "a");
  write_file(dir / "tok4.bin", bin);
  auto t = load_tokenizer(dir.path().string());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ((*t)->kind(), "llama2c");
  write_file(dir / "tokenizer.json",
             testing_tok::read_file(testing_tok::fixture("spm_style_llama2.json")));
  t = load_tokenizer(dir.path().string());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ((*t)->kind(), "hf-bpe-sentencepiece");
  // tokenizer_config.json next to tokenizer.json names bos/eos.
  write_file(dir / "tokenizer_config.json",
             R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}})");
  t = load_tokenizer(dir.path().string());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ((*t)->eos_id(), 2);
}

}  // namespace
}  // namespace qforge
