// Server (include/qforge/serve/server.h): the httplib routes, API-key check, A/B routing,
// streaming (server-sent events) and graceful shutdown over the engine workers.
#include "qforge/serve/server.h"

#include <httplib.h>

#include <atomic>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <thread>

#include "qforge/core/log.h"
#include "qforge/serve/chat_template.h"
#include "serve/engine_worker.h"
#include "serve/openai_protocol.h"
#include "serve/server_metrics.h"
#include "serve/shadow_monitor.h"

namespace qforge {
namespace serve_internal {

namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Deterministic, evenly spread share: request k is "in" when frac(k * golden ratio) < share.
bool in_share(uint64_t k, double share) {
  if (share <= 0) return false;
  if (share >= 1) return true;
  const double x = std::fmod(static_cast<double>(k) * 0.6180339887498949, 1.0);
  return x < share;
}

}  // namespace

class ServerImpl {
 public:
  ServerConfig cfg;
  ServerMetrics metrics;
  std::unique_ptr<EngineWorker> candidate;
  std::unique_ptr<EngineWorker> baseline;
  std::unique_ptr<ShadowMonitor> shadow;
  ChatTemplate chat_template;
  ApiContext api;
  httplib::Server http;
  std::thread listen_thread;
  int bound_port = 0;
  int64_t started_at = 0;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> request_counter{0};
  std::atomic<uint64_t> completion_counter{0};
  std::mutex shutdown_mutex;
  std::condition_variable shutdown_cv;
  bool shutdown_started = false;
  bool shutdown_done = false;

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(error_body(e).dump(), "application/json");
  }

  EngineWorker* route() {
    const uint64_t k = request_counter.fetch_add(1);
    if (baseline != nullptr && in_share(k, cfg.ab_split)) return baseline.get();
    return candidate.get();
  }

