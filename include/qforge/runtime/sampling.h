// Token sampling: SamplingParams (TensorRT-LLM / vLLM field names) and Sampler, which applies
// temperature, then top-k, then top-p (nucleus, Holtzman et al. 2019) to a logits row and draws
// from the result with qforge's deterministic Rng. Temperature 0 is greedy (argmax).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/rng.h"

namespace qforge {

struct SamplingParams {
  int64_t max_tokens = 128;       // new tokens at most
  float temperature = 0.0f;       // 0 = greedy; > 0 divides the logits
  int64_t top_k = 0;              // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;             // keep the smallest set with probability >= top_p; 1 = all
  uint64_t seed = 0;              // the same seed and inputs give the same tokens
  std::vector<std::string> stop;  // generation ends before the first occurrence of any of these
  bool ignore_eos = false;        // keep going past EOS (benchmarks)
};

// Rejects temperature < 0 or non-finite, top_k < 0, top_p outside (0, 1], max_tokens < 0,
// empty stop strings. Messages name the field and the value.
Status validate_sampling_params(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // The next token for a logits row of `vocab` entries (not modified).
  int32_t sample(const float* logits, int64_t vocab);

 private:
  SamplingParams params_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// The lowest index of the largest value (ties go to the smaller id, as torch.argmax).
int32_t argmax_token(const float* logits, int64_t vocab);

}  // namespace qforge
