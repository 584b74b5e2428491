// `qforge tokenize` end to end: ids and pieces, --json, --decode, --no-bos, and exit code 1 with
// a clear message for bad ids and unreadable or hostile tokenizer files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "tokenizer_test_util.h"

namespace qforge {
namespace {

using testing_tok::fixture;
using testing_tok::models_dir;

struct CliResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CliResult run_cli(const std::vector<std::string>& args) {
  std::string command = quote(QFORGE_CLI_PATH);
  for (const auto& a : args) command += " " + quote(a);
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(CmdTokenize, PrintsIdsAndPieces) {
  QF_TOK_REQUIRE_SHARED();
  const auto gguf = models_dir() / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf";
  auto r = run_cli({"tokenize", "--tokenizer", gguf.string(), "--text", "Hello world"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ids (3): 1 15043 3186"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("15043  \xE2\x96\x81Hello"), std::string::npos) << r.output;
  r = run_cli({"tokenize", "--tokenizer", gguf.string(), "--text", "Hello world", "--no-bos"});
  EXPECT_NE(r.output.find("ids (2): 15043 3186"), std::string::npos) << r.output;
}

TEST(CmdTokenize, JsonAndDecode) {
  QF_TOK_REQUIRE_SHARED();
  const auto tok = models_dir() / "stories260K" / "tok512.bin";
  auto r =
      run_cli({"tokenize", "--tokenizer", tok.string(), "--text", "Once upon a time", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("ids").get<std::vector<int32_t>>(), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(j.at("pieces")[1].get<std::string>(), " Once");
  EXPECT_EQ(j.at("kind").get<std::string>(), "llama2c");
  r = run_cli(
      {"tokenize", "--tokenizer", tok.string(), "--decode", "1, 403,407,261,378", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output).at("text").get<std::string>(), "Once upon a time");
  r = run_cli({"tokenize", "--tokenizer", fixture("spm_style_llama2.json").string(), "--decode",
               "1,19,24"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\nHello world\n"), std::string::npos) << r.output;
}

TEST(CmdTokenize, ErrorsExitOne) {
  const auto fx = fixture("spm_style_llama2.json").string();
  auto r = run_cli({"tokenize", "--tokenizer", fx, "--decode", "1,99999"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("id 99999 is not a token"), std::string::npos) << r.output;
  r = run_cli({"tokenize", "--tokenizer", fx, "--decode", "1,x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("'x' is not a token id"), std::string::npos) << r.output;
  r = run_cli({"tokenize", "--tokenizer", "/nonexistent/tokenizer.json", "--text", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("/nonexistent/tokenizer.json"), std::string::npos) << r.output;
  r = run_cli({"tokenize", "--tokenizer", fx});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("exactly one of"), std::string::npos) << r.output;
  testing_tok::ScratchDir dir;
  testing_tok::write_file(dir / "bad.json",
                          R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
  r = run_cli({"tokenize", "--tokenizer", (dir / "bad.json").string(), "--text", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("bad.json: field 'model.merges[0]'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace qforge
