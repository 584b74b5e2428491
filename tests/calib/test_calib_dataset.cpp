// Calibration data loading (include/qforge/calib/calib_dataset.h) with the real llama-mix-16m
// SentencePiece tokenizer: plain text, JSONL, directories, seeded sample choice, and errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "qforge/calib/calib_dataset.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

class CalibDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path tok = test::shared_dir() / "models" / "llama-mix-16m" / "tokenizer.model";
    if (!fs::exists(tok)) GTEST_SKIP() << "needs ../shared/models/llama-mix-16m";
    auto t = load_tokenizer(tok.string());
    ASSERT_TRUE(t.ok()) << t.error().to_string();
    tokenizer_ = std::move(t).value();
    dir_ = fs::temp_directory_path() /
           ("qforge_calib_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  CalibConfig config(std::vector<std::string> paths, int64_t size, int64_t len) {
    CalibConfig c;
    c.paths = std::move(paths);
    c.calib_size = size;
    c.calib_max_seq_length = len;
    return c;
  }
  std::string story(int i) {
    return "Story " + std::to_string(i) +
           ": once upon a time a small robot learned to paint the sky with bright colors.";
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  fs::path dir_;
};

TEST_F(CalibDatasetTest, JsonlRecordsAreDocumentsJoinedByEos) {
  std::string jsonl;
  for (int i = 0; i < 40; ++i) jsonl += R"({"id": 1, "text": ")" + story(i) + "\"}\n";
  const fs::path file = write("data.jsonl", jsonl);
  auto ds = load_calib_dataset(config({file.string()}, 4, 32), *tokenizer_);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  ASSERT_EQ(ds.value().samples.size(), 4u);
  const int32_t eos = tokenizer_->eos_id(), bos = tokenizer_->bos_id();
  int64_t eos_seen = 0;
  for (const auto& s : ds.value().samples) {
    ASSERT_EQ(s.size(), 32u);
    EXPECT_EQ(s[0], bos);
    eos_seen += std::count(s.begin(), s.end(), eos);
  }
  EXPECT_GT(eos_seen, 0);  // record boundaries fall inside the samples
  // The stream: 40 records, 39 EOS between them, cut into 31-token bodies.
  auto one = tokenizer_->encode(story(0), false);
  EXPECT_GE(ds.value().total_tokens, 40 * static_cast<int64_t>(one.value().size()) + 39 - 40);
  EXPECT_EQ(ds.value().available_chunks, ds.value().total_tokens / 31);
}

TEST_F(CalibDatasetTest, SeededChoiceIsDeterministicAndInTextOrder) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += story(i) + "\n";
  const fs::path file = write("text.txt", text);
  auto a = load_calib_dataset(config({file.string()}, 5, 16), *tokenizer_);
  auto b = load_calib_dataset(config({file.string()}, 5, 16), *tokenizer_);
  CalibConfig other = config({file.string()}, 5, 16);
  other.seed = 7;
  auto c = load_calib_dataset(other, *tokenizer_);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a.value().samples, b.value().samples);
  EXPECT_NE(a.value().samples, c.value().samples);
  EXPECT_EQ(calib_dataset_fingerprint(a.value()), calib_dataset_fingerprint(b.value()));
  EXPECT_NE(calib_dataset_fingerprint(a.value()), calib_dataset_fingerprint(c.value()));
  EXPECT_GT(a.value().available_chunks, 5);

  // Asking for more samples than the text holds gives all of them.
  auto all = load_calib_dataset(config({file.string()}, 100000, 16), *tokenizer_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(static_cast<int64_t>(all.value().samples.size()), all.value().available_chunks);
}

