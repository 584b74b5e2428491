// Text generation on one InferenceSession: prefill the prompt, then decode token by token with a
// Sampler, streaming the text as it is produced, until max_tokens, EOS or a stop string.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/sampling.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

// The tokenizer of a model: `tokenizer_path` when given, else the one next to the model (a
// model directory, or the directory of a model file; llama2.c tokenizer.bin files get the
// model's vocabulary size). Errors say where it looked and suggest --tokenizer.
Result<std::unique_ptr<Tokenizer>> load_tokenizer_for_model(const std::string& model_path,
                                                            const std::string& tokenizer_path,
                                                            int64_t vocab_size);

enum class FinishReason : uint8_t { kLength, kEos, kStop };
const char* finish_reason_name(FinishReason reason);  // "length", "eos", "stop"

struct GenerationResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;  // generated ids (a stop string's tokens included)
  std::string text;                 // generated text, cut before a stop string
  FinishReason finish_reason = FinishReason::kLength;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called with each new piece of text (never a prefix of a stop string that may still complete).
using TextCallback = std::function<void(std::string_view)>;

// Runs `prompt_ids` (BOS included if wanted) from the session's current state. A prompt longer
// than the free context is an error (before any work, naming the numbers); generation that
// reaches the end of the context stops there (finish reason "length"). EOS is the tokenizer's
// eos_id() or any of the config's eos_token_ids.
Result<GenerationResult> generate(InferenceSession& session, const Tokenizer& tokenizer,
                                  const std::vector<int32_t>& prompt_ids,
                                  const SamplingParams& params, const TextCallback& on_text = {});

}  // namespace qforge
