// `qforge run` and `qforge bench --batch/--engine` end to end: one prompt streams the reference
// greedy text, several prompts batched give each prompt's text alone, limits fail with exit code
// 1 and a clear message, and the batched bench prints one row per batch size (text and JSON).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace qforge {
namespace {

using test::quote;
using test::run_cli;

const auto kStories = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";

std::filesystem::path temp(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
}

#define QF_REQUIRE(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << (path)

// The JSON array printed by `run --json` (the statistics line goes to stderr, after it).
nlohmann::json outputs(const std::string& out) {
  const auto end = out.rfind(']');
  return nlohmann::json::parse(out.substr(0, end == std::string::npos ? 0 : end + 1));
}

TEST(CliRun, OnePromptStreamsTheReferenceText) {
  QF_REQUIRE(kStories);
  const auto r = run_cli("run --model " + quote(kStories) +
                         " --prompt 'Once upon a time' --temperature 0 --max-tokens 30");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily. She loved to play"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[1 prompts, 30 tokens generated"), std::string::npos) << r.out;
}

TEST(CliRun, BatchedPromptsGiveEachPromptsTextAlone) {
  QF_REQUIRE(kStories);
  const std::string common = "run --model " + quote(kStories) +
                             " --temperature 0 --max-tokens 24 --json -q --kv-cache-block-size 4";
  const auto batched =
      run_cli(common +
              " --prompt 'Once upon a time' --prompt 'The dog' --prompt 'Lily and Ben' "
              "--max-batch-size 2 --max-num-tokens 5");
  ASSERT_EQ(batched.exit_code, 0) << batched.out;
  const auto all = outputs(batched.out);
  ASSERT_EQ(all.size(), 3u);
  const char* prompts[] = {"Once upon a time", "The dog", "Lily and Ben"};
  for (size_t i = 0; i < 3; ++i) {
    const auto alone = run_cli(common + " --prompt '" + prompts[i] + "'");
    ASSERT_EQ(alone.exit_code, 0) << alone.out;
    const auto one = outputs(alone.out);
    EXPECT_EQ(all[i]["prompt"], prompts[i]);
    EXPECT_EQ(all[i]["output_ids"], one[0]["output_ids"]) << prompts[i];
    EXPECT_EQ(all[i]["text"], one[0]["text"]);
    EXPECT_EQ(all[i]["finish_reason"], "length");
  }
  EXPECT_EQ(all[0]["text"].get<std::string>().rfind(", there was a little girl", 0), 0u);
  // FP8 pages, logprobs in the JSON.
  const auto fp8 = run_cli(common + " --prompt 'Once upon a time' --kv-cache fp8 --logprobs 2");
  ASSERT_EQ(fp8.exit_code, 0) << fp8.out;
  const auto f = outputs(fp8.out);
  ASSERT_EQ(f[0]["logprobs"].size(), 24u);
  EXPECT_EQ(f[0]["logprobs"][0]["top"].size(), 2u);
  EXPECT_EQ(f[0]["logprobs"][0]["id"], f[0]["output_ids"][0]);
}

TEST(CliRun, LimitsAndBadInputFail) {
  QF_REQUIRE(kStories);
  auto r = run_cli("run --model " + quote(kStories) +
                   " --prompt 'Once upon a time there was a little girl' --max-input-len 4 -q");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("but max_input_len is 4"), std::string::npos) << r.out;
  r = run_cli("run --prompt hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("give one of --engine"), std::string::npos) << r.out;
  r = run_cli("run --model " + quote(kStories) + " --prompt hi --kv-cache fp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("KV-cache type 'fp4' is unknown"), std::string::npos) << r.out;
  r = run_cli("run --model " + quote(kStories) + " --prompt hi --min-p 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--min-p 2 is out of range"), std::string::npos) << r.out;
  r = run_cli("run --model " + quote(kStories) + " --prompt hi --kv-cache int8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("int8 storage needs calibrated INT8 KV scales"), std::string::npos) << r.out;
}

TEST(CliRun, EngineRunAndBatchedBench) {
  QF_REQUIRE(kStories);
  const auto hf = temp("qforge_cli_run_hf");
  const auto engine = temp("qforge_cli_run") += ".engine";
  auto r = run_cli("convert -m " + quote(kStories) + " -o " + quote(hf));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_cli("build --checkpoint " + quote(hf) + " -o " + quote(engine) +
              " --precision float32 --max-input-len 64 --max-seq-len 128 --max-batch-size 4");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_cli("run --engine " + quote(engine) +
              " --prompt 'Once upon a time' --temperature 0 --max-tokens 20 -q");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily."), std::string::npos)
      << r.out;
  r = run_cli("bench --engine " + quote(engine) +
              " --batch 1,2,4 --input-len 16 --output-len 6 --bandwidth-mb 16");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("decode t/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
  r = run_cli("bench --engine " + quote(engine) +
              " --batch 1,3 --input-len 8 --output-len 4 --bandwidth-mb 16 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j["batches"].size(), 2u);
  EXPECT_EQ(j["batches"][1]["batch"], 3);
  EXPECT_GT(j["batches"][1]["decode_tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(j["batches"][1]["ttft_mean_ms"].get<double>(), 0.0);
  EXPECT_GT(j["read_bandwidth_gbps"].get<double>(), 0.0);
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0.0);
  // Too long for the engine's max_seq_len: a clear error.
  r = run_cli("bench --engine " + quote(engine) + " --batch 1 --input-len 100 --output-len 40");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("do not fit max_input_len 64 / max_seq_len 128"), std::string::npos)
      << r.out;
  std::filesystem::remove_all(hf);
  std::filesystem::remove(engine);
}

TEST(CliRun, BatchedBenchOnASyntheticModel) {
  const auto dir = temp("qforge_cli_run_synth");
  auto r = run_cli("synth --preset tiny -o " + quote(dir));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_cli("bench --model " + quote(dir) +
              " --batch 1,2 --input-len 8 --output-len 4 --bandwidth-mb 16 --kv-cache bf16");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("KV cache bf16"), std::string::npos) << r.out;
  // The batch-1 bench of --model still works.
  r = run_cli("bench --model " + quote(dir) +
              " --prompt-tokens 8 --decode-tokens 4 --repeats 1 --bandwidth-mb 16");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("decode / limit"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qforge