TEST_F(CalibDatasetTest, DirectoriesReadTheirFilesInNameOrderAndSkipHiddenOnes) {
  fs::create_directories(dir_ / "d");
  std::ofstream(dir_ / "d" / "b.txt") << story(2) << "\n" << story(3);
  std::ofstream(dir_ / "d" / "a.txt") << story(0) << "\n" << story(1);
  std::ofstream(dir_ / "d" / ".hidden") << "not calibration text";
  auto ds = load_calib_dataset(config({(dir_ / "d").string()}, 8, 8), *tokenizer_);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  ASSERT_EQ(ds.value().files.size(), 2u);
  EXPECT_EQ(fs::path(ds.value().files[0]).filename(), "a.txt");
  EXPECT_EQ(fs::path(ds.value().files[1]).filename(), "b.txt");
}

// Several paths are several sets: calib_size splits evenly even when one set is far larger,
// a short set gives what it has and the rest make up the difference; every sample records its
// set and documents.
TEST_F(CalibDatasetTest, SeveralPathsAreMixedEvenly) {
  std::string big, small;
  std::string jsonl;
  for (int i = 0; i < 300; ++i) big += story(i) + "\n";
  for (int i = 0; i < 12; ++i) small += story(1000 + i) + "\n";
  for (int i = 0; i < 60; ++i) jsonl += R"({"text": ")" + story(2000 + i) + "\"}\n";
  const fs::path a = write("big.txt", big), b = write("small.txt", small);
  const fs::path c = write("docs.jsonl", jsonl);
  auto ds = load_calib_dataset(config({a.string(), b.string(), c.string()}, 12, 16), *tokenizer_);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  const CalibDataset& d = ds.value();
  ASSERT_EQ(d.sources.size(), 3u);
  ASSERT_EQ(d.samples.size(), 12u);
  EXPECT_EQ(d.sources[0].samples, 4);
  EXPECT_EQ(d.sources[1].samples, 4);
  EXPECT_EQ(d.sources[2].samples, 4);
  EXPECT_EQ(d.sources[0].documents, 1);   // a plain-text file is one document
  EXPECT_EQ(d.sources[2].documents, 60);  // one per JSONL record
  EXPECT_GT(d.sources[0].chunks, 10 * d.sources[1].chunks / 2);
  ASSERT_EQ(d.sample_source.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(d.sample_source[i], static_cast<int32_t>(i / 4));
  // Documents are numbered across the sets: big.txt 0, small.txt 1, the records 2..61.
  EXPECT_EQ(d.sample_first_document[0], 0);
  EXPECT_EQ(d.sample_first_document[4], 1);
  EXPECT_GE(d.sample_first_document[8], 2);
  // Each 15-token body of the JSONL set spans at least one record boundary or none; the four
  // samples touch between 4 and 12 distinct records, plus one document per plain-text set.
  const int64_t seen = calib_documents_seen(d);
  EXPECT_GE(seen, 2 + 4);
  EXPECT_LE(seen, 2 + 12);
  EXPECT_EQ(calib_documents_seen(d, {0, 1, 2, 3}), 1);
  EXPECT_EQ(calib_documents_seen(d, {0, 4}), 2);

  // A set too small for its share gives all its chunks; the others make up the rest.
  auto tiny = load_calib_dataset(config({a.string(), b.string()}, 80, 16), *tokenizer_);
  ASSERT_TRUE(tiny.ok());
  const int64_t small_chunks = tiny.value().sources[1].chunks;
  ASSERT_LT(small_chunks, 40);
  EXPECT_EQ(tiny.value().sources[1].samples, small_chunks);
  EXPECT_EQ(tiny.value().sources[0].samples, 80 - small_chunks);

  // mix_evenly = false: one stream of both files, as a single path always was.
  CalibConfig one = config({a.string(), b.string()}, 12, 16);
  one.mix_evenly = false;
  auto joined = load_calib_dataset(one, *tokenizer_);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined.value().sources.size(), 1u);
  EXPECT_EQ(joined.value().sources[0].documents, 2);
  EXPECT_EQ(joined.value().samples.size(), 12u);
}

