// `qforge inspect` on the shared real checkpoints: JSON output with the config, tensors,
// parameter count and memory per storage format; plus describe_checkpoint directly.
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "qforge/io/checkpoint_info.h"

namespace qforge {
namespace {

nlohmann::json inspect_json(const std::filesystem::path& path) {
  const std::string command =
      std::string(QFORGE_CLI_PATH) + " inspect --json '" + path.string() + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pipe ? pclose(pipe) : -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  return nlohmann::json::parse(out, nullptr, false);
}

TEST(Inspect, LlamaMix16mJson) {
  QF_REQUIRE_SHARED();
  const auto j = inspect_json(testing_io::models_dir() / "llama-mix-16m");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["format"], "hf-dir");
  EXPECT_EQ(j["total_params"], 15586176);
  EXPECT_EQ(j["tensors"].size(), 57u);
  EXPECT_EQ(j["config"]["hidden_size"], 384);
  EXPECT_EQ(j["config"]["num_key_value_heads"], 2);
  EXPECT_EQ(j["config"]["torch_dtype"], "bf16");
  // Natural order: layer 0 .. 5, each with its tensors; the shard is named.
  EXPECT_EQ(j["tensors"][0]["name"], "lm_head.weight");
  EXPECT_EQ(j["tensors"][0]["file"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(j["tensors"][2]["name"], "model.layers.0.input_layernorm.weight");
  // In bf16 the model takes what the index's metadata.total_size says: 31,172,352 bytes.
  bool saw_bf16 = false;
  for (const auto& m : j["memory"]) {
    if (m["format"] == "bf16") {
      EXPECT_EQ(m["bytes"], 31172352);
      saw_bf16 = true;
    }
    if (m["format"] == "int4_g128") {
      EXPECT_LT(m["bytes"].get<double>(), 31172352 / 3.0);
    }
  }
  EXPECT_TRUE(saw_bf16);
}

TEST(Inspect, Stories260KAndQ80) {
  QF_REQUIRE_SHARED();
  const auto dir = testing_io::models_dir() / "stories260K";
  auto fp32 = describe_checkpoint((dir / "stories260K.bin").string());
  ASSERT_TRUE(fp32.ok()) << fp32.error().to_string();
  EXPECT_EQ(fp32->total_params(), 260032);
  EXPECT_EQ(fp32->detail, "llama2.c legacy v0 (fp32)");
  ASSERT_TRUE(fp32->config.has_value());
  EXPECT_EQ(fp32->config->num_hidden_layers, 5);
  const auto q80 = inspect_json(dir / "stories260K_q80_gs4.bin");
  ASSERT_FALSE(q80.is_discarded());
  EXPECT_EQ(q80["detail"], "llama2.c ak42 v2 (int8 Q8_0, group 4)");
  EXPECT_EQ(q80["total_params"], 260032);
  uint64_t stored = 0;
  for (const auto& t : q80["tensors"]) stored += t["bytes"].get<uint64_t>();
  EXPECT_EQ(stored + 256, 521728u);  // every byte after the header is accounted for
}

TEST(Inspect, GgufVocabulary) {
  QF_REQUIRE_SHARED();
  const auto j = inspect_json(testing_io::models_dir() / "llama2-spm-vocab-gguf" /
                              "ggml-vocab-llama-spm.gguf");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["metadata"].size(), 22u);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"], "[32000 x string]");
  EXPECT_EQ(j["tensors"].size(), 0u);
}

TEST(Inspect, NaturalOrder) {
  EXPECT_TRUE(natural_less("model.layers.9.x", "model.layers.10.x"));
  EXPECT_FALSE(natural_less("model.layers.10.x", "model.layers.9.x"));
  EXPECT_TRUE(natural_less("a", "ab"));
  EXPECT_FALSE(natural_less("a", "a"));
  EXPECT_TRUE(natural_less("blk.2.attn", "blk.02.ffn"));
}

}  // namespace
}  // namespace qforge
