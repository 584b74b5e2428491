// `qforge serve`: the OpenAI-compatible HTTP server (include/qforge/serve/server.h) on an engine
// file or checkpoint, until SIGINT/SIGTERM (graceful: stop accepting, finish in-flight, exit 0).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/core/text_file.h"
#include "qforge/engine/engine.h"
#include "qforge/runtime/generate.h"
#include "qforge/serve/server.h"
#include "serve_loop.h"

namespace qforge::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string tokenizer;
  std::string baseline;
  std::string chat_template_file;
  ServerConfig server;
  BuildConfig build;
  bool set_batch = false;
  int threads = 0;
};

// An .engine file or a checkpoint directory through open_engine (built into the engine cache);
// a single checkpoint file (llama2.c .bin, .gguf, .safetensors) runs as stored, like `run --model`.
Engine open_serving_engine(const std::string& path, const ServeArgs& a) {
  std::error_code ec;
  const bool engine_file = std::filesystem::path(path).extension() == ".engine";
  if (engine_file || std::filesystem::is_directory(path, ec)) {
    Engine e = value_or_fail(open_engine(path, a.build));
    if (a.set_batch) e.build_config.max_batch_size = a.build.max_batch_size;
    if (e.tokenizer == nullptr) {
      e.tokenizer =
          value_or_fail(load_tokenizer_for_model(path, a.tokenizer, e.model->config().vocab_size));
    }
    return e;
  }
  Engine e;
  e.model = value_or_fail(Model::load(path));
  e.tokenizer =
      value_or_fail(load_tokenizer_for_model(path, a.tokenizer, e.model->config().vocab_size));
  e.build_config = a.build;
  e.build_config.precision = DType::F32;
  e.build_config.max_seq_len =
      std::min(e.build_config.max_seq_len, e.model->config().max_position_embeddings);
  e.build_config.max_input_len = std::min(e.build_config.max_input_len, e.build_config.max_seq_len);
  e.kv_cache_storage = KvCacheStorage::kF32;
  e.path = path;
  return e;
}

void run_serve(ServeArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (a.server.api_key.empty()) {
    if (const char* env = std::getenv("QFORGE_API_KEY")) a.server.api_key = env;
  }
  if (!a.chat_template_file.empty()) {
    a.server.chat_template =
        value_or_fail(read_text_input(a.chat_template_file, "--chat-template", 1 << 20));
  }
  a.server.model_path = a.model;
  Engine candidate = open_serving_engine(a.model, a);
  std::optional<Engine> baseline;
  if (!a.baseline.empty()) baseline = open_serving_engine(a.baseline, a);
  serve_until_signal(a.server, std::move(candidate), std::move(baseline));
}

}  // namespace

static void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve",
      "OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions (stream: true for "
      "server-sent events), /v1/models, /health, /metrics (Prometheus). Requests from all "
      "clients are batched together (in-flight batching). Binds 127.0.0.1 unless --host says "
      "otherwise; with --api-key (or $QFORGE_API_KEY) /v1/* need 'Authorization: Bearer KEY'. "
      "SIGINT/SIGTERM stop accepting, let in-flight requests finish, and exit 0.");
  static ServeArgs a;
  a.build.max_batch_size = 8;
  cmd->add_option("--model,-m", a.model,
                  "Engine file (.engine), checkpoint directory (built into the engine cache), or "
                  "a checkpoint file (llama2.c .bin, .gguf, .safetensors) run as stored")
      ->required();
  cmd->add_option("--tokenizer", a.tokenizer,
                  "Tokenizer file (default: the engine's / next to it)");
  cmd->add_option("--model-name", a.server.model_name,
                  "The model id clients send and /v1/models lists (default: the file's stem)");
  cmd->add_option("--host", a.server.host, "Address to bind (0.0.0.0 exposes it to the network)")
      ->capture_default_str();
  cmd->add_option("--port", a.server.port, "Port (0: any free port, printed at start)")
      ->capture_default_str();
  cmd->add_option("--api-key", a.server.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* (default: $QFORGE_API_KEY; "
                  "/health and /metrics stay open)");
  cmd->add_option("--max-batch-size", a.build.max_batch_size, "Sequences decoded together")
      ->capture_default_str()
      ->each([](const std::string&) { a.set_batch = true; });
  cmd->add_option("--max-input-len", a.build.max_input_len,
                  "Longest prompt in tokens (checkpoints)")
      ->capture_default_str();
  cmd->add_option("--max-seq-len", a.build.max_seq_len, "Prompt + output tokens (checkpoints)")
      ->capture_default_str();
  cmd->add_option("--max-queue", a.server.max_queue,
                  "Requests waiting per engine beyond which new ones get 429")
      ->capture_default_str();
  cmd->add_option("--max-tokens-limit", a.server.max_tokens_limit,
                  "Largest max_tokens a request may ask for (larger: 400)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", a.server.max_body_bytes, "Largest request body (larger: 413)")
      ->capture_default_str();
  cmd->add_option("--chat-template", a.chat_template_file,
                  "Jinja chat template file (default: the model's tokenizer_config.json, else "
                  "ChatML)");
  cmd->add_option("--baseline", a.baseline,
                  "Baseline engine/checkpoint for --ab-split and --shadow-rate (same vocabulary)");
  cmd->add_option("--ab-split", a.server.ab_split,
                  "Share of requests served by the baseline (metrics labelled variant=...)")
      ->capture_default_str();
  cmd->add_option("--shadow-rate", a.server.shadow_rate,
                  "Share of the model's completions re-scored on the baseline off the hot path "
                  "(qforge_shadow_kl_divergence, qforge_shadow_top1_agreement)")
      ->capture_default_str();
  cmd->add_option("--shadow-kl-warn", a.server.shadow_kl_warn,
                  "Log a warning when the running mean KL exceeds this (nats)")
      ->capture_default_str();
  cmd->add_option("--shadow-agreement-warn", a.server.shadow_agreement_warn,
                  "Log a warning when the running top-1 agreement drops below this")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a.server.shutdown_grace_seconds,
                  "Seconds in-flight requests get to finish at shutdown before they are cancelled")
      ->capture_default_str();
  cmd->add_option("--threads,-t", a.threads, "CPU threads (default: all cores)");
  cmd->callback([] { run_serve(a); });
}

QF_REGISTER_COMMAND(44, register_serve);

}  // namespace qforge::cli
