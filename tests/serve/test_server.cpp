// The HTTP server over real loopback HTTP on stories260K: completions and chat equal
// LLM::generate on the same prompt, streamed deltas add up to the non-streamed text, metrics
// parse and count what was served, bad requests get 4xx with a message naming the field, the
// API key is enforced, concurrent clients are answered correctly and batched together, a full
// queue gives 429, shutdown finishes (or after the grace period cancels) in-flight requests,
// and A/B routing and shadow scoring label and measure what they should.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "qforge/core/log.h"
#include "qforge/serve/chat_template.h"
#include "serve_test_util.h"

namespace qforge {
namespace {

using test::Json;

constexpr const char* kPrompt = "Once upon a time";

// Greedy reference: the same prompt on a fresh LLM (the batched runtime is batch-invariant).
std::vector<RequestOutput> reference(const std::vector<std::string>& prompts, int64_t max_tokens,
                                     bool ignore_eos = false, bool add_bos = true) {
  auto e = test::stories_engine();
  EXPECT_TRUE(e.has_value());
  auto llm = LLM::create(*e).value();
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = ignore_eos;
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& s : prompts) ids.push_back(llm.tokenizer()->encode(s, add_bos).value());
  return llm.generate_ids(ids, p).value();
}

std::string completion_body(const std::string& prompt, int64_t max_tokens, bool stream = false) {
  Json j{{"model", "stories260K"},
         {"prompt", prompt},
         {"max_tokens", max_tokens},
         {"temperature", 0},
         {"stream", stream}};
  return j.dump();
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::stories_engine()) GTEST_SKIP() << "stories260K not found in ../shared/models";
  }
};

TEST_F(ServeTest, CompletionEqualsGenerate) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  const auto ref = reference({kPrompt}, 40);
  const auto r = test::post(*c, "/v1/completions", completion_body(kPrompt, 40));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_EQ(r.body["model"], "stories260K");
  EXPECT_EQ(r.body["choices"][0]["text"].get<std::string>(), ref[0].text);
  EXPECT_FALSE(ref[0].text.empty());
  EXPECT_EQ(r.body["choices"][0]["finish_reason"],
            ref[0].finish_reason == FinishReason::kLength ? "length" : "stop");
  EXPECT_EQ(r.body["usage"]["completion_tokens"].get<int64_t>(),
            static_cast<int64_t>(ref[0].output_ids.size()));
  EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<int64_t>(),
            static_cast<int64_t>(ref[0].prompt_ids.size()));
  EXPECT_EQ(r.variant, "candidate");

  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(Json::parse(models->body)["data"][0]["id"], "stories260K");
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Json::parse(health->body)["status"], "ok");
}

TEST_F(ServeTest, ChatAppliesTheTemplateThenGenerates) {
  const Json messages = Json::array({{{"role", "user"}, {"content", "Tell me a story"}}});
  // Default (ChatML) template: no BOS in the text, so none is added.
  {
    auto server = test::start_server(test::test_config());
    ASSERT_NE(server, nullptr);
    auto c = test::client(server->port());
    const auto tmpl = ChatTemplate::parse(default_chat_template()).value();
    const std::string prompt = apply_chat_template(tmpl, messages, true, "<s>", "</s>").value();
    const auto ref = reference({prompt}, 30, false, false);
    const auto r =
        test::post(*c, "/v1/chat/completions",
                   Json{{"messages", messages}, {"max_tokens", 30}, {"temperature", 0}}.dump());
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["object"], "chat.completion");
    EXPECT_EQ(r.body["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(r.body["choices"][0]["message"]["content"].get<std::string>(), ref[0].text);
    EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<int64_t>(),
              static_cast<int64_t>(ref[0].prompt_ids.size()));
  }
  // A template that writes bos_token: the text "<s>" becomes the BOS id.
  {
    auto config = test::test_config();
    config.chat_template =
        "{{ bos_token }}{% for m in messages %}{{ m.role | upper }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}";
    auto server = test::start_server(config);
    ASSERT_NE(server, nullptr);
    auto c = test::client(server->port());
    const auto ref = reference({"USER: Tell me a story\nASSISTANT:"}, 30, false, true);
    const auto r =
        test::post(*c, "/v1/chat/completions",
                   Json{{"messages", messages}, {"max_tokens", 30}, {"temperature", 0}}.dump());
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["message"]["content"].get<std::string>(), ref[0].text);
    EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<int64_t>(),
              static_cast<int64_t>(ref[0].prompt_ids.size()));
    // A template that raises is the client's 400, with the template's message.
    const auto bad =
        test::post(*c, "/v1/chat/completions",
                   Json{{"messages", Json::array({{{"role", "user"}, {"content", 3}}})}}.dump());
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body["error"]["param"], "messages[0].content") << bad.raw;
  }
}

