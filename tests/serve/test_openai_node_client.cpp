// A real client: the official `openai` Node package (scripts/setup.sh installs it into
// build/node) drives completions, chat and streaming against the server over loopback; the
// texts equal LLM::generate's and the SDK sees the 404/401 errors as its typed exceptions.
// Skipped, saying why, only when node or the package is absent.
#include <array>
#include <cstdio>
#include <filesystem>

#include "qforge/serve/chat_template.h"
#include "serve_test_util.h"

namespace qforge {
namespace {

using test::Json;

TEST(ServeNodeClient, OfficialOpenAiPackageDrivesTheServer) {
  const auto modules = std::filesystem::path(QFORGE_SOURCE_DIR) / "build" / "node" / "node_modules";
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node is not installed (Debian: nodejs); skipping the openai client test";
  }
  if (!std::filesystem::exists(modules / "openai" / "package.json")) {
    GTEST_SKIP() << "the openai npm package is not in " << modules.string()
                 << " (scripts/setup.sh installs it: npm install --prefix build/node openai@4)";
  }
  if (!test::stories_engine()) GTEST_SKIP() << "stories260K not found in ../shared/models";
  auto config = test::test_config();
  config.api_key = "node-test-key";
  auto server = test::start_server(config);
  ASSERT_NE(server, nullptr);

  const std::string cmd = "NODE_PATH='" + modules.string() + "' node '" + QFORGE_SOURCE_DIR +
                          "/tests/serve/openai_client.cjs' " + std::to_string(server->port()) +
                          " stories260K node-test-key 2>&1";
  std::string output;
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) output.append(buf.data(), n);
  const int status = pclose(pipe);
  ASSERT_EQ(status, 0) << output;
  const Json r = Json::parse(output, nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << output;

  // The reference texts: the same prompts on LLM::generate (greedy).
  auto engine = test::stories_engine();
  auto llm = LLM::create(*engine).value();
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 24;
  const auto completion = llm.generate({"Once upon a time"}, p).value();
  const auto tmpl = ChatTemplate::parse(default_chat_template()).value();
  const Json messages = Json::array({{{"role", "user"}, {"content", "Tell me a story"}}});
  const std::string chat_prompt = apply_chat_template(tmpl, messages, true, "<s>", "</s>").value();
  const auto chat =
      llm.generate_ids({llm.tokenizer()->encode(chat_prompt, false).value()}, p).value();

  EXPECT_EQ(r["completion"].get<std::string>(), completion[0].text);
  EXPECT_EQ(r["completion_tokens"].get<int64_t>(),
            static_cast<int64_t>(completion[0].output_ids.size()));
  EXPECT_EQ(r["completion_stream"].get<std::string>(), completion[0].text);
  EXPECT_EQ(r["chat"].get<std::string>(), chat[0].text);
  EXPECT_EQ(r["chat_role"], "assistant");
  EXPECT_EQ(r["chat_stream"].get<std::string>(), chat[0].text);
  EXPECT_TRUE(r["chat_stream_finish"] == "length" || r["chat_stream_finish"] == "stop");
  EXPECT_EQ(r["models"], Json::array({"stories260K"}));
  EXPECT_EQ(r["unknown_model_status"], 404);
  EXPECT_EQ(r["unknown_model_class"], "NotFoundError");
  EXPECT_EQ(r["bad_key_status"], 401);
  EXPECT_EQ(r["bad_key_class"], "AuthenticationError");
}

}  // namespace
}  // namespace qforge
