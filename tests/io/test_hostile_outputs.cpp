// Every file-writing command with its output aimed at its own inputs, their parents (also as
// DIR/..), files inside an input directory, and a copy of a device node (issue 15, causes 3 and
// 4): each run must fail with a clear error, and afterwards every byte and every node of the
// scratch tree (inputs, the device copy) must be exactly as before: no input replaced, deleted,
// altered or written into, no device node turned into a regular file, no temp files left.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using testing_io::models_dir;
using testing_io::ScratchDir;

// Every node under `root` (lstat, not followed): its type/mode, inode and, for regular files,
// its bytes.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string v = std::to_string(st.st_mode) + ":" + std::to_string(st.st_ino) + ":" +
                    std::to_string(st.st_rdev);
    if (S_ISREG(st.st_mode)) {
      std::ifstream in(it->path(), std::ios::binary);
      v += ":" + std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    out[fs::relative(it->path(), root).string()] = std::move(v);
  }
  return out;
}

class HostileOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path bin = models_dir() / "stories260K" / "stories260K.bin";
    if (!fs::exists(bin)) GTEST_SKIP() << "shared models not found";
    work_ = scratch_ / "work";
    fs::create_directories(work_);
    fs::copy_file(bin, work_ / "stories260K.bin");
    fs::copy_file(models_dir() / "stories260K" / "tok512.bin", work_ / "tok512.bin");
    std::string text;
    for (int i = 0; i < 200; ++i) text += "Once upon a time there was a little girl. ";
    std::ofstream(work_ / "calib.txt") << text;
    std::ofstream(work_ / "data.txt") << text;
    const CliRun convert =
        test::run_cli({"convert", "-m", (work_ / "stories260K.bin").string(), "-o",
                       (work_ / "hf").string(), "--tokenizer", (work_ / "tok512.bin").string()},
                      120);
    ASSERT_EQ(convert.exit_code, 0) << convert.out;
    // A copy of /dev/null (mknod needs root; a FIFO stands in otherwise).
    if (::mknod((work_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
      ASSERT_EQ(::mkfifo((work_ / "null").c_str(), 0666), 0);
    }
    before_ = snapshot(scratch_.path());
  }

  // Runs the command, expects exit 1 with `needle` in the message, and the tree unchanged.
  void expect_refused(const std::vector<std::string>& args, const std::string& needle) {
    const CliRun r = test::run_cli(args, 120);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 1) << joined << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << joined << "\n" << r.out;
    const auto after = snapshot(scratch_.path());
    EXPECT_EQ(after.size(), before_.size()) << joined;
    for (const auto& [path, value] : before_) {
      const auto it = after.find(path);
      if (it == after.end()) {
        ADD_FAILURE() << joined << ": " << path << " was removed";
      } else if (it->second != value) {
        ADD_FAILURE() << joined << ": " << path << " changed";
      }
    }
    for (const auto& [path, value] : after) {
      if (!before_.count(path)) ADD_FAILURE() << joined << ": " << path << " appeared";
    }
    ++checked_;
  }

  std::string w(const std::string& rel) const { return (work_ / rel).string(); }

  ScratchDir scratch_;
  fs::path work_;
  std::map<std::string, std::string> before_;
  int checked_ = 0;
};

constexpr const char* kInput = "input";  // every guard message names "the input"

TEST_F(HostileOutputs, QuantizeNeverReplacesItsInputs) {
  const std::string parent = work_.string();
  for (const std::string out : {w("hf"), w("hf/"), w("hf/.."), parent, parent + "/..",
                                w("hf/config.json"), w("hf/sub"), w("calib.txt")}) {
    expect_refused({"quantize", "-m", w("hf"), "--calib", w("calib.txt"), "-q", "int8_wo",
                    "--calib-size", "2", "--calib-max-seq-len", "16", "--overwrite", "-o", out},
                   kInput);
  }
  expect_refused({"quantize", "-m", w("hf"), "--calib", w("calib.txt"), "-q", "int8_wo",
                  "--overwrite", "-o", w("null")},
                 "character device");
  EXPECT_EQ(checked_, 9);
}

TEST_F(HostileOutputs, ConvertNeverReplacesItsInputs) {
  // From the HF directory, and from the llama2.c file with its tokenizer.
  for (const std::string out : {w("hf"), w("hf/.."), work_.string(), w("hf/tokenizer.model"),
                                w("hf/model.safetensors"), w("hf/x")}) {
    // Existing files are refused as "not a directory", directories by the input guard.
    expect_refused({"convert", "-m", w("hf"), "--overwrite", "-o", out}, "qforge: error:");
  }
  for (const std::string out :
       {w("stories260K.bin"), w("tok512.bin"), work_.string(), w("hf/..")}) {
    expect_refused(
        {"convert", "-m", w("stories260K.bin"), "--tokenizer", w("tok512.bin"), "--overwrite", "-o",
         out},
        out == w("stories260K.bin") || out == w("tok512.bin") ? "not a directory" : kInput);
  }
  expect_refused({"convert", "-m", w("hf"), "--overwrite", "-o", w("null")}, "not a directory");
}

TEST_F(HostileOutputs, LogitsNeverReplacesItsInputs) {
  for (const std::string out :
       {w("hf"), w("hf/config.json"), w("hf/model.safetensors"), w("hf/.."), w("hf/new.npy")}) {
    expect_refused({"logits", "--model", w("hf"), "--ids", "1,2,3", "-o", out}, kInput);
  }
  expect_refused({"logits", "--model", w("stories260K.bin"), "--tokenizer", w("tok512.bin"),
                  "--prompt", "Once", "-o", w("tok512.bin")},
                 kInput);
  expect_refused({"logits", "--model", w("hf"), "--ids", "1,2,3", "-o", w("null")},
                 "character device");
}

TEST_F(HostileOutputs, EvalSaveLogitsNeverReplacesItsInputs) {
  for (const std::string out :
       {w("data.txt"), w("hf"), w("hf/config.json"), w("hf/.."), work_.string(), w("tok512.bin")}) {
    expect_refused({"eval", "ppl", "--model", w("hf"), "--tokenizer", w("tok512.bin"), "--dataset",
                    w("data.txt"), "--ctx", "64", "--save-logits", out},
                   kInput);
  }
  expect_refused({"eval", "ppl", "--model", w("hf"), "--dataset", w("data.txt"), "--ctx", "64",
                  "--save-logits", w("null")},
                 "character device");
}

TEST_F(HostileOutputs, SynthNeverReplacesADeviceNode) {
  expect_refused({"synth", "--preset", "tiny", "-o", w("null")}, "null");
  expect_refused({"synth", "--preset", "tiny", "-o", w("calib.txt")}, "calib.txt");
}

}  // namespace
}  // namespace qforge
