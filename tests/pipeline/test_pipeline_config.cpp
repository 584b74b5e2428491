// Pipeline TOML: the shipped example parses to the values it states, every key is documented in
// --help, and bad files (syntax, unknown tables and keys, wrong types, bad values) are errors
// that name the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "qforge/pipeline/pipeline_config.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path example() {
  return fs::path(QFORGE_SOURCE_DIR) / "examples" / "pipeline.toml";
}

const char* kMinimal = R"(
[model]
path = "/m"
[eval]
dataset = "/d.txt"
[[candidate]]
qformat = "fp8"
)";

std::string error_of(const std::string& toml) {
  auto r = parse_pipeline_config(toml, "t.toml", "/base");
  return r.ok() ? std::string("(parsed)") : r.error().to_string();
}

// examples/default.toml is what `qforge pipeline` runs with no arguments (the README's first
// command): the built-in model, its held-out text, four candidates under the 0.5 % gate.
TEST(PipelineConfig, BuiltInDefaultParsesAndPointsAtTheShippedModel) {
  const fs::path file = fs::path(QFORGE_SOURCE_DIR) / "examples" / "default.toml";
  auto c = load_pipeline_config(file);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(fs::exists(fs::path(c->model) / "model.safetensors")) << c->model;
  EXPECT_TRUE(fs::exists(c->eval_dataset)) << c->eval_dataset << " (scripts/default_model_data.sh)";
  ASSERT_EQ(c->calib_dataset.size(), 1u);
  EXPECT_TRUE(fs::exists(c->calib_dataset[0])) << c->calib_dataset[0];
  EXPECT_EQ(c->ctx, 256);
  EXPECT_EQ(c->precision, "bf16");
  ASSERT_EQ(c->candidates.size(), 4u);
  EXPECT_DOUBLE_EQ(c->gate.max_delta_ppl_percent, 0.5);
  EXPECT_TRUE(validate_pipeline_config(c.value()).ok());
}

TEST(PipelineConfig, ExampleFileParsesToItsValues) {
  auto c = load_pipeline_config(example());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const fs::path base = fs::absolute(example()).parent_path();
  EXPECT_EQ(c->model,
            (base / "../../shared/models/stories260K/stories260K.bin").lexically_normal());
  EXPECT_EQ(c->ctx, 256);
  EXPECT_EQ(c->max_chunks, 12);
  EXPECT_EQ(c->calib_samples, 16);
  EXPECT_EQ(c->calib_batch, 4);
  EXPECT_EQ(c->calib_max_length, 128);
  EXPECT_EQ(c->precision, "f32");
  ASSERT_EQ(c->tasks.size(), 1u);
  EXPECT_TRUE(fs::exists(c->tasks[0])) << c->tasks[0];
  ASSERT_EQ(c->candidates.size(), 3u);
  EXPECT_EQ(c->candidates[0].name, "fp8");
  EXPECT_EQ(c->candidates[0].kv_cache, "fp8");
  EXPECT_EQ(c->candidates[1].qformat, "int4_awq");
  EXPECT_EQ(c->candidates[1].group_size, 32);
  EXPECT_EQ(c->candidates[2].qformat, "int8_wo");
  EXPECT_DOUBLE_EQ(c->gate.max_delta_ppl_percent, 0.5);
  EXPECT_DOUBLE_EQ(candidate_ppl_threshold(c.value(), c->candidates[1]), 25.0);
  EXPECT_DOUBLE_EQ(candidate_ppl_threshold(c.value(), c->candidates[0]), 0.5);
  EXPECT_FALSE(c->gate.max_mean_kld.has_value());
}

TEST(PipelineConfig, MinimalFileGetsDefaultsAndRelativePathsResolve) {
  auto c = parse_pipeline_config(
      "[model]\npath = \"m\"\n[eval]\ndataset = \"d.txt\"\n[[candidate]]\nqformat = \"fp8\"\n"
      "max_delta_ppl_percent = 2\n",
      "t.toml", "/base/dir");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->model, "/base/dir/m");
  EXPECT_EQ(c->eval_dataset, "/base/dir/d.txt");
  ASSERT_EQ(c->calib_dataset.size(), 1u);
  EXPECT_EQ(c->calib_dataset[0], "/base/dir/d.txt");  // calibration defaults to the eval text
  EXPECT_EQ(c->candidates[0].name, "fp8");
  EXPECT_DOUBLE_EQ(candidate_ppl_threshold(c.value(), c->candidates[0]), 2.0);
  EXPECT_EQ(c->ctx, 256);
  EXPECT_EQ(c->output_dir, "qforge-pipeline");  // a default: relative to the working directory
}