// The model directory's tokenizer_config.json supplies the template and the special tokens.
TEST_F(ServeTest, ChatTemplateComesFromTokenizerConfig) {
  const auto dir = std::filesystem::temp_directory_path() / "qforge_serve_tokcfg_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": "<s>", "eos_token": "</s>", "chat_template": )"
      << Json("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }} {% endfor %}")
             .dump()
      << "}";
  auto config = test::test_config();
  config.model_path = (dir / "model.bin").string();
  auto server = test::start_server(config);
  std::filesystem::remove_all(dir);
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  const auto ref = reference({"[user] Hi "}, 12, false, true);
  const auto r = test::post(*c, "/v1/chat/completions",
                            Json{{"messages", Json::array({{{"role", "user"}, {"content", "Hi"}}})},
                                 {"max_tokens", 12},
                                 {"temperature", 0}}
                                .dump());
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["message"]["content"].get<std::string>(), ref[0].text);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<int64_t>(),
            static_cast<int64_t>(ref[0].prompt_ids.size()));
}

TEST_F(ServeTest, StreamingDeltasAddUpToTheText) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  const auto plain = test::post(*c, "/v1/completions", completion_body(kPrompt, 48));
  ASSERT_EQ(plain.status, 200);
  const std::string text = plain.body["choices"][0]["text"];

  auto res = c->Post("/v1/completions", completion_body(kPrompt, 48, true), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  bool done = false;
  const auto events = test::parse_sse(res->body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  std::string joined;
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_FALSE(events[i].is_discarded());
    joined += events[i]["choices"][0]["text"].get<std::string>();
    if (i + 1 < events.size()) EXPECT_TRUE(events[i]["choices"][0]["finish_reason"].is_null());
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"],
            plain.body["choices"][0]["finish_reason"]);

  // Chat: a role chunk first, then content deltas, then usage when asked.
  const Json chat{{"messages", Json::array({{{"role", "user"}, {"content", "Hi"}}})},
                  {"max_tokens", 24},
                  {"temperature", 0}};
  const auto chat_plain = test::post(*c, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(chat_plain.status, 200);
  Json streamed = chat;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  res = c->Post("/v1/chat/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(res);
  const auto chat_events = test::parse_sse(res->body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chat_events.size(), 3u);
  EXPECT_EQ(chat_events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (const Json& e : chat_events) {
    if (e["choices"].empty()) continue;
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (e["choices"][0]["delta"].contains("content")) {
      content += e["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(content, chat_plain.body["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_EQ(chat_events.back()["usage"]["completion_tokens"],
            chat_plain.body["usage"]["completion_tokens"]);
}

// A streaming client that disconnects frees its batch slot: the sequence is aborted, not run to
// max_tokens.
TEST_F(ServeTest, DisconnectedStreamIsAborted) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  {
    auto c = test::client(server->port());
    int chunks = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body =
        Json{{"prompt", kPrompt}, {"max_tokens", 400}, {"ignore_eos", true}, {"stream", true}}
            .dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
    auto res = c->send(req);
    EXPECT_GE(chunks, 3);
  }  // the connection closes here
  auto c = test::client(server->port());
  std::map<std::string, double> m;
  for (int i = 0; i < 500; ++i) {
    m = test::scrape(*c);
    if (m[R"(qforge_requests_total{endpoint="completions",status="499",variant="candidate"})"] >=
            1 &&
        m[R"(qforge_running_batch_size{variant="candidate"})"] == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(m[R"(qforge_requests_total{endpoint="completions",status="499",variant="candidate"})"],
            1);
  EXPECT_EQ(m[R"(qforge_running_batch_size{variant="candidate"})"], 0);
  EXPECT_EQ(m[R"(qforge_kv_cache_blocks_used{variant="candidate"})"], 0);
  EXPECT_LT(m[R"(qforge_generation_tokens_total{variant="candidate"})"], 400);
}

TEST_F(ServeTest, MetricsCountWhatWasServed) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  int64_t generated = 0, prompt_tokens = 0;
  for (int i = 0; i < 3; ++i) {
    const auto r = test::post(*c, "/v1/completions", completion_body(kPrompt, 10 + i));
    ASSERT_EQ(r.status, 200);
    generated += r.body["usage"]["completion_tokens"].get<int64_t>();
    prompt_tokens += r.body["usage"]["prompt_tokens"].get<int64_t>();
  }
  EXPECT_EQ(test::post(*c, "/v1/completions", "{").status, 400);
  auto m = test::scrape(*c);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[R"(qforge_requests_total{endpoint="completions",status="200",variant="candidate"})"],
            3);
  EXPECT_EQ(m[R"(qforge_requests_total{endpoint="completions",status="400",variant="none"})"], 1);
  EXPECT_EQ(m[R"(qforge_generation_tokens_total{variant="candidate"})"],
            static_cast<double>(generated));
  EXPECT_EQ(m[R"(qforge_prompt_tokens_total{variant="candidate"})"],
            static_cast<double>(prompt_tokens));
  EXPECT_EQ(m[R"(qforge_time_to_first_token_seconds_count{variant="candidate"})"], 3);
  EXPECT_EQ(m[R"(qforge_inter_token_latency_seconds_count{variant="candidate"})"],
            static_cast<double>(generated - 3));
  EXPECT_GT(m[R"(qforge_time_to_first_token_seconds_sum{variant="candidate"})"], 0);
  EXPECT_EQ(m[R"(qforge_queue_depth{variant="candidate"})"], 0);
  EXPECT_EQ(m[R"(qforge_running_batch_size{variant="candidate"})"], 0);
  EXPECT_EQ(m[R"(qforge_kv_cache_blocks_used{variant="candidate"})"], 0);
  EXPECT_GT(m[R"(qforge_kv_cache_blocks_total{variant="candidate"})"], 0);
}

TEST_F(ServeTest, BadRequestsGet4xxNamingTheField) {
  auto config = test::test_config();
  config.max_body_bytes = 64 << 10;
  auto server = test::start_server(config);
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  struct Case {
    std::string path, body;
    int status;
    std::string param, message;
  };
  const std::string many_words = [] {
    std::string s;
    for (int i = 0; i < 400; ++i) s += "once upon a time ";
    return s;
  }();
  const std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400, "", "not valid JSON"},
      {"/v1/completions", "[1, 2]", 400, "", "must be a JSON object"},
      {"/v1/completions", std::string(5000, '[') + std::string(5000, ']'), 400, "",
       "JSON nests deeper than 64 levels"},
      {"/v1/completions", R"({"max_tokens": 4})", 400, "prompt", "'prompt' is required"},
      {"/v1/completions", R"({"prompt": 7})", 400, "prompt", "'prompt' must be a string"},
      {"/v1/completions", R"({"prompt": "a", "temperature": "hot"})", 400, "temperature",
       "'temperature' must be a number, not a string"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 1.5})", 400, "max_tokens",
       "'max_tokens' must be an integer"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 100000})", 400, "max_tokens",
       "above this server's limit of 400"},
      {"/v1/completions", R"({"prompt": "a", "stream": "yes"})", 400, "stream",
       "'stream' must be a boolean"},
      {"/v1/completions", R"({"prompt": "a", "n": 2})", 400, "n", "'n' must be 1"},
      {"/v1/completions", R"({"prompt": "a", "stop": [1]})", 400, "stop", "'stop' must be"},
      {"/v1/completions", R"({"prompt": "a", "model": "gpt-4"})", 404, "model",
       "the model 'gpt-4' does not exist"},
      {"/v1/completions", Json{{"prompt", many_words}}.dump(), 400, "prompt", "max_input_len"},
      {"/v1/chat/completions", R"({"model": "stories260K"})", 400, "messages",
       "'messages' is required"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "messages", "non-empty array"},
      {"/v1/chat/completions", R"({"messages": [{"content": "x"}]})", 400, "messages[0].role",
       "must be a string"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
       "messages[0].role", "expected system, user or assistant"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400,
       "messages[0].content[0]", "type 'image_url' are not supported"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", 400,
       "tools", "'tools' is not supported"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.body.substr(0, 120));
    const auto r = test::post(*c, k.path, k.body);
    EXPECT_EQ(r.status, k.status) << r.raw;
    ASSERT_FALSE(r.body.is_discarded()) << r.raw;
    const std::string message = r.body["error"]["message"];
    EXPECT_NE(message.find(k.message), std::string::npos) << message;
    if (!k.param.empty()) EXPECT_EQ(r.body["error"]["param"], k.param);
  }
  // A body over the limit never reaches the handler: 413 with a message.
  const auto big =
      test::post(*c, "/v1/completions", Json{{"prompt", std::string(100 << 10, 'a')}}.dump());
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.raw.find("exceeds the 65536-byte limit"), std::string::npos) << big.raw;
  auto missing = c->Get("/v1/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("no route GET /v1/nothing"), std::string::npos);
}

