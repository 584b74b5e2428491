// MmapFile (contents, empty files, errors, ranges) and atomic writes (nothing half-written under
// the final name, temp files cleaned up on abandonment).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "qforge/core/mmap_file.h"
#include "qforge/core/rng.h"
#include "qforge/core/tensor.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

class MmapFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("qforge_test_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> dir_entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  static std::string read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
};

std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng.next_u64() >> 56);
  return out;
}

TEST_F(MmapFileTest, MapsExactlyTheBytesWritten) {
  const auto bytes = random_bytes((1 << 20) + 123, 1);
  const fs::path path = dir_ / "blob.bin";
  ASSERT_TRUE(write_file_atomic(path, bytes).ok());
  auto file = MmapFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  ASSERT_EQ(file->size(), bytes.size());
  EXPECT_EQ(std::memcmp(file->data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(file->path(), path);
  EXPECT_TRUE(file->advise_sequential().ok());
  EXPECT_TRUE(file->advise_willneed().ok());
  EXPECT_TRUE(file->advise_willneed(5000, 100000).ok());
  EXPECT_TRUE(file->advise_willneed(file->size() + 10).ok());
}

TEST_F(MmapFileTest, EmptyFileNeedsNoMapping) {
  const fs::path path = dir_ / "empty.bin";
  ASSERT_TRUE(write_file_atomic(path, std::string_view()).ok());
  auto file = MmapFile::open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->size(), 0u);
  EXPECT_EQ(file->data(), nullptr);
  EXPECT_TRUE(file->bytes().empty());
  EXPECT_TRUE(file->advise_sequential().ok());
  EXPECT_TRUE(file->range(0, 0).ok());
  EXPECT_FALSE(file->range(0, 1).ok());
}

TEST_F(MmapFileTest, ErrorsNameThePathAndTheReason) {
  const fs::path missing = dir_ / "missing.safetensors";
  auto r = MmapFile::open(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(missing.string()), std::string::npos);
  EXPECT_NE(r.error().message().find("No such file"), std::string::npos);

  auto d = MmapFile::open(dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(d.error().message().find("not a regular file"), std::string::npos);
}

TEST_F(MmapFileTest, RangeIsBoundsChecked) {
  const fs::path path = dir_ / "ten.bin";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("0123456789")).ok());
  auto file = MmapFile::open(path).value();
  auto mid = file.range(3, 4);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(mid->data()), mid->size()), "3456");
  EXPECT_TRUE(file.range(10, 0).ok());
  auto past = file.range(8, 3);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().code(), ErrorCode::kFormat);
  EXPECT_NE(past.error().message().find("ten.bin"), std::string::npos);
  EXPECT_NE(past.error().message().find("10 bytes"), std::string::npos);
  EXPECT_FALSE(file.range(UINT64_MAX, 2).ok());
  EXPECT_FALSE(file.range(2, UINT64_MAX).ok());
}

TEST_F(MmapFileTest, MoveTransfersTheMapping) {
  const fs::path path = dir_ / "m.bin";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("hello")).ok());
  auto a = MmapFile::open(path).value();
  const std::byte* data = a.data();
  MmapFile b = std::move(a);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.data(), nullptr);
  MmapFile c;
  c = std::move(b);
  EXPECT_EQ(std::memcmp(c.data(), "hello", 5), 0);
}

TEST_F(MmapFileTest, TensorCanAdoptAMapping) {
  std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 8.0f, -0.5f};
  const fs::path path = dir_ / "t.bin";
  ASSERT_TRUE(write_file_atomic(path, std::as_bytes(std::span<const float>(values))).ok());
  auto file = std::make_shared<MmapFile>(MmapFile::open(path).value());
  std::weak_ptr<MmapFile> watch = file;
  auto t = Tensor::adopt(file, file->bytes(), DType::F32, {2, 3});
  ASSERT_TRUE(t.ok());
  file.reset();
  EXPECT_FALSE(t->writable());
  EXPECT_EQ(t->view().at<const float>(1, 0), 0.0f);
  EXPECT_EQ(t->view().at<const float>(0, 2), 3.25f);
  *t = Tensor();
  EXPECT_TRUE(watch.expired());
}

TEST_F(MmapFileTest, AbandonedWriterLeavesNoFile) {
  const fs::path path = dir_ / "model.safetensors";
  {
    auto writer = AtomicFileWriter::create(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->write(std::string_view("partial header")).ok());
    EXPECT_TRUE(fs::exists(writer->temp_path()));
    EXPECT_FALSE(fs::exists(path));
    EXPECT_EQ(writer->temp_path().parent_path(), path.parent_path());
    EXPECT_EQ(writer->temp_path().filename().string().rfind("model.safetensors.tmp.", 0), 0u);
  }
  EXPECT_TRUE(dir_entries().empty());
}

