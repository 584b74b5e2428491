// Token sampling: SamplingParams (TensorRT-LLM / vLLM field names) and Sampler, which applies the
// repetition penalty (Keskar et al. 2019, CTRL), then temperature, top-k, top-p (nucleus,
// Holtzman et al. 2019) and min-p (Nguyen et al. 2024) to a logits row — the order of Hugging
// Face's generate() — and draws from the result with qforge's deterministic Rng. Temperature 0
// is greedy (argmax of the penalized logits).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/rng.h"

namespace qforge {

// The most top logprobs a request may ask for (vLLM's default max_logprobs).
inline constexpr int64_t kMaxLogprobs = 20;

struct SamplingParams {
  int64_t max_tokens = 128;  // new tokens at most
  float temperature = 0.0f;  // 0 = greedy; > 0 divides the logits
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // keep the smallest set with probability >= top_p; 1 = all
  float min_p = 0.0f;        // keep tokens with p >= min_p * p(most likely); 0 = all
  // Every id already in the context (prompt and generated tokens): a logit l becomes l / r when
  // l > 0, else l * r (HF RepetitionPenaltyLogitsProcessor, vLLM). 1 = off; > 1 discourages.
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;              // the same seed and inputs give the same tokens
  std::vector<std::string> stop;  // generation ends before the first occurrence of any of these
  std::vector<int32_t> stop_token_ids;  // generation ends after any of these (kept in the ids)
  bool ignore_eos = false;              // keep going past EOS (benchmarks)
  // nullopt: none. N: the log-probability of each sampled token under the model (log_softmax of
  // the raw logits, before penalty and temperature, as vLLM reports) and the N most likely.
  std::optional<int64_t> logprobs;
};

// Rejects temperature < 0 or non-finite, top_k < 0, top_p outside (0, 1], min_p outside
// [0, 1], repetition_penalty not finite and > 0, max_tokens < 0, empty stop strings, negative
// stop token ids, logprobs outside [0, kMaxLogprobs]. Messages name the field and the value.
Status validate_sampling_params(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // The next token for a logits row of `vocab` entries (not modified). `context`: the ids the
  // repetition penalty applies to (prompt and generated so far; ids outside [0, vocab) ignored).
  int32_t sample(const float* logits, int64_t vocab, std::span<const int32_t> context = {});

 private:
  SamplingParams params_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
  std::vector<float> penalized_;
};

// The lowest index of the largest value (ties go to the smaller id, as torch.argmax).
int32_t argmax_token(const float* logits, int64_t vocab);

// In place: logits[id] /= penalty if > 0, else *= penalty, once per distinct id in `context`.
void apply_repetition_penalty(float* logits, int64_t vocab, std::span<const int32_t> context,
                              float penalty);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
};
struct SampleLogprobs {
  TokenLogprob sampled;
  std::vector<TokenLogprob> top;  // most likely first (ties: smaller id first)
};
// log_softmax of the logits row (double inside): the sampled token's and the top_n highest.
SampleLogprobs compute_logprobs(const float* logits, int64_t vocab, int32_t sampled, int64_t top_n);

}  // namespace qforge
