// The shared real tokenizers: llama-mix-16m's SentencePiece model against its reference.json,
// stories260K / aidreams260K tok512.bin against their reference_greedy.json, tok512.bin vs
// tok512.model on TinyStories' first 100 stories, and a tokenizer.json built from the llama-mix
// .model (merges ordered by piece score) giving the same ids as the .model on real text.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::data_dir;
using testing_tok::decode_or_die;
using testing_tok::decode_streaming;
using testing_tok::encode_or_die;
using testing_tok::load_or_die;
using testing_tok::models_dir;
using testing_tok::read_file;
using Ids = std::vector<int32_t>;

Ids json_ids(const nlohmann::json& j) {
  return j.get<Ids>();
}

TEST(RealTokenizers, LlamaMixPromptsMatchReference) {
  QF_TOK_REQUIRE_SHARED();
  // The directory has no tokenizer.json: load_tokenizer picks tokenizer.model.
  auto t = load_or_die(models_dir() / "llama-mix-16m");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "sentencepiece");
  EXPECT_EQ(t->vocab_size(), 8000);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  const auto ref =
      nlohmann::json::parse(read_file(models_dir() / "llama-mix-16m" / "reference.json"));
  int checked = 0;
  for (const auto& [prompt, entry] : ref.at("greedy").items()) {
    const Ids prompt_ids = json_ids(entry.at("prompt_ids"));
    EXPECT_EQ(encode_or_die(*t, prompt, true), prompt_ids) << prompt;
    // The recorded text is the decoded continuation (output ids after the prompt).
    const Ids output = json_ids(entry.at("output_ids"));
    const Ids continuation(output.begin() + static_cast<ptrdiff_t>(prompt_ids.size()),
                           output.end());
    EXPECT_EQ(decode_or_die(*t, continuation), entry.at("text").get<std::string>()) << prompt;
    EXPECT_EQ(decode_streaming(*t, output), decode_or_die(*t, output));
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

void check_llama2c_reference(const std::string& model) {
  auto t = load_or_die(models_dir() / model / "tok512.bin");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "llama2c");
  EXPECT_EQ(t->vocab_size(), 512);
  const auto ref = nlohmann::json::parse(read_file(models_dir() / model / "reference_greedy.json"));
  const std::string prompt = ref.at("prompt").get<std::string>();
  EXPECT_EQ(encode_or_die(*t, prompt, true), json_ids(ref.at("prompt_ids_with_bos"))) << model;
  const Ids all = json_ids(ref.at("all_ids"));
  ASSERT_FALSE(all.empty());
  ASSERT_EQ(all[0], 1);
  // decoded_text_after_bos: the ids after BOS, decoded as run.c prints them (no BOS before the
  // first piece, so its leading space stays).
  const Ids after_bos(all.begin() + 1, all.end());
  EXPECT_EQ(decode_or_die(*t, after_bos), ref.at("decoded_text_after_bos").get<std::string>());
  // With the BOS, run.c drops the space after it.
  std::string with_bos = ref.at("decoded_text_after_bos").get<std::string>();
  ASSERT_EQ(with_bos[0], ' ');
  EXPECT_EQ(decode_or_die(*t, all), with_bos.substr(1));
  EXPECT_EQ(decode_streaming(*t, all), decode_or_die(*t, all));
}

TEST(RealTokenizers, Stories260KPromptMatchesReference) {
  QF_TOK_REQUIRE_SHARED();
  check_llama2c_reference("stories260K");
}

TEST(RealTokenizers, AiDreams260KPromptMatchesReference) {
  QF_TOK_REQUIRE_SHARED();
  check_llama2c_reference("aidreams260K");
}

TEST(RealTokenizers, Tok512BinEqualsTok512ModelOnTinyStories) {
  QF_TOK_REQUIRE_SHARED();
  auto bin = load_or_die(models_dir() / "stories260K" / "tok512.bin");
  auto model = load_or_die(models_dir() / "stories260K" / "tok512.model");
  ASSERT_NE(bin, nullptr);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->kind(), "sentencepiece");
  const auto stories = testing_tok::tinystories(100);
  ASSERT_EQ(stories.size(), 100u);
  size_t tokens = 0;
  for (size_t i = 0; i < stories.size(); ++i) {
    const Ids a = encode_or_die(*bin, stories[i], true);
    const Ids b = encode_or_die(*model, stories[i], true);
    ASSERT_EQ(a, b) << "story " << i;
    tokens += a.size();
    EXPECT_EQ(decode_or_die(*bin, a), stories[i]) << "story " << i;
  }
  EXPECT_GT(tokens, 15000u);  // ~190 tokens per story with a 512-piece vocabulary
  // Both agree on every piece and score too (the SOURCES.md check, re-done).
  for (int32_t id = 3; id < 512; ++id) {
    EXPECT_EQ(bin->token_score(id), model->token_score(id)) << id;
  }
}