TEST(PipelineConfig, BadFilesNameTheProblem) {
  struct Case {
    std::string toml;
    std::string needle;
  };
  const std::string m = kMinimal;
  for (const Case& c : std::vector<Case>{
           {m + "[eval2]\n", "unknown table 'eval2'"},
           {"[eval]\nctxx = 5\n" + m.substr(m.find("[[candidate]]")),
            "unknown key 'ctxx' in [eval]; valid keys: dataset, ctx, stride"},
           {m + "name = 5\n", "candidate.name must be a string, got an integer"},
           {m + "bogus = 1\n", "unknown key 'bogus' in [candidate]"},
           {"[model]\npath = \"/m\"\n[eval]\ndataset = \"/d\"\nctx = \"big\"\n[[candidate]]\n"
            "qformat = \"fp8\"\n",
            "eval.ctx must be an integer"},
           {m + "[gate]\nmax_delta_ppl_percent = \"x\"\n",
            "gate.max_delta_ppl_percent must be a number"},
           {m + "[gate]\nmax_delta_ppl_percent_by_format = { fp9 = 1.0 }\n",
            "'fp9' is not a qformat"},
           {m + "[[candidate]]\nqformat = \"fp8\"\n", "two candidates are named 'fp8'"},
           {m + "[[candidate]]\nqformat = \"fp7\"\n", "fp7"},
           {m + "[[candidate]]\nqformat = \"int4_awq\"\nname = \"../x\"\n",
            "must be 1-64 characters"},
           {m + "[[candidate]]\nqformat = \"int4_awq\"\nkv_cache = \"fp4\"\n", "kv_cache = 'fp4'"},
           {m + "[build]\nprecision = \"f8\"\n", "build.precision = 'f8'"},
           {m + "[build]\nmax_input_len = 64\n", "exceeds build.max_input_len = 64"},
           {m + "[calibration]\nsamples = 0\n", "calibration.samples = 0 must be >= 1"},
           {"[model]\npath = \"/m\"\n[eval]\ndataset = \"/d\"\nscoring = \"half\"\n[[candidate]]\n"
            "qformat = \"fp8\"\n",
            "eval.scoring"},
           {"[model]\npath = \"/m\"\n[eval]\ndataset = \"/d\"\n", "no candidates"},
           {"[eval]\ndataset = \"/d\"\n[[candidate]]\nqformat = \"fp8\"\n", "no model"},
           {"[model\npath = 1\n", "t.toml:1:"},
           {"model = 3\n", "'model' must be a table"},
           {"candidate = 3\n", "must be an array of tables"},
       }) {
    const std::string e = error_of(c.toml);
    EXPECT_NE(e.find(c.needle), std::string::npos) << "want '" << c.needle << "' in: " << e;
  }
  // The line of an unknown key is named.
  EXPECT_NE(error_of(m + "\n\nfoo = 1\n").find("t.toml:10: unknown key 'foo'"), std::string::npos)
      << error_of(m + "\n\nfoo = 1\n");
  // Files: missing, not UTF-8.
  EXPECT_FALSE(load_pipeline_config("/nonexistent/pipeline.toml").ok());
}

TEST(PipelineConfig, HelpDocumentsEveryKeyAndDefaultsHaveThreeCandidates) {
  const std::string help = pipeline_config_help();
  for (const PipelineKey& k : pipeline_config_keys()) {
    EXPECT_NE(help.find(k.key), std::string::npos) << k.key;
  }
  for (const char* t :
       {"[model]", "[output]", "[eval]", "[calibration]", "[build]", "[gate]", "[[candidate]]"}) {
    EXPECT_NE(help.find(t), std::string::npos) << t;
  }
  const PipelineConfig d = default_pipeline_config("/m", "/d.txt");
  ASSERT_EQ(d.candidates.size(), 3u);
  EXPECT_EQ(d.candidates[0].qformat, "fp8");
  EXPECT_EQ(d.candidates[0].kv_cache, "fp8");
  EXPECT_EQ(d.candidates[1].qformat, "int4_awq");
  EXPECT_EQ(d.candidates[2].qformat, "int8_wo");
  EXPECT_TRUE(validate_pipeline_config(d).ok());
  const auto run = test::run_cli("pipeline --help");
  EXPECT_EQ(run.exit_code, 0);
  for (const PipelineKey& k : pipeline_config_keys()) {
    EXPECT_NE(run.out.find(k.key), std::string::npos) << k.key;
  }
  // (No arguments run examples/default.toml: BuiltInDefaultParsesAndPointsAtTheShippedModel.)
  const auto bad = test::run_cli("pipeline --config /nonexistent/pipeline.toml");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("/nonexistent/pipeline.toml"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// Mutated copies of the example config (byte flips, truncations, inserted brackets and quotes):
// every one parses or fails with a message; none crashes (ASan builds check the memory side).
TEST(PipelineConfig, MutatedFilesNeverCrash) {
  std::ifstream in(example(), std::ios::binary);
  const std::string base((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(base.empty());
  uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char kBytes[] = "[]{}=\"'#\n.,-0123456789e+ \\\x80\xff";
  int parsed = 0, failed = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % s.size();
      switch (next() % 3) {
        case 0:
          s[pos] = kBytes[next() % (sizeof(kBytes) - 1)];
          break;
        case 1:
          s.insert(pos, 1, kBytes[next() % (sizeof(kBytes) - 1)]);
          break;
        default:
          s.resize(pos + 1);
          break;
      }
    }
    auto r = parse_pipeline_config(s, "m.toml", "/base");
    if (r.ok()) {
      ++parsed;
    } else {
      ++failed;
      EXPECT_FALSE(r.error().to_string().empty());
    }
  }
  EXPECT_GT(failed, 0);
  std::printf("mutated configs: %d parsed, %d refused\n", parsed, failed);
}

}  // namespace
}  // namespace qforge
