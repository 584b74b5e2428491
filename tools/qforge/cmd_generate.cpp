// `qforge generate`: text continuation on the CPU runtime, streamed to stdout as it is decoded.
// Greedy at --temperature 0; otherwise temperature -> top-k -> top-p sampling with --seed.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "generation_options.h"
#include "model_source.h"
#include "qforge/core/parallel.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/generate.h"

namespace qforge::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string tokenizer;
  SamplingParams sampling;
  int64_t ctx = 0;
  GenerationFlags flags;
};

void run_generate(GenerateArgs& a) {
  ok_or_fail(validate_sampling_params(a.sampling));
  if (a.flags.threads > 0) set_num_threads(a.flags.threads);
  const ModelSource source = load_model_source(a.model);
  const std::shared_ptr<const Model>& model = source.model;
  const ModelConfig& c = model->config();
  auto tokenizer = load_source_tokenizer(source, a.tokenizer);
  const std::vector<int32_t> ids = value_or_fail(tokenizer->encode(a.prompt, a.flags.bos));
  SessionOptions options;
  options.context_length = a.ctx;
  auto session = value_or_fail(InferenceSession::create(model, options));
  if (static_cast<int64_t>(ids.size()) > session.context_length()) {
    throw CliFailure(fmt::format(
        "the prompt is {} tokens but the context holds {} (max_position_embeddings {}); "
        "shorten the prompt{}",
        ids.size(), session.context_length(), c.max_position_embeddings,
        session.context_length() < c.max_position_embeddings ? " or raise --ctx" : ""));
  }
  if (a.flags.echo) {
    std::fputs(a.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  const auto result =
      value_or_fail(generate(session, *tokenizer, ids, a.sampling, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }));
  std::fputs("\n", stdout);
  if (!a.flags.quiet) {
    const auto n_out = static_cast<double>(result.output_ids.size());
    std::fprintf(
        stderr,
        "[%zu prompt tokens, %.1f tok/s prefill; %zu generated, %.1f tok/s decode; "
        "finish: %s]\n",
        ids.size(),
        result.prefill_seconds > 0 ? static_cast<double>(ids.size()) / result.prefill_seconds : 0.0,
        result.output_ids.size(),
        n_out > 1 && result.decode_seconds > 0 ? (n_out - 1) / result.decode_seconds : 0.0,
        finish_reason_name(result.finish_reason));
  }
}

}  // namespace

static void register_generate(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("generate", "Continue a prompt with the CPU runtime (streams text)");
  static GenerateArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--prompt,-p", a.prompt, "Prompt text")->required();
  add_sampling_options(cmd, a.sampling);
  cmd->add_option("--ctx", a.ctx,
                  "Context length (KV cache positions); default min(max_position_embeddings, "
                  "8192)");
  cmd->add_option("--tokenizer", a.tokenizer, "Tokenizer file (default: next to the model)");
  add_generation_flags(cmd, a.flags);
  cmd->callback([] { run_generate(a); });
}

QF_REGISTER_COMMAND(40, register_generate);

}  // namespace qforge::cli