TEST_F(MmapFileTest, CommittedWriterLeavesTheWholeFile) {
  const fs::path path = dir_ / "out.bin";
  const auto bytes = random_bytes(300000, 2);
  auto writer = AtomicFileWriter::create(path).value();
  ASSERT_TRUE(writer.write(std::span<const std::byte>(bytes).first(1000)).ok());
  ASSERT_TRUE(writer.write(std::span<const std::byte>(bytes).subspan(1000)).ok());
  EXPECT_EQ(writer.bytes_written(), bytes.size());
  ASSERT_TRUE(writer.commit().ok());
  EXPECT_TRUE(writer.committed());
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"out.bin"});
  const std::string on_disk = read_all(path);
  ASSERT_EQ(on_disk.size(), bytes.size());
  EXPECT_EQ(std::memcmp(on_disk.data(), bytes.data(), bytes.size()), 0);

  // Committing twice or writing after commit is an error, and the file stays intact.
  EXPECT_FALSE(writer.commit().ok());
  EXPECT_FALSE(writer.write(std::string_view("x")).ok());
  writer.abandon();
  EXPECT_EQ(read_all(path).size(), bytes.size());
}

TEST_F(MmapFileTest, ReplacingKeepsTheOldFileUntilCommit) {
  const fs::path path = dir_ / "config.json";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("{\"old\": true}")).ok());
  auto writer = AtomicFileWriter::create(path).value();
  ASSERT_TRUE(writer.write(std::string_view("{\"new\": true}")).ok());
  EXPECT_EQ(read_all(path), "{\"old\": true}");
  ASSERT_TRUE(writer.commit().ok());
  EXPECT_EQ(read_all(path), "{\"new\": true}");

  auto abandoned = AtomicFileWriter::create(path).value();
  ASSERT_TRUE(abandoned.write(std::string_view("garbage")).ok());
  abandoned.abandon();
  abandoned.abandon();
  EXPECT_EQ(read_all(path), "{\"new\": true}");
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"config.json"});
}

TEST_F(MmapFileTest, WritersOfOnePathUseDistinctTempFiles) {
  const fs::path path = dir_ / "same.bin";
  auto a = AtomicFileWriter::create(path).value();
  auto b = AtomicFileWriter::create(path).value();
  EXPECT_NE(a.temp_path(), b.temp_path());
  AtomicFileWriter moved = std::move(a);
  EXPECT_TRUE(fs::exists(moved.temp_path()));
  ASSERT_TRUE(moved.write(std::string_view("a")).ok());
  ASSERT_TRUE(moved.commit().ok());
  b.abandon();
  EXPECT_EQ(read_all(path), "a");
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"same.bin"});
}

TEST_F(MmapFileTest, StaleTempsOfAKilledWriterAreSweptAndNothingElse) {
  // What a SIGKILL mid-write leaves: the writer's temp file, named by a pid that is gone.
  const fs::path temp = [&] {
    auto w = AtomicFileWriter::create(dir_ / "model.safetensors").value();
    return w.temp_path();
  }();
  const auto killed = temp.parent_path() / "model.safetensors.tmp.999999.3";
  ASSERT_TRUE(write_file_atomic(dir_ / "model.safetensors", std::string_view("kept")).ok());
  std::ofstream(killed) << "half";
  std::ofstream(dir_ / "x.tmp.12.") << "not ours: no sequence";
  std::ofstream(dir_ / ".tmp.1.2") << "not ours: no name";
  std::ofstream(dir_ / "notes.tmp.a.2") << "not ours: pid not a number";
  fs::create_directory(dir_ / "sub.tmp.1.2");  // a directory is never removed
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(AtomicFileWriter::remove_stale_temps(dir_), 1u);
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{".tmp.1.2", "model.safetensors",
                                                     "notes.tmp.a.2", "sub.tmp.1.2", "x.tmp.12."}));
  EXPECT_EQ(AtomicFileWriter::remove_stale_temps(dir_ / "missing"), 0u);
}

TEST_F(MmapFileTest, CreateInMissingDirectoryNamesIt) {
  const fs::path path = dir_ / "no_such_dir" / "x.bin";
  auto r = AtomicFileWriter::create(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("no_such_dir"), std::string::npos);
  EXPECT_FALSE(write_file_atomic(path, std::string_view("x")).ok());
  EXPECT_FALSE(AtomicFileWriter::create(dir_ / "").ok());
}

}  // namespace
}  // namespace qforge