TEST_F(ServeTest, ApiKeyIsEnforcedOnV1Only) {
  auto config = test::test_config();
  config.api_key = "s3cret";
  auto server = test::start_server(config);
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  const std::string body = completion_body(kPrompt, 4);
  auto none = test::post(*c, "/v1/completions", body);
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body["error"]["message"].get<std::string>().find("missing API key"),
            std::string::npos);
  EXPECT_EQ(test::post(*c, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}).status,
            401);
  EXPECT_EQ(test::post(*c, "/v1/completions", body, {{"Authorization", "s3cret"}}).status, 401);
  const auto ok = test::post(*c, "/v1/completions", body, {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(ok.status, 200) << ok.raw;
  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServeTest, ConcurrentClientsAreBatchedAndAnsweredCorrectly) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily went",
                                            "One day",          "Tom had", "A big dog",
                                            "The sun",          "Sara and"};
  const auto ref = reference(prompts, 120, true);
  std::vector<test::HttpResult> results(prompts.size());
  std::barrier sync(static_cast<std::ptrdiff_t>(prompts.size()));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = test::client(server->port());
      const Json body{{"prompt", prompts[i]},
                      {"max_tokens", 120},
                      {"temperature", 0},
                      {"ignore_eos", true},
                      {"stream", i % 2 == 1}};
      sync.arrive_and_wait();
      if (i % 2 == 0) {
        results[i] = test::post(*c, "/v1/completions", body.dump());
      } else {
        auto res = c->Post("/v1/completions", body.dump(), "application/json");
        if (!res) return;
        results[i].status = res->status;
        bool done = false;
        std::string text;
        for (const Json& e : test::parse_sse(res->body, &done)) {
          text += e["choices"][0]["text"].get<std::string>();
        }
        results[i].body = Json{{"choices", Json::array({{{"text", text}}})}};
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    ASSERT_EQ(results[i].status, 200) << results[i].raw;
    EXPECT_EQ(results[i].body["choices"][0]["text"].get<std::string>(), ref[i].text);
  }
  auto c = test::client(server->port());
  auto m = test::scrape(*c);
  EXPECT_GT(m[R"(qforge_running_batch_size_max{variant="candidate"})"], 1);
  const double steps = m[R"(qforge_step_batch_size_count{variant="candidate"})"];
  const double single = m[R"(qforge_step_batch_size_bucket{variant="candidate",le="1"})"];
  EXPECT_GT(steps - single, 0) << "no step ran more than one sequence";
  // Batched: far fewer steps than one per token of every request.
  EXPECT_LT(steps, 8 * 120);
}