TEST_F(CalibDatasetTest, ErrorsNameTheProblem) {
  const fs::path bad = write("bad.jsonl", "{\"text\": \"fine\"}\nnot json\n");
  auto r = load_calib_dataset(config({bad.string()}, 1, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("bad.jsonl:2 is not a JSON object"), std::string::npos)
      << r.error().to_string();

  const fs::path field = write("field.jsonl", "{\"content\": \"x\"}\n");
  r = load_calib_dataset(config({field.string()}, 1, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("--calib-text-field"), std::string::npos);

  r = load_calib_dataset(config({(dir_ / "missing.txt").string()}, 1, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("does not exist"), std::string::npos);

  r = load_calib_dataset(config({}, 1, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("--calib"), std::string::npos);

  r = load_calib_dataset(config({write("t.txt", story(0)).string()}, 0, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("calib_size 0"), std::string::npos);

  fs::create_directories(dir_ / "empty");
  r = load_calib_dataset(config({(dir_ / "empty").string()}, 1, 4), *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("holds no files"), std::string::npos);
}

// In-memory texts (CalibConfig::texts, the Python API's calib_dataset list) are documents like
// JSONL records: the same samples as the same texts in a file, their own set when mixed.
TEST_F(CalibDatasetTest, InMemoryTextsAreDocumentsLikeJsonlRecords) {
  std::string jsonl;
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) {
    jsonl += R"({"text": ")" + story(i) + "\"}\n";
    texts.push_back(story(i));
  }
  const fs::path file = write("data.jsonl", jsonl);
  auto from_file = load_calib_dataset(config({file.string()}, 4, 32), *tokenizer_);
  ASSERT_TRUE(from_file.ok()) << from_file.error().to_string();
  CalibConfig c = config({}, 4, 32);
  c.texts = texts;
  auto from_memory = load_calib_dataset(c, *tokenizer_);
  ASSERT_TRUE(from_memory.ok()) << from_memory.error().to_string();
  EXPECT_EQ(from_memory.value().samples, from_file.value().samples);
  EXPECT_EQ(from_memory.value().total_tokens, from_file.value().total_tokens);
  ASSERT_EQ(from_memory.value().sources.size(), 1u);
  EXPECT_EQ(from_memory.value().sources[0].path, "(40 in-memory texts)");
  EXPECT_EQ(from_memory.value().sources[0].documents, 40);

  // With a file too: two sets, calib_size split evenly, the texts' set last.
  c.paths = {file.string()};
  auto mixed = load_calib_dataset(c, *tokenizer_);
  ASSERT_TRUE(mixed.ok()) << mixed.error().to_string();
  ASSERT_EQ(mixed.value().sources.size(), 2u);
  EXPECT_EQ(mixed.value().sources[0].samples, 2);
  EXPECT_EQ(mixed.value().sources[1].samples, 2);
  // Concatenated: one stream of the file's documents then the texts (twice the tokens, plus the
  // EOS between the two halves).
  c.mix_evenly = false;
  auto concat = load_calib_dataset(c, *tokenizer_);
  ASSERT_TRUE(concat.ok()) << concat.error().to_string();
  ASSERT_EQ(concat.value().sources.size(), 1u);
  EXPECT_EQ(concat.value().sources[0].documents, 80);
  EXPECT_EQ(concat.value().total_tokens, 2 * from_file.value().total_tokens + 1);

  // Errors: only blank texts, invalid UTF-8.
  CalibConfig blank = config({}, 1, 4);
  blank.texts = {"  ", "\n"};
  auto r = load_calib_dataset(blank, *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("0 file(s) and 2 in-memory text(s) hold no text"),
            std::string::npos)
      << r.error().to_string();
  CalibConfig bad = config({}, 1, 4);
  bad.texts = {story(0), std::string("ok \xff\xfe")};
  r = load_calib_dataset(bad, *tokenizer_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("calibration: text #1"), std::string::npos)
      << r.error().to_string();
}

}  // namespace
}  // namespace qforge
