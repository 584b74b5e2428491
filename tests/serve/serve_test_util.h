// Servers for the HTTP tests: stories260K (llama2.c, shared models) behind a Server on an
// ephemeral loopback port, a client for it, and parsers for SSE streams and Prometheus text.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "qforge/runtime/llm.h"
#include "qforge/serve/server.h"
#include "runtime/runtime_test_util.h"

namespace qforge::test {

using Json = nlohmann::ordered_json;

inline BuildConfig stories_build() {
  BuildConfig b;
  b.max_batch_size = 8;
  b.max_input_len = 128;
  b.max_seq_len = 512;
  b.precision = DType::F32;
  return b;
}

inline std::optional<Engine> stories_engine(const std::string& file = "stories260K.bin") {
  const auto path = stories_path().parent_path() / file;
  auto m = Model::load(path.string());
  if (!m.ok()) return std::nullopt;
  auto tok = load_tokenizer_for_model(path.string(), "", (*m)->config().vocab_size);
  if (!tok.ok()) return std::nullopt;
  Engine e;
  e.model = *m;
  e.tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
  e.build_config = stories_build();
  e.kv_cache_storage = KvCacheStorage::kF32;
  e.path = path.string();
  return e;
}

inline ServerConfig test_config() {
  ServerConfig c;
  c.port = 0;
  c.model_name = "stories260K";
  c.max_tokens_limit = 400;
  c.shutdown_grace_seconds = 10;
  return c;
}

inline std::unique_ptr<Server> start_server(const ServerConfig& config,
                                            std::optional<Engine> baseline = std::nullopt,
                                            const std::string& file = "stories260K.bin") {
  auto engine = stories_engine(file);
  if (!engine) return nullptr;
  auto s = Server::create(config, std::move(*engine), std::move(baseline));
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  if (!s.ok()) return nullptr;
  auto st = (*s)->start();
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  if (!st.ok()) return nullptr;
  return std::move(s).value();
}

inline std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_read_timeout(60, 0);
  return c;
}

struct HttpResult {
  int status = 0;
  Json body;
  std::string raw;
  std::string variant;
};

inline HttpResult post(httplib::Client& c, const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
  HttpResult r;
  auto res = c.Post(path.c_str(), headers, body, "application/json");
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.variant = res->get_header_value("x-qforge-variant");
  r.body = Json::parse(res->body, nullptr, false);
  return r;
}

// The JSON payloads of "data: ..." events, and whether the stream ended with [DONE].
inline std::vector<Json> parse_sse(const std::string& text, bool* done) {
  std::vector<Json> events;
  *done = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string ev = text.substr(pos, end - pos);
    pos = end + 2;
    if (!ev.starts_with("data: ")) continue;
    ev = ev.substr(6);
    if (ev == "[DONE]") {
      *done = true;
      continue;
    }
    events.push_back(Json::parse(ev, nullptr, false));
  }
  return events;
}

// Prometheus text: "name{labels}" -> value (labels as written by the serializer).
inline std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return m;
}

inline std::map<std::string, double> scrape(httplib::Client& c) {
  auto res = c.Get("/metrics");
  if (!res || res->status != 200) return {};
  return parse_metrics(res->body);
}

}  // namespace qforge::test