TEST_F(ServeTest, FullQueueGets429) {
  auto config = test::test_config();
  config.max_queue = 1;
  auto engine = test::stories_engine();
  ASSERT_TRUE(engine);
  engine->build_config.max_batch_size = 1;
  auto created = Server::create(config, std::move(*engine));
  ASSERT_TRUE(created.ok());
  auto server = std::move(created).value();
  ASSERT_TRUE(server->start().ok());
  std::vector<int> statuses(6);
  std::vector<std::string> bodies(6);
  std::vector<std::thread> threads;
  std::barrier sync(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto c = test::client(server->port());
      const std::string body =
          Json{{"prompt", kPrompt}, {"max_tokens", 300}, {"ignore_eos", true}}.dump();
      sync.arrive_and_wait();
      const auto r = test::post(*c, "/v1/completions", body);
      statuses[static_cast<size_t>(i)] = r.status;
      bodies[static_cast<size_t>(i)] = r.raw;
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, limited = 0;
  for (int i = 0; i < 6; ++i) {
    if (statuses[static_cast<size_t>(i)] == 200) ++ok;
    if (statuses[static_cast<size_t>(i)] == 429) {
      ++limited;
      EXPECT_NE(bodies[static_cast<size_t>(i)].find("queue is full"), std::string::npos);
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(limited, 1);
  EXPECT_EQ(ok + limited, 6);
}

TEST_F(ServeTest, ShutdownFinishesInFlightRequests) {
  auto server = test::start_server(test::test_config());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const auto ref = reference({kPrompt}, 300, true);
  test::HttpResult r;
  std::thread t([&] {
    auto c = test::client(port);
    r = test::post(
        *c, "/v1/completions",
        Json{{"prompt", kPrompt}, {"max_tokens", 300}, {"temperature", 0}, {"ignore_eos", true}}
            .dump());
  });
  // Wait until it runs, then shut down while it does.
  auto c = test::client(port);
  for (int i = 0; i < 500; ++i) {
    if (test::scrape(*c)[R"(qforge_running_batch_size{variant="candidate"})"] >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  server->shutdown();
  t.join();
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"].get<std::string>(), ref[0].text);
  // Nothing listens any more.
  auto after = test::client(port);
  after->set_connection_timeout(1, 0);
  EXPECT_FALSE(after->Get("/health"));
}

TEST_F(ServeTest, ShutdownPastTheGracePeriodCancels) {
  auto config = test::test_config();
  config.shutdown_grace_seconds = 0;
  auto server = test::start_server(config);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  test::HttpResult r;
  std::thread t([&] {
    auto c = test::client(port);
    r = test::post(*c, "/v1/completions",
                   Json{{"prompt", kPrompt}, {"max_tokens", 400}, {"ignore_eos", true}}.dump());
  });
  auto c = test::client(port);
  for (int i = 0; i < 500; ++i) {
    if (test::scrape(*c)[R"(qforge_running_batch_size{variant="candidate"})"] >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  server->shutdown();
  t.join();
  EXPECT_EQ(r.status, 503) << r.raw;
  EXPECT_NE(r.raw.find("shutting down"), std::string::npos);
}

TEST_F(ServeTest, AbSplitRoutesAShareToTheBaseline) {
  auto config = test::test_config();
  config.ab_split = 0.5;
  auto server = test::start_server(config, test::stories_engine("stories260K_q80_gs4.bin"));
  ASSERT_NE(server, nullptr);
  auto c = test::client(server->port());
  int baseline = 0;
  for (int i = 0; i < 10; ++i) {
    const auto r = test::post(*c, "/v1/completions", completion_body(kPrompt, 8));
    ASSERT_EQ(r.status, 200);
    baseline += r.variant == "baseline";
  }
  EXPECT_EQ(baseline, 5);  // frac(k * golden ratio) < 0.5 for k = 0, 2, 4, 5, 7
  auto m = test::scrape(*c);
  EXPECT_EQ(m[R"(qforge_requests_total{endpoint="completions",status="200",variant="baseline"})"],
            5);
  EXPECT_EQ(m[R"(qforge_requests_total{endpoint="completions",status="200",variant="candidate"})"],
            5);
  EXPECT_EQ(m[R"(qforge_time_to_first_token_seconds_count{variant="baseline"})"], 5);
}

double wait_for_shadow(httplib::Client& c, double n) {
  // The shadow thread runs at the lowest priority: on a busy machine it may wait seconds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = test::scrape(c);
    if (m["qforge_shadow_completions_total"] >= n) return m["qforge_shadow_completions_total"];
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

TEST_F(ServeTest, ShadowMonitorMeasuresKlAndAgreement) {
  // Baseline = the same model: KL 0, agreement 1.
  {
    auto config = test::test_config();
    config.shadow_rate = 1;
    auto server = test::start_server(config, test::stories_engine());
    ASSERT_NE(server, nullptr);
    auto c = test::client(server->port());
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(test::post(*c, "/v1/completions", completion_body(kPrompt, 16)).status, 200);
    }
    ASSERT_EQ(wait_for_shadow(*c, 3), 3);
    auto m = test::scrape(*c);
    EXPECT_LT(m["qforge_shadow_kl_divergence"], 1e-6);
    EXPECT_EQ(m["qforge_shadow_top1_agreement"], 1);
  }
  // Baseline = the F32 model, candidate = its int8 export: a small, positive KL.
  {
    auto config = test::test_config();
    config.shadow_rate = 0.5;
    config.shadow_kl_warn = 1e-9;  // any difference crosses it: the warning must be logged
    std::mutex log_mutex;
    std::string logged;
    const LogSink previous = set_log_sink([&](LogLevel, std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mutex);
      logged += std::string(line) + "\n";
    });
    auto server = test::start_server(config, test::stories_engine(), "stories260K_q80_gs4.bin");
    ASSERT_NE(server, nullptr);
    auto c = test::client(server->port());
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(test::post(*c, "/v1/completions", completion_body(kPrompt, 24)).status, 200);
    }
    ASSERT_EQ(wait_for_shadow(*c, 2), 2);  // every other completion
    auto m = test::scrape(*c);
    EXPECT_GT(m["qforge_shadow_kl_divergence"], 0);
    EXPECT_LT(m["qforge_shadow_kl_divergence"], 0.5);
    EXPECT_GT(m["qforge_shadow_top1_agreement"], 0.5);
    EXPECT_LE(m["qforge_shadow_top1_agreement"], 1);
    server.reset();
    set_log_sink(previous);
    EXPECT_NE(logged.find("shadow quality alert: mean KL"), std::string::npos) << logged;
  }
}

// The CLI: `qforge serve` on a free port answers, and SIGTERM makes it exit 0.
TEST_F(ServeTest, CliServesAndExitsCleanlyOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string model = test::stories_path().string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl(QFORGE_CLI_PATH, "qforge", "serve", "--model", model.c_str(), "--port", "0",
          "--model-name", "s", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char ch = 0;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  const size_t colon = line.rfind(':');
  ASSERT_NE(line.find("listening on http://127.0.0.1:"), std::string::npos) << line;
  const int port = std::stoi(line.substr(colon + 1));
  auto c = test::client(port);
  const auto r = test::post(*c, "/v1/completions",
                            Json{{"model", "s"}, {"prompt", kPrompt}, {"max_tokens", 8}}.dump());
  EXPECT_EQ(r.status, 200) << r.raw;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::string rest;
  while (read(out[0], &ch, 1) == 1) rest += ch;
  close(out[0]);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(rest.find("stopped"), std::string::npos) << rest;
}

}  // namespace
}  // namespace qforge
