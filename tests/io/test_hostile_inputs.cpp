// Hostile input files that used to hang, abort or be accepted (issue 15, causes 5, 7 and 10):
// FIFOs and devices in place of model files, configs, shards and tokenizers (refused without
// blocking), NUL-padded safetensors headers, binary / invalid UTF-8 datasets and calibration
// text, a tokenizer with more pieces than the model's vocabulary, and allocation failure reported
// as an error with exit 1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "hostile_scale.h"
#include "io_test_util.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"
#include "qforge/tokenizer/tokenizer.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using testing_io::models_dir;
using testing_io::ScratchDir;

// Hostile inputs must fail fast; 60 s catches a hang without flaking on a loaded machine.
CliRun cli(const std::vector<std::string>& args, const std::string& prefix = "") {
  return test::run_cli(args, 60, prefix);
}

// Runs `f` (which opens `fifo`), failing the test rather than hanging if it blocks: after 5 s a
// writer is opened on the FIFO, which releases a reader stuck in open().
template <typename F>
auto without_blocking(const fs::path& fifo, F f) {
  auto future = std::async(std::launch::async, f);
  if (future.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
    ADD_FAILURE() << "blocked on the FIFO " << fifo;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  return future.get();
}

void copy_hf(const fs::path& to) {
  // A small HF checkpoint: stories260K converted by the CLI.
  const CliRun r =
      cli({"convert", "-m", (models_dir() / "stories260K" / "stories260K.bin").string(), "-o",
           to.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
}

TEST(HostileInputs, FifosInPlaceOfModelFilesNeverBlock) {
  if (!fs::exists(models_dir())) GTEST_SKIP();
  ScratchDir s;
  for (const char* victim :
       {"config.json", "model.safetensors", "tokenizer.model", "generation_config.json"}) {
    const fs::path dir = s / (std::string("hf_") + victim);
    copy_hf(dir);
    fs::remove(dir / victim);
    ASSERT_EQ(::mkfifo((dir / victim).c_str(), 0600), 0);
    if (std::string(victim) == "tokenizer.model") {
      auto t =
          without_blocking(dir / victim, [&] { return load_tokenizer((dir / victim).string()); });
      ASSERT_FALSE(t.ok()) << victim;
      EXPECT_NE(t.error().to_string().find("is a FIFO, not a regular file"), std::string::npos)
          << t.error().to_string();
      continue;
    }
    auto m = without_blocking(dir / victim, [&] { return load_model(dir.string()); });
    ASSERT_FALSE(m.ok()) << victim;
    EXPECT_NE(m.error().to_string().find("FIFO"), std::string::npos) << m.error().to_string();
  }
  // The model path itself a FIFO.
  ASSERT_EQ(::mkfifo((s / "model.gguf").c_str(), 0600), 0);
  auto m =
      without_blocking(s / "model.gguf", [&] { return load_model((s / "model.gguf").string()); });
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("not a regular file or directory"), std::string::npos);
  // config.json a link to /dev/zero.
  const fs::path dz = s / "hf_zero";
  copy_hf(dz);
  fs::remove(dz / "config.json");
  fs::create_symlink("/dev/zero", dz / "config.json");
  auto z = load_model(dz.string());
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.error().to_string().find("is a character device"), std::string::npos)
      << z.error().to_string();
}

TEST(HostileInputs, NulPaddedSafetensorsHeaderIsRefused) {
  auto good = hostile_scale::safetensors_zero_tensors(2);
  ASSERT_TRUE(parse_safetensors_header(good, "ok.safetensors").ok());
  // The same header with its space padding replaced by NULs (and a NUL in the middle of the
  // padding after garbage, which nlohmann's lexer would take for the end of the text).
  for (const std::string& tail :
       {std::string(8, '\0'), std::string("\0garbage", 8), std::string("\n\t      ", 8)}) {
    std::string json = "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
    json.append((8 - json.size() % 8) % 8, ' ');
    json += tail;
    std::vector<std::byte> b(8 + json.size());
    const uint64_t n = json.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, json.data(), json.size());
    auto h = parse_safetensors_header(b, "padded.safetensors");
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().code(), ErrorCode::kFormat);
    EXPECT_TRUE(h.error().message().find("NUL byte") != std::string::npos ||
                h.error().message().find("space padding") != std::string::npos)
        << h.error().message();
  }
}

