// generate() and the tokenizer lookup of include/qforge/runtime/generate.h.
#include "qforge/runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "runtime/stop_matcher.h"

namespace qforge {
using runtime_internal::StopMatcher;
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStop:
      return "stop";
    default:
      return "length";
  }
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer_for_model(const std::string& model_path,
                                                            const std::string& tokenizer_path,
                                                            int64_t vocab_size) {
  if (!tokenizer_path.empty()) {
    return load_tokenizer(tokenizer_path, vocab_size).context("loading --tokenizer");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir =
      fs::is_directory(model_path, ec) ? fs::path(model_path) : fs::path(model_path).parent_path();
  const fs::path where = dir.empty() ? fs::path(".") : dir;
  // A GGUF file carries its own vocabulary.
  if (fs::path(model_path).extension() == ".gguf") return load_tokenizer(model_path, vocab_size);
  return load_tokenizer(where.string(), vocab_size)
      .context(fmt::format("looking for the tokenizer next to the model in '{}' (pass "
                           "--tokenizer FILE to name it)",
                           where.string()));
}

Result<GenerationResult> generate(InferenceSession& session, const Tokenizer& tokenizer,
                                  const std::vector<int32_t>& prompt_ids,
                                  const SamplingParams& params, const TextCallback& on_text) {
  QF_TRY(validate_sampling_params(params));
  const int64_t free = session.context_length() - session.n_past();
  const auto n_prompt = static_cast<int64_t>(prompt_ids.size());
  if (n_prompt == 0) {
    return make_error(ErrorCode::kInvalidArgument, "generate: the prompt has no tokens");
  }
  if (n_prompt > free) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the prompt has {} tokens but the context holds {} ({} free); shorten the "
                      "prompt or raise the context length (up to {})",
                      n_prompt, session.context_length(), free,
                      session.model().config().max_position_embeddings);
  }
  const ModelConfig& config = session.model().config();
  std::vector<int32_t> eos;
  if (tokenizer.eos_id() >= 0) eos.push_back(tokenizer.eos_id());
  for (int64_t id : config.eos_token_ids) eos.push_back(static_cast<int32_t>(id));

  GenerationResult result;
  result.prompt_ids = prompt_ids;
  Sampler sampler(params);
  StopMatcher stops(params.stop);
  const int64_t vocab = config.vocab_size;

  auto t0 = std::chrono::steady_clock::now();
  QF_ASSIGN_OR_RETURN(Tensor logits, session.forward(prompt_ids, LogitsMode::kLast));
  result.prefill_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  int32_t previous = prompt_ids.back();
  bool stopped = false;
  std::vector<int32_t> context =
      params.repetition_penalty != 1.0f ? prompt_ids : std::vector<int32_t>();
  while (static_cast<int64_t>(result.output_ids.size()) < params.max_tokens) {
    const int32_t next = sampler.sample(logits.data_as<float>(), vocab, context);
    result.output_ids.push_back(next);
    if (params.repetition_penalty != 1.0f) context.push_back(next);
    if (!params.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
      result.finish_reason = FinishReason::kEos;
      break;
    }
    const auto& stop_ids = params.stop_token_ids;
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
      result.finish_reason = FinishReason::kStop;
      stopped = true;
      const std::string rest = stops.flush();
      result.text += rest;
      if (on_text && !rest.empty()) on_text(rest);
      break;
    }
    QF_ASSIGN_OR_RETURN(std::string piece, tokenizer.decode_next(previous, next));
    previous = next;
    const std::string text = stops.feed(piece, &stopped);
    result.text += text;
    if (on_text && !text.empty()) on_text(text);
    if (stopped) {
      result.finish_reason = FinishReason::kStop;
      break;
    }
    if (static_cast<int64_t>(result.output_ids.size()) == params.max_tokens) break;
    if (session.n_past() >= session.context_length()) break;  // context full: "length"
    QF_ASSIGN_OR_RETURN(logits, session.forward(std::span<const int32_t>(&next, 1)));
  }
  if (!stopped) {
    const std::string rest = stops.flush();
    result.text += rest;
    if (on_text && !rest.empty()) on_text(rest);
  }
  result.decode_seconds = seconds_since(t0);
  return result;
}

}  // namespace qforge