  void handle_generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    const std::string endpoint = chat ? "chat_completions" : "completions";
    ApiRequest ar;
    if (auto e = parse_api_request(req.body, chat, api, ar)) {
      send_error(res, *e);
      metrics.count_request(endpoint, e->status, "none");
      return;
    }
    EngineWorker* w = route();
    auto ch = std::make_shared<Channel>();
    WorkItem item;
    item.prompt = ar.prompt;
    item.add_bos = ar.add_bos;
    item.params = ar.params;
    item.channel = ch;
    item.arrival = steady_seconds();
    if (w == candidate.get() && shadow != nullptr) {
      item.on_finished = [this](const RequestOutput& out) {
        if (in_share(completion_counter.fetch_add(1), cfg.shadow_rate)) shadow->offer(out);
      };
    }
    switch (w->submit(std::move(item))) {
      case EngineWorker::Submit::kOk:
        break;
      case EngineWorker::Submit::kQueueFull:
        send_error(res, ApiError{429,
                                 fmt::format("the request queue is full ({} waiting); retry later",
                                             cfg.max_queue),
                                 "", "queue_full"});
        res.set_header("Retry-After", "1");
        metrics.count_request(endpoint, 429, w->variant());
        return;
      case EngineWorker::Submit::kStopping:
        send_error(res, ApiError{503, "the server is shutting down", "", ""});
        metrics.count_request(endpoint, 503, w->variant());
        return;
    }
    res.set_header("x-qforge-variant", w->variant());
    const std::string id =
        fmt::format("{}-{:x}{:08x}", chat ? "chatcmpl" : "cmpl",
                    static_cast<uint64_t>(std::time(nullptr)), request_counter.load());
    const int64_t created = std::time(nullptr);
    const std::string prompt_param = chat ? "messages" : "prompt";  // what an engine 400 is about
    if (!ar.stream) {
      const Channel::Event ev = ch->wait_done();
      if (ev.kind == Channel::Event::Kind::kError) {
        send_error(res, ApiError{ev.status, ev.text, ev.status == 400 ? prompt_param : "", ""});
        metrics.count_request(endpoint, ev.status, w->variant());
        return;
      }
      res.set_content(
          completion_response(ar, id, created, cfg.model_name, ch->output(), ch->prompt_tokens)
              .dump(),
          "application/json");
      metrics.count_request(endpoint, 200, w->variant());
      return;
    }
    // Streaming: wait for the first event so that a rejected prompt is still a plain 4xx.
    Channel::Event first;
    do {
      first = ch->next(1000);
    } while (first.kind == Channel::Event::Kind::kTimeout);
    if (first.kind == Channel::Event::Kind::kError) {
      send_error(res,
                 ApiError{first.status, first.text, first.status == 400 ? prompt_param : "", ""});
      metrics.count_request(endpoint, first.status, w->variant());
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    const std::string variant = w->variant();
    auto pending = std::make_shared<Channel::Event>(std::move(first));
    res.set_chunked_content_provider("text/event-stream", [this, ar, id, created, ch, pending,
                                                           endpoint, variant](
                                                              size_t, httplib::DataSink& sink) {
      const auto send = [&](const Json& j) {
        const std::string line = "data: " + j.dump() + "\n\n";
        return sink.write(line.data(), line.size());
      };
      bool first_chunk = true;
      if (ar.chat) {
        if (!send(stream_chunk(ar, id, created, cfg.model_name, "", true, nullptr))) {
          ch->abandoned = true;
          return false;
        }
        first_chunk = false;
      }
      Channel::Event ev = std::move(*pending);
      while (true) {
        if (ev.kind == Channel::Event::Kind::kDelta) {
          if (!send(stream_chunk(ar, id, created, cfg.model_name, ev.text, first_chunk, nullptr))) {
            ch->abandoned = true;
            metrics.count_request(endpoint, 499, variant);
            return false;
          }
          first_chunk = false;
        } else if (ev.kind == Channel::Event::Kind::kDone) {
          const RequestOutput& out = ch->output();
          send(stream_chunk(ar, id, created, cfg.model_name, "", false,
                            openai_finish_reason(out.finish_reason)));
          if (ar.include_usage) {
            Json u;
            u["id"] = id;
            u["object"] = ar.chat ? "chat.completion.chunk" : "text_completion";
            u["created"] = created;
            u["model"] = cfg.model_name;
            u["choices"] = Json::array();
            u["usage"] = usage_json(ch->prompt_tokens, static_cast<int64_t>(out.output_ids.size()));
            send(u);
          }
          static constexpr std::string_view kDone = "data: [DONE]\n\n";
          sink.write(kDone.data(), kDone.size());
          sink.done();
          metrics.count_request(endpoint, 200, variant);
          return true;
        } else if (ev.kind == Channel::Event::Kind::kError) {
          // Headers are gone already: the error travels as an event, then the stream ends.
          send(error_body(ApiError{ev.status, ev.text, "", ""}));
          sink.done();
          metrics.count_request(endpoint, ev.status, variant);
          return true;
        }
        if (!sink.is_writable()) {
          ch->abandoned = true;
          metrics.count_request(endpoint, 499, variant);
          return false;
        }
        ev = ch->next(1000);
      }
    });
  }

