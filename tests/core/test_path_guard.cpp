// Output-path guards (issue 15, causes 3 and 4): an output that is, holds or lies inside an input
// is refused (symbolic links and ".." resolved); an atomic write never renames over a device
// node, a FIFO or a symbolic link; inputs that are FIFOs or devices are refused without blocking;
// text inputs are size-capped and must be UTF-8.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qforge/core/mmap_file.h"
#include "qforge/core/path_guard.h"
#include "qforge/core/text_file.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

class Scratch {
 public:
  Scratch() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("qforge_guard_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// A character device node like /dev/null (mknod needs root; a FIFO stands in otherwise).
bool make_device_copy(const fs::path& p) {
  if (::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) return true;
  return ::mkfifo(p.c_str(), 0666) == 0;
}

Status guard(const fs::path& out, std::vector<fs::path> inputs,
             OutputKind kind = OutputKind::kDirectory) {
  return check_output_path(out, inputs, kind, "--output");
}

TEST(PathGuard, OutputEqualContainingOrInsideAnInputIsRefused) {
  Scratch s;
  const fs::path model = s / "model";
  fs::create_directories(model / "sub");
  write(model / "config.json", "{}");
  write(s / "calib.txt", "text");
  const std::vector<fs::path> inputs = {model, s / "calib.txt"};
  struct Case {
    fs::path out;
    const char* relation;
  };
  const Case cases[] = {
      {model, "is the input"},
      {model / "", "is the input"},
      {model / "sub" / "..", "is the input"},
      {s.path(), "contains the input"},
      {model / "..", "contains the input"},
      {s.path() / "." / "model" / ".." / "..", "contains the input"},
      {model / "config.json", "is inside the input"},
      {model / "out", "is inside the input"},
      {s / "calib.txt", "is the input"},
      {fs::path("/"), "contains the input"},
  };
  for (const Case& c : cases) {
    const Status st = guard(c.out, inputs);
    ASSERT_FALSE(st.ok()) << c.out;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message().find(c.relation), std::string::npos)
        << c.out << ": " << st.error().message();
  }
  EXPECT_TRUE(guard(s / "model-fp8", inputs).ok());
  EXPECT_TRUE(guard(s / "modelx", inputs).ok());  // a sibling whose name extends the input's
  EXPECT_TRUE(guard(s / "new" / "deep" / "out", inputs).ok());
}

TEST(PathGuard, SymbolicLinksAreResolved) {
  Scratch s;
  fs::create_directories(s / "model");
  write(s / "model" / "w.safetensors", "x");
  fs::create_directory_symlink(s / "model", s / "link-to-model");
  fs::create_directory_symlink(s.path(), s / "model" / "up");
  const std::vector<fs::path> inputs = {s / "model"};
  EXPECT_FALSE(guard(s / "link-to-model", inputs).ok());
  EXPECT_FALSE(guard(s / "link-to-model" / "x", inputs).ok());
  // The input given through a link, the output by its real name.
  EXPECT_FALSE(guard(s / "model", {s / "link-to-model"}).ok());
  EXPECT_FALSE(guard(s / "model" / "up" / "model", inputs).ok());
  // A hard link to an input file is the same file.
  fs::create_directories(s / "other");
  fs::create_hard_link(s / "model" / "w.safetensors", s / "other" / "hard");
  const Status st = guard(s / "other" / "hard", {s / "model" / "w.safetensors"}, OutputKind::kFile);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("is the same file as"), std::string::npos)
      << st.error().message();
}

TEST(PathGuard, OnlyRegularFilesOrDirectoriesAreReplaced) {
  Scratch s;
  ASSERT_TRUE(make_device_copy(s / "null"));
  ASSERT_EQ(::mkfifo((s / "fifo").c_str(), 0600), 0);
  fs::create_symlink(s / "target", s / "link");
  write(s / "file", "x");
  fs::create_directories(s / "dir");
  for (const char* name : {"null", "fifo", "link"}) {
    EXPECT_FALSE(guard(s / name, {}, OutputKind::kFile).ok()) << name;
    EXPECT_FALSE(guard(s / name, {}, OutputKind::kDirectory).ok()) << name;
  }
  EXPECT_TRUE(guard(s / "file", {}, OutputKind::kFile).ok());
  EXPECT_FALSE(guard(s / "file", {}, OutputKind::kDirectory).ok());
  EXPECT_TRUE(guard(s / "dir", {}, OutputKind::kDirectory).ok());
  EXPECT_FALSE(guard(s / "dir", {}, OutputKind::kFile).ok());
  const Status st = guard(s / "fifo", {}, OutputKind::kFile);
  EXPECT_NE(st.error().message().find("is a FIFO"), std::string::npos) << st.error().message();
}

