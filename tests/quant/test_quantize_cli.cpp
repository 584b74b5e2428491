// `qforge quantize` as a process: SIGKILL at several points leaves the output absent or complete
// and --resume finishes with bytes identical to an uninterrupted run; a full disk (RLIMIT_FSIZE)
// fails cleanly; bad flags fail with clear messages; a model larger than --max-memory quantizes
// under it (peak RSS measured by the child's getrusage).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "qforge/model/model.h"
#include "qforge/model/synthetic.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::quote;
using test::run_cli;

fs::path mix_dir() {
  return test::shared_dir() / "models" / "llama-mix-16m";
}
fs::path wiki_valid() {
  return test::shared_dir() / "data" / "wikitext-2" / "wiki.valid.tokens";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(mix_dir() / "config.json") || !fs::exists(wiki_valid())) {
      GTEST_SKIP() << "needs ../shared/models/llama-mix-16m and wikitext-2";
    }
    tmp_ = fs::temp_directory_path() /
           ("qforge_qcli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    if (!tmp_.empty()) fs::remove_all(tmp_);
  }
  std::string base_args(const fs::path& out) const {
    return "quantize --model " + quote(mix_dir()) + " --calib " + quote(wiki_valid()) +
           " --calib-size 6 --calib-max-seq-len 96 --quiet --output " + quote(out);
  }
  fs::path tmp_;
};

// Every file of `a` exists in `b` with the same bytes, and vice versa.
void expect_same_tree(const fs::path& a, const fs::path& b) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    ++n;
    const fs::path twin = b / e.path().filename();
    ASSERT_TRUE(fs::exists(twin)) << twin;
    EXPECT_TRUE(read_all(e.path()) == read_all(twin)) << e.path().filename();
  }
  for (const auto& e : fs::directory_iterator(b)) {
    EXPECT_TRUE(fs::exists(a / e.path().filename())) << "extra file " << e.path();
  }
  EXPECT_EQ(n, static_cast<size_t>(std::distance(fs::directory_iterator(b), {})));
}