  void install_routes() {
    http.set_payload_max_length(cfg.max_body_bytes);
    // Each waiting or running request holds a handler thread; beyond 128, connections wait in
    // the pool's queue instead of getting a thread (and a malloc arena) each.
    const int threads =
        cfg.http_threads > 0
            ? cfg.http_threads
            : static_cast<int>(std::min<int64_t>(
                  128, cfg.max_queue + candidate->llm().build_config().max_batch_size + 4));
    http.new_task_queue = [threads] {
      return new httplib::ThreadPool(static_cast<size_t>(std::max(threads, 2)));
    };
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (cfg.api_key.empty() || !req.path.starts_with("/v1/")) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      const std::string auth = req.get_header_value("Authorization");
      if (!auth.starts_with("Bearer ") ||
          !constant_time_equal(std::string_view(auth).substr(7), cfg.api_key)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, ApiError{401,
                                 auth.empty() ? "missing API key: send 'Authorization: Bearer "
                                                "<key>'"
                                              : "invalid API key",
                                 "", "invalid_api_key"});
        metrics.count_request("auth", 401, "none");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = fmt::format("HTTP {}", res.status);
      if (res.status == 404) message = fmt::format("no route {} {}", req.method, req.path);
      if (res.status == 413) {
        message = fmt::format("the request body exceeds the {}-byte limit", cfg.max_body_bytes);
      }
      send_error(res, ApiError{res.status, message, "", ""});
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle_generate(req, res, false);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle_generate(req, res, true);
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      Json m{{"id", cfg.model_name},
             {"object", "model"},
             {"created", started_at},
             {"owned_by", "qforge"}};
      res.set_content(Json{{"object", "list"}, {"data", Json::array({m})}}.dump(),
                      "application/json");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (stopping) {
        res.status = 503;
        res.set_content(R"({"status":"shutting down"})", "application/json");
        return;
      }
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });
  }

  void shutdown() {
    {
      std::unique_lock<std::mutex> lock(shutdown_mutex);
      if (shutdown_started) {
        shutdown_cv.wait(lock, [&] { return shutdown_done; });
        return;
      }
      shutdown_started = true;
    }
    stopping = true;
    log_info("serve: shutting down (in-flight requests get {} s to finish)",
             cfg.shutdown_grace_seconds);
    http.stop();
    const double deadline = steady_seconds() + cfg.shutdown_grace_seconds;
    candidate->drain(deadline);
    if (baseline) baseline->drain(deadline);
    if (listen_thread.joinable()) listen_thread.join();
    candidate->join();
    if (baseline) baseline->join();
    if (shadow) shadow->stop();
    {
      std::lock_guard<std::mutex> lock(shutdown_mutex);
      shutdown_done = true;
    }
    shutdown_cv.notify_all();
  }
};

}  // namespace serve_internal

using serve_internal::ServerImpl;

Server::Server(std::unique_ptr<ServerImpl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (impl_ != nullptr) impl_->shutdown();
}

