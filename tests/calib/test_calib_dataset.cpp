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

}  // namespace
}  // namespace qforge