// A tokenizer.json built from the .model's pieces and scores must give the .model's ids.
TEST(RealTokenizers, TokenizerJsonFromLlamaMixModelMatchesSentencePiece) {
  QF_TOK_REQUIRE_SHARED();
  auto model = load_or_die(models_dir() / "llama-mix-16m" / "tokenizer.model");
  ASSERT_NE(model, nullptr);
  auto json = export_tokenizer_json(*model, TokenizerJsonStyle::kSentencePieceBpe);
  ASSERT_TRUE(json.ok()) << json.error().to_string();
  auto hf = parse_tokenizer_json(*json, "llama-mix-16m tokenizer.json (exported)");
  ASSERT_TRUE(hf.ok()) << hf.error().to_string();
  EXPECT_EQ((*hf)->kind(), "hf-bpe-sentencepiece");
  EXPECT_EQ((*hf)->vocab_size(), 8000);
  EXPECT_EQ((*hf)->bos_id(), 1);
  size_t lines = 0, tokens = 0;
  auto compare = [&](const std::string& text) {
    const Ids a = encode_or_die(*model, text, true);
    const Ids b = encode_or_die(**hf, text, true);
    ASSERT_EQ(a, b) << "text: " << text.substr(0, 200);
    EXPECT_EQ(decode_or_die(**hf, b), decode_or_die(*model, a));
    ++lines;
    tokens += a.size();
  };
  for (const std::string& s : testing_tok::tinystories(30)) compare(s);
  const std::pair<const char*, size_t> sources[] = {{"wikitext-2-raw/wiki.test.raw", 400000},
                                                    {"sotu/sotu_heldout_2012_2021.txt", 100000},
                                                    {"moby-dick/moby_dick.txt", 100000},
                                                    {"tinyshakespeare/input.txt", 50000}};
  for (const auto& [file, bytes] : sources) {
    for (const auto& line : testing_tok::text_lines(data_dir() / file, bytes)) compare(line);
  }
  compare("naïve café — 日本語 😀 \t tabs\n\n  two spaces, digits 1234567 and ½");
  EXPECT_GT(tokens, 150000u);
  EXPECT_GT(lines, 3000u);
}

// The same vocabulary re-spelled as byte-level BPE: every text round-trips exactly.
TEST(RealTokenizers, ByteLevelExportRoundTripsRealText) {
  QF_TOK_REQUIRE_SHARED();
  auto model = load_or_die(models_dir() / "llama-mix-16m" / "tokenizer.model");
  ASSERT_NE(model, nullptr);
  auto json = export_tokenizer_json(*model, TokenizerJsonStyle::kByteLevelBpe);
  ASSERT_TRUE(json.ok()) << json.error().to_string();
  auto hf = parse_tokenizer_json(*json, "llama-mix-16m byte-level tokenizer.json (exported)");
  ASSERT_TRUE(hf.ok()) << hf.error().to_string();
  EXPECT_EQ((*hf)->kind(), "hf-bpe-bytelevel");
  const std::string text =
      read_file(data_dir() / "wikitext-2-raw" / "wiki.test.raw").substr(0, 200000) +
      "naïve café — 日本語 😀 \t\r\n";
  const Ids ids = encode_or_die(**hf, text, false);
  EXPECT_EQ(decode_or_die(**hf, ids), text);
  EXPECT_LT(ids.size(), text.size() / 3);  // real merges happen: well under one token per byte
  // " the" is one token, spelled "Ġthe".
  const Ids the = encode_or_die(**hf, " the", false);
  ASSERT_EQ(the.size(), 1u);
  EXPECT_EQ((*hf)->piece(the[0]), "Ġthe");
}

// One tokenizer serves concurrent encode() calls (shared word caches, per-thread scratch).
TEST(RealTokenizers, ConcurrentEncodeMatchesSerial) {
  QF_TOK_REQUIRE_SHARED();
  std::vector<std::unique_ptr<Tokenizer>> tokenizers;
  tokenizers.push_back(load_or_die(models_dir() / "stories260K" / "tok512.bin"));
  tokenizers.push_back(load_or_die(models_dir() / "llama-mix-16m"));
  tokenizers.push_back(
      load_or_die(models_dir() / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf"));
  auto json = export_tokenizer_json(*tokenizers[2], TokenizerJsonStyle::kByteLevelBpe);
  ASSERT_TRUE(json.ok());
  auto hf = parse_tokenizer_json(*json, "exported");
  ASSERT_TRUE(hf.ok());
  tokenizers.push_back(std::move(hf).value());
  const auto stories = testing_tok::tinystories(40);
  for (const auto& t : tokenizers) {
    ASSERT_NE(t, nullptr);
    std::vector<Ids> serial;
    for (const auto& s : stories) serial.push_back(t->encode(s, true).value());
    std::vector<std::vector<Ids>> parallel(4, std::vector<Ids>(stories.size()));
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
      threads.emplace_back([&, k] {
        for (size_t i = 0; i < stories.size(); ++i) {
          const size_t j = (i + static_cast<size_t>(k) * 7) % stories.size();
          auto ids = t->encode(stories[j], true);
          if (ids.ok()) parallel[k][j] = *ids;
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int k = 0; k < 4; ++k) EXPECT_EQ(parallel[k], serial) << t->kind() << " thread " << k;
  }
}

}  // namespace
}  // namespace qforge