Result<std::unique_ptr<Server>> Server::create(const ServerConfig& config, Engine candidate,
                                               std::optional<Engine> baseline) {
  const auto bad = [](std::string m) { return Error(ErrorCode::kInvalidArgument, "serve: " + m); };
  if (config.port < 0 || config.port > 65535)
    return bad(fmt::format("port {} out of range", config.port));
  if (config.max_queue < 1) return bad("max_queue must be >= 1");
  if (config.max_tokens_limit < 1) return bad("max_tokens_limit must be >= 1");
  if (!(config.ab_split >= 0 && config.ab_split <= 1)) return bad("ab_split must be in [0, 1]");
  if (!(config.shadow_rate >= 0 && config.shadow_rate <= 1)) {
    return bad("shadow_rate must be in [0, 1]");
  }
  if ((config.ab_split > 0 || config.shadow_rate > 0) && !baseline) {
    return bad("ab_split and shadow_rate need a baseline engine (--baseline)");
  }
  if (candidate.tokenizer == nullptr) return bad("the model has no tokenizer");
  if (baseline && baseline->tokenizer == nullptr) return bad("the baseline has no tokenizer");
  if (baseline && baseline->model->config().vocab_size != candidate.model->config().vocab_size) {
    return bad(fmt::format("the baseline's vocabulary ({}) differs from the model's ({})",
                           baseline->model->config().vocab_size,
                           candidate.model->config().vocab_size));
  }
  auto impl = std::make_unique<ServerImpl>();
  impl->cfg = config;
  ServerConfig& cfg = impl->cfg;
  if (cfg.model_name.empty()) {
    cfg.model_name = std::filesystem::path(candidate.path).stem().string();
    if (cfg.model_name.empty()) cfg.model_name = "qforge";
  }
  // The chat template and special-token texts.
  TokenizerChatConfig chat;
  if (!cfg.model_path.empty()) {
    QF_ASSIGN_OR_RETURN(chat, load_tokenizer_chat_config(cfg.model_path).context("serve"));
  }
  if (!cfg.chat_template.empty()) chat.chat_template = cfg.chat_template;
  if (chat.chat_template.empty()) chat.chat_template = std::string(default_chat_template());
  const Tokenizer& tok = *candidate.tokenizer;
  if (chat.bos_token.empty() && tok.bos_id() >= 0) chat.bos_token = tok.piece(tok.bos_id());
  if (chat.eos_token.empty() && tok.eos_id() >= 0) chat.eos_token = tok.piece(tok.eos_id());
  QF_ASSIGN_OR_RETURN(impl->chat_template,
                      ChatTemplate::parse(chat.chat_template).context("serve: chat template"));
  impl->api.model_name = cfg.model_name;
  impl->api.max_tokens_limit = cfg.max_tokens_limit;
  impl->api.default_max_tokens = std::min(cfg.default_max_tokens, cfg.max_tokens_limit);
  impl->api.default_chat_max_tokens = std::min(cfg.default_chat_max_tokens, cfg.max_tokens_limit);
  impl->api.chat_template = &impl->chat_template;
  impl->api.bos_token = chat.bos_token;
  impl->api.eos_token = chat.eos_token;

  std::shared_ptr<const Model> candidate_model = candidate.model;
  std::shared_ptr<const Model> baseline_model = baseline ? baseline->model : nullptr;
  QF_ASSIGN_OR_RETURN(LLM llm, LLM::create(candidate).context("serve: opening the model"));
  impl->candidate = std::make_unique<serve_internal::EngineWorker>(std::move(llm), "candidate",
                                                                   &impl->metrics, cfg.max_queue);
  if (baseline) {
    QF_ASSIGN_OR_RETURN(LLM base, LLM::create(*baseline).context("serve: opening the baseline"));
    impl->baseline = std::make_unique<serve_internal::EngineWorker>(std::move(base), "baseline",
                                                                    &impl->metrics, cfg.max_queue);
  }
  if (cfg.shadow_rate > 0) {
    serve_internal::ShadowOptions so;
    so.queue = cfg.shadow_queue;
    so.kl_warn = cfg.shadow_kl_warn;
    so.agreement_warn = cfg.shadow_agreement_warn;
    impl->shadow = std::make_unique<serve_internal::ShadowMonitor>(candidate_model, baseline_model,
                                                                   &impl->metrics, so);
  }
  impl->started_at = std::time(nullptr);
  impl->install_routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::start() {
  ServerImpl& s = *impl_;
  if (s.cfg.port == 0) {
    s.bound_port = s.http.bind_to_any_port(s.cfg.host.c_str());
  } else {
    s.bound_port = s.http.bind_to_port(s.cfg.host.c_str(), s.cfg.port) ? s.cfg.port : -1;
  }
  if (s.bound_port < 0) {
    return make_error(ErrorCode::kIo,
                      "serve: cannot listen on {}:{} (address in use, or a bad host?)", s.cfg.host,
                      s.cfg.port);
  }
  s.listen_thread = std::thread([&s] { s.http.listen_after_bind(); });
  log_info("serve: '{}' listening on http://{}:{}", s.cfg.model_name, s.cfg.host, s.bound_port);
  return ok_status();
}

int Server::port() const {
  return impl_->bound_port;
}

void Server::shutdown() {
  impl_->shutdown();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(impl_->shutdown_mutex);
  impl_->shutdown_cv.wait(lock, [&] { return impl_->shutdown_done; });
}

}  // namespace qforge
