// The OpenAI-compatible HTTP server (cpp-httplib): POST /v1/completions and
// /v1/chat/completions (JSON or `stream: true` server-sent events), GET /v1/models, /health and
// /metrics (Prometheus text). Every request goes to an engine thread that owns the in-flight
// batching Scheduler, so concurrent clients decode in the same batch.
//
// Optional A/B routing (a share of requests to a baseline engine, metrics labelled by variant)
// and shadow quality monitoring (a share of the candidate's completions re-scored off the hot
// path on the candidate and baseline models: running KL divergence and top-1 agreement gauges).
//
//   auto server = qforge::Server::create(config, std::move(engine));
//   server->start();            // binds, serves on background threads
//   ...; server->shutdown();    // stop accepting, finish (or after the grace period cancel)
//   in-flight
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "qforge/core/error.h"
#include "qforge/engine/engine.h"

namespace qforge {

struct ServerConfig {
  std::string host = "127.0.0.1";   // loopback unless asked otherwise
  int port = 8000;                  // 0: any free port (see Server::port())
  std::string api_key;              // non-empty: /v1/* need "Authorization: Bearer <key>"
  std::string model_name;           // the id clients send as "model" (default: the path's stem)
  int64_t max_queue = 64;           // queued requests per engine beyond which new ones get 429
  int64_t max_tokens_limit = 1024;  // the largest max_tokens a request may ask for
  int64_t default_max_tokens = 16;  // completions without max_tokens (OpenAI's default)
  int64_t default_chat_max_tokens = 256;  // chat completions without max_tokens
  size_t max_body_bytes = 1 << 20;        // larger request bodies get 413
  int http_threads = 0;  // 0: min(128, max_queue + max_batch_size + 4); a request holds one
  double shutdown_grace_seconds = 30;  // in-flight requests finish within this, else cancel
  // Chat template source text; empty: the model's tokenizer_config.json / chat_template.jinja
  // (model_path), else default_chat_template().
  std::string chat_template;
  std::string model_path;  // where to look for tokenizer_config.json
  // A/B and shadow monitoring (need a baseline engine).
  double ab_split = 0;          // share of requests routed to the baseline, [0, 1]
  double shadow_rate = 0;       // share of candidate completions re-scored on the baseline, [0, 1]
  double shadow_kl_warn = 0.1;  // warn when the running mean KL exceeds this (nats)
  double shadow_agreement_warn = 0.9;  // ... or the running top-1 agreement drops below this
  int64_t shadow_queue = 16;           // completions waiting to be re-scored (more are dropped)
};

namespace serve_internal {
class ServerImpl;
}

class Server {
 public:
  // Validates the config, opens the chat template and starts the engine threads (nothing bound).
  static Result<std::unique_ptr<Server>> create(const ServerConfig& config, Engine candidate,
                                                std::optional<Engine> baseline = std::nullopt);
  ~Server();  // shutdown() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and serves on background threads. Errors: the port is taken, a bad host.
  Status start();
  int port() const;  // the bound port (after start)
  // Stops accepting; in-flight requests finish (cancelled after shutdown_grace_seconds); the
  // engine threads exit. Idempotent; thread-safe (may be called from a signal-watching thread).
  void shutdown();
  // Blocks until shutdown() has completed.
  void wait();

 private:
  explicit Server(std::unique_ptr<serve_internal::ServerImpl> impl);
  std::unique_ptr<serve_internal::ServerImpl> impl_;
};

}  // namespace qforge