TEST(HostileInputs, BinaryAndDeviceTextInputsAreErrors) {
  if (!fs::exists(models_dir())) GTEST_SKIP();
  ScratchDir s;
  const fs::path hf = s / "hf";
  copy_hf(hf);
  const std::string elf = QFORGE_CLI_PATH;
  std::ofstream(s / "latin1.txt", std::ios::binary) << "caf\xE9 au lait\n";
  for (const std::string& data :
       {elf, (s / "latin1.txt").string(), std::string("/dev/zero"), std::string("/dev/urandom")}) {
    CliRun r = cli({"eval", "ppl", "--model", hf.string(), "--dataset", data, "--ctx", "64"});
    EXPECT_EQ(r.exit_code, 1) << data << "\n" << r.out;
    EXPECT_TRUE(r.out.find("not UTF-8 text") != std::string::npos ||
                r.out.find("is a character device") != std::string::npos)
        << data << "\n"
        << r.out;
    r = cli({"quantize", "-m", hf.string(), "--calib", data, "-q", "int8_wo", "-o",
             (s / "out").string()});
    EXPECT_EQ(r.exit_code, 1) << data << "\n" << r.out;
    EXPECT_TRUE(r.out.find("not UTF-8 text") != std::string::npos ||
                r.out.find("does not exist") != std::string::npos ||
                r.out.find("is a character device") != std::string::npos)
        << data << "\n"
        << r.out;
    EXPECT_FALSE(fs::exists(s / "out"));
  }
  // tokenize --file on devices: refused at once, not read forever.
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* dev : {"/dev/zero", "/dev/urandom"}) {
    const CliRun r =
        cli({"tokenize", "--tokenizer", (hf / "tokenizer.model").string(), "--file", dev});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("is a character device"), std::string::npos) << r.out;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

TEST(HostileInputs, TokenizerWithMorePiecesThanTheVocabIsAnError) {
  const fs::path gguf = models_dir() / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf";
  if (!fs::exists(gguf)) GTEST_SKIP();
  ScratchDir s;
  const fs::path hf = s / "hf";
  copy_hf(hf);
  std::ofstream(s / "data.txt") << "Once upon a time there was a girl.\n";
  const CliRun r = cli({"eval", "ppl", "--model", hf.string(), "--tokenizer", gguf.string(),
                        "--dataset", (s / "data.txt").string(), "--ctx", "64"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("has 32000 pieces but the model's vocab_size is 512"), std::string::npos)
      << r.out;
  auto t = load_tokenizer(gguf.string(), 512);
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(load_tokenizer(gguf.string(), 32000).ok());
  EXPECT_TRUE(load_tokenizer(gguf.string(), 0).ok());  // no model to compare with
}

TEST(HostileInputs, AllocationFailureIsAnErrorNotAnAbort) {
  if (!fs::exists(models_dir())) GTEST_SKIP();
  // tokenize --file of 64 MiB under a 256 MiB address-space limit: the text copy and the token
  // vector do not fit, so std::bad_alloc is thrown; main() reports it and exits 1.
  ScratchDir s;
  {
    std::ofstream out(s / "big.txt", std::ios::binary);
    const std::string line(1023, 'a');
    for (int i = 0; i < 64 * 1024; ++i) out << line << '\n';
  }
  const CliRun r =
      cli({"tokenize", "--tokenizer", (models_dir() / "stories260K" / "tok512.bin").string(),
           "--file", (s / "big.txt").string()},
          "ulimit -v 262144; ");
  EXPECT_EQ(r.exit_code, 1) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("qforge: error:"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_EQ(r.out.find("terminate called"), std::string::npos) << r.out.substr(0, 2000);
}

}  // namespace
}  // namespace qforge