pid_t spawn_cli(const std::string& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("QFORGE_NO_PROGRESS", "1", 1);
    const std::string cmd =
        std::string("exec ") + QFORGE_CLI_PATH + " " + args + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST_F(QuantizeCli, SigkillLeavesNothingHalfWrittenAndResumeMatches) {
  const fs::path ref = tmp_ / "ref";
  auto r = run_cli(base_args(ref) + " --qformat int4_gptq");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const double full_s = 4.0;  // generous upper bound of a run; kills land inside it
  const fs::path out = tmp_ / "out";
  for (double at : {0.3, 0.8, 1.5, 2.5, full_s}) {
    const pid_t pid = spawn_cli(base_args(out) + " --qformat int4_gptq --resume");
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (fs::exists(out)) {
      // Complete: it must be the whole checkpoint, identical to the reference.
      expect_same_tree(ref, out);
      break;
    }
  }
  if (!fs::exists(out)) {
    r = run_cli(base_args(out) + " --qformat int4_gptq --resume");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  EXPECT_FALSE(fs::exists(tmp_ / "out.partial"));
  expect_same_tree(ref, out);
  auto model = Model::load(out.string());
  EXPECT_TRUE(model.ok()) << (model.ok() ? "" : model.error().to_string());
}

TEST_F(QuantizeCli, DiskFullFailsCleanly) {
  // RLIMIT_FSIZE makes every write past 2 MB fail (EFBIG), as a full disk would.
  const fs::path out = tmp_ / "full";
  auto r = run_cli("--version >/dev/null; ulimit -f 2048; " + std::string(QFORGE_CLI_PATH) + " " +
                   base_args(out) + " --qformat fp8");
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("File too large"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(QuantizeCli, BadInputsFailWithClearMessages) {
  const fs::path out = tmp_ / "bad";
  auto r = run_cli(base_args(out) + " --qformat int3_magic");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("unknown --qformat 'int3_magic'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("int4_awq"), std::string::npos) << r.out;

  r = run_cli(base_args(out) + " --qformat int4_awq --group-size 96");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("group_size 96"), std::string::npos) << r.out;

  // 384 and 1024 are not multiples of 256... 384 is not: the export cannot store padded groups.
  r = run_cli(base_args(out) + " --qformat int4_wo --group-size 256");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("256"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));

  r = run_cli(base_args(out) + " --qformat int4_wo --zero-point");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--export-format compressed-tensors"), std::string::npos) << r.out;
  r = run_cli(base_args(out) + " --qformat int4_gptq --zero-point --export-format ct");
  EXPECT_EQ(r.exit_code, 0) << r.out;  // asymmetric INT4 GPTQ in compressed-tensors
  EXPECT_NE(read_all(out / "config.json").find("\"symmetric\": false"), std::string::npos);
  fs::remove_all(out);

  r = run_cli(base_args(out) + " --qformat fp8 --kv-cache fp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--kv-cache 'fp4'"), std::string::npos) << r.out;

  fs::create_directories(tmp_ / "taken");
  r = run_cli(base_args(tmp_ / "taken") + " --qformat fp8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--overwrite"), std::string::npos) << r.out;
  r = run_cli(base_args(tmp_ / "taken") + " --qformat fp8 --overwrite");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::exists(tmp_ / "taken" / "config.json"));

  std::ofstream(tmp_ / "empty.jsonl") << "\n";
  r = run_cli("quantize --model " + quote(mix_dir()) + " --calib " + quote(tmp_ / "empty.jsonl") +
              " --output " + quote(out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("calibration set is empty"), std::string::npos) << r.out;
}

TEST_F(QuantizeCli, SmoothQuantKeepsPreQuantScaleAndReloads) {
  const fs::path out = tmp_ / "sq";
  auto r = run_cli(base_args(out) + " --qformat int8_sq --kv-cache int8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string index = read_all(out / "model.safetensors.index.json");
  // GQA o_proj: the SmoothQuant scale cannot fold into v_proj, so it travels as pre_quant_scale.
  EXPECT_NE(index.find("self_attn.o_proj.pre_quant_scale"), std::string::npos);
  auto model = Model::load(out.string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ(model.value()->kv_cache_quant().dtype, KvCacheDType::kInt8);
}

// Slow: writes a 0.99 GB synthetic model. Peak RSS of the quantizing process stays under a
// --max-memory of less than half the weights.
TEST_F(QuantizeCli, SlowModelLargerThanMaxMemoryQuantizesUnderIt) {
  const fs::path model = tmp_ / "synth";
  auto cfg = synthetic_preset("qwen2.5-0.5b");
  ASSERT_TRUE(cfg.ok());
  SynthOptions so;
  so.dtype = DType::BF16;
  ASSERT_TRUE(write_synthetic_checkpoint(cfg.value(), so, model.string(), nullptr).ok());
  fs::copy_file(mix_dir() / "tokenizer.model", model / "tokenizer.model");
  uint64_t weight_bytes = 0;
  for (const auto& e : fs::directory_iterator(model)) {
    if (e.path().extension() == ".safetensors") weight_bytes += fs::file_size(e.path());
  }
  const uint64_t limit_mib = 400;
  ASSERT_GT(weight_bytes, 2 * limit_mib * 1048576);
  const fs::path out = tmp_ / "q";
  auto r = run_cli("quantize --model " + quote(model) + " --calib " + quote(wiki_valid()) +
                   " --calib-size 2 --calib-max-seq-len 32 --qformat fp8 --output " + quote(out) +
                   " --max-memory " + std::to_string(limit_mib));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto at = r.out.find("peak RSS ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const double rss_mib = std::stod(r.out.substr(at + 9));
  std::printf("weights %.0f MiB, --max-memory %llu MiB, peak RSS %.0f MiB\n",
              weight_bytes / 1048576.0, static_cast<unsigned long long>(limit_mib), rss_mib);
  EXPECT_LT(rss_mib, static_cast<double>(limit_mib));

  r = run_cli("quantize --model " + quote(model) + " --calib " + quote(wiki_valid()) +
              " --calib-size 2 --calib-max-seq-len 32 --qformat fp8 --output " +
              quote(tmp_ / "q2") + " --max-memory 50");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--max-memory 50.0 MiB is below"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qforge
