// The runtime subcommands end to end: generate (greedy reproduces the reference), logits (.npy
// round trip), eval ppl with --save-logits / --kl-divergence-base, synth + bench on a tiny
// checkpoint, and the bad inputs that must fail with a clear message and exit code 1.
#include <gtest/gtest.h>

#include <fstream>

#include "cli_test_util.h"
#include "qforge/runtime/npy.h"

namespace qforge {
namespace {

using test::quote;
using test::run_cli;

const auto kStories = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
const auto kText = test::shared_dir() / "data" / "tinystories" / "tinystories_valid_first1000.txt";

std::filesystem::path temp(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
}

#define QF_REQUIRE(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << (path)

TEST(CliRuntime, GenerateGreedyStreamsTheReferenceText) {
  QF_REQUIRE(kStories);
  const auto r = run_cli("generate --model " + quote(kStories) +
                         " --prompt 'Once upon a time' --temperature 0 --max-tokens 30 -q");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily. She loved to play"),
            std::string::npos)
      << r.out;
}

TEST(CliRuntime, GenerateSamplingIsSeeded) {
  QF_REQUIRE(kStories);
  const std::string args = "generate --model " + quote(kStories) +
                           " --prompt 'Once upon a time' --temperature 1.0 --top-k 40 "
                           "--top-p 0.9 --max-tokens 20 -q --seed ";
  EXPECT_EQ(run_cli(args + "5").out, run_cli(args + "5").out);
}

TEST(CliRuntime, PromptLongerThanTheContextFails) {
  QF_REQUIRE(kStories);
  const auto r = run_cli("generate --model " + quote(kStories) +
                         " --prompt 'Once upon a time there was a little girl' --ctx 4 -q");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("the context holds 4"), std::string::npos) << r.out;
}

TEST(CliRuntime, LogitsNpyRoundTripAndUnknownIds) {
  QF_REQUIRE(kStories);
  const auto npy = temp("qforge_cli_logits") += ".npy";
  auto r =
      run_cli("logits --model " + quote(kStories) + " --ids 1,403,407,261 --output " + quote(npy));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto arr = read_npy(npy);
  ASSERT_TRUE(arr.ok()) << arr.error().to_string();
  EXPECT_EQ(arr->descr, "<f4");
  EXPECT_EQ(arr->shape, (std::vector<int64_t>{4, 512}));
  // Position 0 of the reference: logit of id 1 is 8.404342 (reference_greedy.json).
  EXPECT_NEAR(arr->values[1], 8.404342, 1e-4);
  std::filesystem::remove(npy);

  r = run_cli("logits --model " + quote(kStories) + " --ids 1,403,600");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("token id 600"), std::string::npos) << r.out;
  r = run_cli("logits --model " + quote(kStories) + " --ids 1,-3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("'-3' is not a token id"), std::string::npos) << r.out;
}

TEST(CliRuntime, EvalPplSavesAndComparesLogits) {
  QF_REQUIRE(kStories);
  QF_REQUIRE(kText);
  const auto base = temp("qforge_cli_base") += ".bin";
  const std::string common = "eval ppl --model " + quote(kStories) + " --dataset " + quote(kText) +
                             " --doc-separator '<|endoftext|>' --max-chunks 10 --no-progress";
  auto r = run_cli(common + " --save-logits " + quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("protocol: dataset"), std::string::npos);
  EXPECT_NE(r.out.find("PPL = 3.351"), std::string::npos) << r.out;
  r = run_cli(common + " --kl-divergence-base " + quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Mean    KLD:                   0.000000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Same top token:                100.000%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PPL(Q)/PPL(base):              1.000000"), std::string::npos) << r.out;
  // Another protocol (fewer chunks) is refused, naming both.
  r = run_cli("eval ppl --model " + quote(kStories) + " --dataset " + quote(kText) +
              " --doc-separator '<|endoftext|>' --max-chunks 5 --no-progress "
              "--kl-divergence-base " +
              quote(base));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("another protocol"), std::string::npos) << r.out;
  std::filesystem::remove(base);
}

TEST(CliRuntime, EvalPplOnADatasetSmallerThanOneChunkFails) {
  QF_REQUIRE(kStories);
  const auto small = temp("qforge_cli_small") += ".txt";
  std::ofstream(small) << "Once upon a time there was a cat.\n";
  const auto r = run_cli("eval ppl --model " + quote(kStories) + " --dataset " + quote(small) +
                         " --ctx 256 --no-progress");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("one chunk of --ctx 256 needs 255"), std::string::npos) << r.out;
  std::filesystem::remove(small);
  const auto missing = run_cli("eval ppl --model " + quote(kStories) +
                               " --dataset /nonexistent/wiki.txt --no-progress");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("/nonexistent/wiki.txt"), std::string::npos) << missing.out;
}

TEST(CliRuntime, SynthIsDeterministicAndBenchRuns) {
  const auto a = temp("qforge_cli_synth_a");
  const auto b = temp("qforge_cli_synth_b");
  auto r = run_cli("synth --preset tiny-qwen2 --seed 3 --outlier-channels 4 -o " + quote(a));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_cli("synth --preset tiny-qwen2 --seed 3 --outlier-channels 4 -o " + quote(b));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(a / "model.safetensors"), read(b / "model.safetensors"));
  EXPECT_EQ(read(a / "config.json"), read(b / "config.json"));
  r = run_cli("bench --model " + quote(a) +
              " --prompt-tokens 8 --decode-tokens 4 --repeats 1 --bandwidth-mb 64");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("decode / limit"), std::string::npos) << r.out;
  r = run_cli("synth --preset nonexistent -o " + quote(a));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("presets:"), std::string::npos) << r.out;
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}

}  // namespace
}  // namespace qforge
