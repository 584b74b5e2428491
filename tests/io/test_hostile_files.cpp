// The hostile-file corpus in the normal suite: every bad file gives a clear error naming the file
// and the field (never a crash), through the in-memory parsers, the file-level readers,
// load_model/describe_checkpoint, and a few through the `qforge inspect` CLI (exit code 1).
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "io/hostile_corpus.h"
#include "io/io_test_util.h"
#include "qforge/io/checkpoint_info.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_config.h"
#include "qforge/io/llama2c.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"
#include "qforge/model/config.h"

namespace qforge {
namespace {

using testing_io::CorpusKind;
using testing_io::HostileCase;
using testing_io::ScratchDir;

std::span<const std::byte> as_span(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

void expect_error(const std::string& where, const Error& error, const HostileCase& c,
                  const std::string& file_name) {
  const std::string text = error.to_string();
  EXPECT_NE(text.find(file_name), std::string::npos)
      << c.name << " (" << where << "): error does not name the file: " << text;
  for (const auto& needle : c.expect) {
    EXPECT_NE(text.find(needle), std::string::npos)
        << c.name << " (" << where << "): missing '" << needle << "' in: " << text;
  }
}

// Writes the case's files under `dir` and returns the path to hand to load_model.
std::string materialize(const HostileCase& c, const ScratchDir& dir) {
  switch (c.kind) {
    case CorpusKind::Safetensors:
      testing_io::write_file(dir / "bad.safetensors", c.bytes);
      return (dir / "bad.safetensors").string();
    case CorpusKind::Gguf:
      testing_io::write_file(dir / "bad.gguf", c.bytes);
      return (dir / "bad.gguf").string();
    case CorpusKind::Llama2c:
      testing_io::write_file(dir / "bad.bin", c.bytes);
      return (dir / "bad.bin").string();
    case CorpusKind::Config:
      testing_io::write_file(dir / "config.json", c.bytes);
      return dir.path().string();
    case CorpusKind::ShardIndex:
      testing_io::write_file(dir / "config.json", testing_io::good_config_json());
      testing_io::write_file(dir / "model.safetensors.index.json", c.bytes);
      for (const auto& [name, header] : c.shards) {
        testing_io::write_file(dir / name, testing_io::safetensors_bytes(header, 8));
      }
      return dir.path().string();
  }
  return {};
}

TEST(HostileFiles, CorpusCoversEveryFormat) {
  std::map<CorpusKind, int> per_kind;
  std::set<std::string> names;
  for (const auto& c : testing_io::hostile_cases()) {
    ++per_kind[c.kind];
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
  }
  EXPECT_GE(names.size(), 30u);
  EXPECT_GE(per_kind[CorpusKind::Safetensors], 12);
  EXPECT_GE(per_kind[CorpusKind::Gguf], 12);
  EXPECT_GE(per_kind[CorpusKind::Llama2c], 8);
  EXPECT_GE(per_kind[CorpusKind::Config], 8);
  EXPECT_GE(per_kind[CorpusKind::ShardIndex], 3);
}

TEST(HostileFiles, GoodBaselinesParse) {
  EXPECT_TRUE(parse_safetensors_header(as_span(testing_io::good_safetensors()), "good").ok());
  auto g = GgufFile::parse(as_span(testing_io::good_gguf()), "good", nullptr);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->tensors().size(), 1u);
  auto l = load_llama2c_bytes(as_span(testing_io::good_llama2c()), "good", nullptr);
  EXPECT_TRUE(l.ok()) << l.error().to_string();
  EXPECT_TRUE(parse_hf_config(testing_io::good_config_json(), "good").ok());
}

TEST(HostileFiles, EveryBadFileGivesAClearError) {
  for (const auto& c : testing_io::hostile_cases()) {
    SCOPED_TRACE(c.name);
    // 1. The in-memory parser (what the fuzzers drive).
    switch (c.kind) {
      case CorpusKind::Safetensors: {
        auto r = parse_safetensors_header(as_span(c.bytes), "bad.safetensors");
        ASSERT_FALSE(r.ok()) << c.name << " parsed";
        expect_error("parser", r.error(), c, "bad.safetensors");
        break;
      }
      case CorpusKind::Gguf: {
        auto r = GgufFile::parse(as_span(c.bytes), "bad.gguf", nullptr);
        ASSERT_FALSE(r.ok()) << c.name << " parsed";
        expect_error("parser", r.error(), c, "bad.gguf");
        break;
      }
      case CorpusKind::Llama2c: {
        auto r = load_llama2c_bytes(as_span(c.bytes), "bad.bin", nullptr);
        ASSERT_FALSE(r.ok()) << c.name << " parsed";
        expect_error("parser", r.error(), c, "bad.bin");
        break;
      }
      case CorpusKind::Config: {
        auto r = parse_hf_config({reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size()},
                                 "config.json");
        ASSERT_FALSE(r.ok()) << c.name << " parsed";
        expect_error("parser", r.error(), c, "config.json");
        break;
      }
      case CorpusKind::ShardIndex:
        break;
    }
    // 2. Through files: load_model and describe_checkpoint (what `qforge inspect` runs).
    ScratchDir dir;
    const std::string path = materialize(c, dir);
    const std::string file_name = c.kind == CorpusKind::Config       ? "config.json"
                                  : c.kind == CorpusKind::ShardIndex ? "index.json"
                                                                     : path;
    auto loaded = load_model(path);
    ASSERT_FALSE(loaded.ok()) << c.name << " loaded";
    expect_error("load_model", loaded.error(), c, file_name);
    auto described = describe_checkpoint(path);
    ASSERT_FALSE(described.ok()) << c.name << " described";
    expect_error("describe_checkpoint", described.error(), c, file_name);
  }
}

struct CliResult {
  int exit_code;
  std::string output;
};

CliResult run_cli(const std::string& args) {
  const std::string command = std::string(QFORGE_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  CliResult result{-1, ""};
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(HostileFiles, CliInspectExitsWithOneAndNamesTheField) {
  const std::set<std::string> picked = {"safetensors/gap", "gguf/array_over_cap",
                                        "llama2c/truncated", "config/unknown_model_type",
                                        "index/path_traversal"};
  int ran = 0;
  for (const auto& c : testing_io::hostile_cases()) {
    if (picked.count(c.name) == 0) continue;
    ScratchDir dir;
    const std::string path = materialize(c, dir);
    for (const char* flags : {"", " --json"}) {
      CliResult r = run_cli("inspect '" + path + "'" + flags);
      EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
      EXPECT_EQ(r.output.rfind("qforge: error: ", 0), 0u) << c.name << ": " << r.output;
      for (const auto& needle : c.expect) {
        EXPECT_NE(r.output.find(needle), std::string::npos) << c.name << ": " << r.output;
      }
    }
    ++ran;
  }
  EXPECT_EQ(ran, 5);
}

TEST(HostileFiles, CliInspectOnGoodFilesExitsZero) {
  ScratchDir dir;
  testing_io::write_file(dir / "good.gguf", testing_io::good_gguf());
  CliResult r = run_cli("inspect '" + (dir / "good.gguf").string() + "' --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"total_params\": 32"), std::string::npos) << r.output;
  testing_io::write_file(dir / "good.bin", testing_io::good_llama2c());
  r = run_cli("inspect '" + (dir / "good.bin").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("llama2.c legacy v0"), std::string::npos) << r.output;
}

// Writes the fuzzers' seed corpora, <dir>/<target>/<case> (QFORGE_WRITE_FUZZ_SEEDS=DIR, which is
// how fuzz/corpus/ in the repository was made; otherwise a scratch directory)
// and checks them: the valid seeds made by the writers parse, so the fuzzers start deep inside
// each format, and every hostile case lands in its target's corpus.
TEST(HostileFiles, FuzzSeedCorporaAreWrittenAndTheValidSeedsParse) {
  ScratchDir scratch;
  const char* out = std::getenv("QFORGE_WRITE_FUZZ_SEEDS");
  const std::filesystem::path root =
      out != nullptr && *out != '\0' ? std::filesystem::path(out) : scratch.path();
  auto target_of = [](CorpusKind k) -> const char* {
    switch (k) {
      case CorpusKind::Safetensors:
        return "safetensors_header";
      case CorpusKind::Gguf:
        return "gguf";
      case CorpusKind::Llama2c:
        return "llama2c";
      case CorpusKind::Config:
        return "hf_config";
      case CorpusKind::ShardIndex:
        return nullptr;
    }
    return nullptr;
  };
  for (const char* t : {"safetensors_header", "gguf", "llama2c", "hf_config"}) {
    std::filesystem::create_directories(root / t);
  }
  testing_io::write_file(root / "safetensors_header" / "good", testing_io::good_safetensors());
  testing_io::write_file(root / "gguf" / "good", testing_io::good_gguf());
  testing_io::write_file(root / "llama2c" / "good", testing_io::good_llama2c());
  testing_io::write_file(root / "hf_config" / "good", testing_io::good_config_json());
  // Richer valid files from the writers, so the fuzzers start deep inside each format.
  {
    SafetensorsWriter w;
    std::vector<uint16_t> h(6, 0x3F80);
    std::vector<uint8_t> q(5, 0x38);
    std::vector<float> f(3, 1.0f);
    EXPECT_TRUE(w.add("w.bf16", DType::BF16, {2, 3},
                      as_span(std::vector<uint8_t>(reinterpret_cast<uint8_t*>(h.data()),
                                                   reinterpret_cast<uint8_t*>(h.data()) + 12)))
                    .ok());
    EXPECT_TRUE(w.add("w.fp8", DType::F8_E4M3FN, {5}, as_span(q)).ok());
    EXPECT_TRUE(w.add("w.scale", DType::F32, {3},
                      std::span<const std::byte>(reinterpret_cast<const std::byte*>(f.data()), 12))
                    .ok());
    w.set_metadata("quant_algo", "FP8");
    auto bytes = w.serialize();
    ASSERT_TRUE(bytes.ok());
    std::vector<uint8_t> raw(reinterpret_cast<const uint8_t*>(bytes->data()),
                             reinterpret_cast<const uint8_t*>(bytes->data()) + bytes->size());
    testing_io::write_file(root / "safetensors_header" / "writer_three_dtypes", raw);
  }
  {
    GgufWriter w;
    const std::vector<float> fl = {1.0f, 2.0f};
    const std::vector<int32_t> in = {1, -1};
    EXPECT_TRUE(w.set("general.architecture", GgufValue::string("llama")).ok());
    EXPECT_TRUE(w.set("llama.embedding_length", GgufValue::u32(64)).ok());
    EXPECT_TRUE(w.set("llama.feed_forward_length", GgufValue::u32(64)).ok());
    EXPECT_TRUE(w.set("llama.block_count", GgufValue::u32(1)).ok());
    EXPECT_TRUE(w.set("llama.attention.head_count", GgufValue::u32(2)).ok());
    EXPECT_TRUE(w.set("llama.vocab_size", GgufValue::u32(2)).ok());
    EXPECT_TRUE(w.set("i8", GgufValue::i8(-1)).ok());
    EXPECT_TRUE(w.set("u16", GgufValue::u16(1)).ok());
    EXPECT_TRUE(w.set("i16", GgufValue::i16(-1)).ok());
    EXPECT_TRUE(w.set("i64", GgufValue::i64(-1)).ok());
    EXPECT_TRUE(w.set("f64", GgufValue::f64(0.5)).ok());
    EXPECT_TRUE(w.set("b", GgufValue::boolean(true)).ok());
    EXPECT_TRUE(w.set("tokenizer.ggml.tokens", GgufValue::string_array({"<s>", "a"})).ok());
    EXPECT_TRUE(
        w.set("tokenizer.ggml.scores", GgufValue::array_of<float>(GgufType::FLOAT32, fl)).ok());
    EXPECT_TRUE(
        w.set("tokenizer.ggml.token_type", GgufValue::array_of<int32_t>(GgufType::INT32, in)).ok());
    std::vector<std::byte> zeros(64 * 4);
    EXPECT_TRUE(w.add_tensor("token_embd.weight", 0, {2, 64}, {zeros.data(), 512}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", 8, {1, 64}, {zeros.data(), 68}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.attn_k.weight", 2, {1, 64}, {zeros.data(), 36}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.attn_v.weight", 3, {1, 64}, {zeros.data(), 40}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.ffn_up.weight", 1, {1, 64}, {zeros.data(), 128}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.ffn_down.weight", 30, {1, 64}, {zeros.data(), 128}).ok());
    auto bytes = w.serialize();
    ASSERT_TRUE(bytes.ok());
    std::vector<uint8_t> raw(reinterpret_cast<const uint8_t*>(bytes->data()),
                             reinterpret_cast<const uint8_t*>(bytes->data()) + bytes->size());
    testing_io::write_file(root / "gguf" / "writer_all_types", raw);
  }
  testing_io::write_file(root / "hf_config" / "qwen3", std::string(R"({
    "model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 151936, "dtype": "bfloat16", "eos_token_id": [1, 2],
    "use_sliding_window": false, "sliding_window": null,
    "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0}})"));
  testing_io::write_file(root / "hf_config" / "llama31", std::string(R"({
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})"));
  for (const auto& c : testing_io::hostile_cases()) {
    const char* t = target_of(c.kind);
    if (t == nullptr) continue;
    std::string name = c.name.substr(c.name.find('/') + 1);
    testing_io::write_file(root / t / name, c.bytes);
  }
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_TRUE(parse_safetensors_header(
                  as_span(read(root / "safetensors_header" / "writer_three_dtypes")), "seed")
                  .ok());
  auto g = GgufFile::parse(as_span(read(root / "gguf" / "writer_all_types")), "seed", nullptr);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->tensors().size(), 6u);
  for (const char* name : {"qwen3", "llama31"}) {
    const std::vector<uint8_t> text = read(root / "hf_config" / name);
    EXPECT_TRUE(
        parse_hf_config({reinterpret_cast<const char*>(text.data()), text.size()}, name).ok())
        << name;
  }
  std::map<std::string, int> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) ++files[e.path().parent_path().filename().string()];
  }
  EXPECT_GE(files["safetensors_header"], 12);
  EXPECT_GE(files["gguf"], 3);
  EXPECT_GE(files["llama2c"], 2);
  EXPECT_GE(files["hf_config"], 3);
}

}  // namespace
}  // namespace qforge