TEST(AtomicWriteTargets, DeviceNodesFifosAndLinksAreNeverReplaced) {
  Scratch s;
  ASSERT_TRUE(make_device_copy(s / "null"));
  ASSERT_EQ(::mkfifo((s / "fifo").c_str(), 0600), 0);
  write(s / "real", "keep");
  fs::create_symlink(s / "real", s / "link");
  for (const char* name : {"null", "fifo", "link"}) {
    struct stat before {};
    ASSERT_EQ(::lstat((s / name).c_str(), &before), 0);
    const Status st = write_file_atomic(s / name, std::string_view("payload"));
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_NE(st.error().message().find("only regular files are replaced"), std::string::npos)
        << st.error().message();
    struct stat after {};
    ASSERT_EQ(::lstat((s / name).c_str(), &after), 0);
    EXPECT_EQ(before.st_mode, after.st_mode) << name;
    EXPECT_EQ(before.st_ino, after.st_ino) << name;
  }
  std::ifstream in(s / "real");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "keep");
  // A device node that appears while the writer is open is refused at commit.
  auto w = AtomicFileWriter::create(s / "late");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write(std::string_view("x")).ok());
  ASSERT_TRUE(make_device_copy(s / "late"));
  EXPECT_FALSE(w->commit().ok());
  struct stat late {};
  ASSERT_EQ(::lstat((s / "late").c_str(), &late), 0);
  EXPECT_FALSE(S_ISREG(late.st_mode));
  // No temp files left behind.
  int temps = 0;
  for (const auto& e : fs::directory_iterator(s.path())) {
    temps += e.path().filename().string().find(".tmp.") != std::string::npos;
  }
  EXPECT_EQ(temps, 0);
  // /dev/null itself (as root a rename would have replaced it).
  EXPECT_FALSE(write_file_atomic("/dev/null", std::string_view("x")).ok());
  struct stat devnull {};
  ASSERT_EQ(::lstat("/dev/null", &devnull), 0);
  EXPECT_TRUE(S_ISCHR(devnull.st_mode));
}

TEST(HostileInputs, FifoInputsAreRefusedWithoutBlocking) {
  Scratch s;
  ASSERT_EQ(::mkfifo((s / "fifo").c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto m = MmapFile::open(s / "fifo");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("is a FIFO, not a regular file"), std::string::npos)
      << m.error().message();
  auto t = read_text_input(s / "fifo", "--dataset");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("--dataset"), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(HostileInputs, DevicesAndHugeFilesAreRefusedBeforeReading) {
  Scratch s;
  for (const char* dev : {"/dev/zero", "/dev/urandom", "/dev/null"}) {
    auto t = read_text_input(dev, "--dataset");
    ASSERT_FALSE(t.ok()) << dev;
    EXPECT_NE(t.error().message().find("is a character device"), std::string::npos)
        << t.error().message();
  }
  // A symbolic link to /dev/zero (a config or dataset planted as a link).
  fs::create_symlink("/dev/zero", s / "config.json");
  EXPECT_FALSE(read_text_input(s / "config.json", "config").ok());
  EXPECT_FALSE(MmapFile::open(s / "config.json").ok());
  // An 8 GiB sparse file: refused by size, nothing allocated.
  {
    const int fd = ::open((s / "sparse.txt").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{8} << 30), 0);
    ::close(fd);
  }
  auto big = read_text_input(s / "sparse.txt", "--calib");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message().find("8589934592 bytes, more than the 1073741824 byte limit"),
            std::string::npos)
      << big.error().message();
  write(s / "small.txt", "hello");
  EXPECT_EQ(read_text_input(s / "small.txt", "--calib").value(), "hello");
  EXPECT_FALSE(read_text_input(s / "small.txt", "--calib", 4).ok());
}

TEST(HostileInputs, BinaryAndInvalidUtf8TextIsRefused) {
  EXPECT_TRUE(check_utf8_text("plain ascii\n", "t").ok());
  EXPECT_TRUE(check_utf8_text("caf\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80", "t").ok());
  struct Case {
    std::string text;
    const char* why;
  };
  const Case cases[] = {
      {std::string("\x7F"
                   "ELF\x02\x01\x01\x00\x00",
                   9),
       "a NUL byte at byte 7"},
      {"ok \xFF\xFE", "an invalid leading byte at byte 3"},
      {"\xC3", "a truncated sequence at byte 0"},
      {"a\xC3(", "a missing continuation byte at byte 1"},
      {"\xC0\xAF", "an overlong encoding"},
      {"\xED\xA0\x80", "an invalid code point"},      // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", "an invalid code point"},  // above U+10FFFF
  };
  for (const Case& c : cases) {
    const Status st = check_utf8_text(c.text, "calib.txt");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find(c.why), std::string::npos) << st.error().message();
    EXPECT_NE(st.error().message().find("calib.txt: not UTF-8 text"), std::string::npos);
  }
  // The qforge binary itself is not text.
  std::ifstream in(QFORGE_CLI_PATH, std::ios::binary);
  std::string elf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(elf.size(), 1000u);
  EXPECT_FALSE(check_utf8_text(elf, "qforge").ok());
}

}  // namespace
}  // namespace qforge
