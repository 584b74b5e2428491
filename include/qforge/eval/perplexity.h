// Perplexity under an explicit, printable protocol (the only way two PPL numbers compare):
// how the text becomes chunks of token ids, where BOS goes, and which tokens are scored.
//
// Both modes first turn CRLF into LF.
// Stream mode (default): the whole text encoded once without BOS, cut into chunks of
//   ctx ids ([BOS] + ctx-1 ids with BOS); chunk i starts at id i * stride (default stride: the
//   chunk's text length, i.e. non-overlapping); an incomplete last chunk is dropped.
// Document mode (doc_separator set): the text is split on the separator, each document is
//   stripped of surrounding whitespace (empty ones dropped), encoded alone, [BOS] prepended and
//   truncated to ctx tokens: one chunk per document.
// Scoring: kAll scores every token of a chunk after its first position (the model predicts
//   token j from positions 0..j-1); kSecondHalf scores only the second half of each chunk,
//   tokens j >= size/2, so that each scored token has at least half a chunk of context (the
//   definition of llama-mix-16m's reference.json; llama.cpp's perplexity tool starts one token
//   later, at ctx/2 + 1, which moves WikiText-2 PPL by about 0.02%).
//   With an overlapping stride (stride < chunk text length) each chunk after the first scores
//   only its last `stride` tokens (the Hugging Face sliding-window protocol); kSecondHalf is
//   then rejected.
// PPL = exp(mean NLL) in nats; its standard error is PPL * sd(NLL) / sqrt(n - 1) (llama.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/inference_session.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

enum class PplScoring : uint8_t { kAll, kSecondHalf };
const char* ppl_scoring_name(PplScoring scoring);  // "all", "second-half"
Result<PplScoring> parse_ppl_scoring(const std::string& text);

struct PerplexityOptions {
  int64_t ctx = 512;    // tokens per chunk, BOS included
  int64_t stride = 0;   // stream mode: ids between chunk starts; 0 = non-overlapping
  bool add_bos = true;  // prepend the tokenizer's BOS to every chunk
  PplScoring scoring = PplScoring::kAll;
  int64_t max_chunks = 0;     // 0 = every chunk (document mode: every document)
  std::string doc_separator;  // non-empty: document mode, e.g. "<|endoftext|>"
};

// One model input and the positions whose next token it scores.
struct PplChunk {
  std::vector<int32_t> tokens;
  int64_t first_target = 1;  // tokens[j] for j in [first_target, tokens.size()) are scored
};

struct PplDataset {
  std::vector<PplChunk> chunks;
  int64_t total_text_tokens = 0;  // ids the whole text encoded to (stream mode)
  int64_t scored_tokens = 0;
  std::string protocol;  // one line describing everything above, printed with the result
};

// Builds the chunks. `dataset_name` appears in errors and the protocol line. Errors: a text that
// yields fewer tokens than one chunk needs (names both counts), ctx < 2, stride out of range,
// BOS requested from a tokenizer without one, kSecondHalf with an overlapping stride.
Result<PplDataset> make_ppl_dataset(const std::string& text, const Tokenizer& tokenizer,
                                    const PerplexityOptions& options,
                                    const std::string& dataset_name);

// Receives, for each scored token, the logits row that predicts it.
class TokenScorer {
 public:
  virtual ~TokenScorer() = default;
  // logits: [vocab]; target: the scored token id. Called in dataset order.
  virtual Status score(const float* logits, int64_t vocab, int32_t target) = 0;
};

struct PerplexityResult {
  int64_t scored_tokens = 0;
  int64_t chunks = 0;
  double mean_nll = 0;  // nats
  double ppl = 0;
  double ppl_stderr = 0;
  double seconds = 0;
  double tokens_per_second = 0;  // model tokens (not only scored ones) per second
};

// Runs every chunk through a fresh KV cache of `session` (reset per chunk) and accumulates the
// NLL of the scored tokens; `extra` (may be null) sees every scored row too (KL divergence).
// `show_progress` draws a ProgressBar over chunks on stderr.
Result<PerplexityResult> evaluate_perplexity(InferenceSession& session, const PplDataset& dataset,
                                             TokenScorer* extra, bool show_progress);

// log(sum_i exp(x_i)) over a logits row, in float SIMD with a double final log.
double log_sum_exp(const float* x, int64_t n);

}  // namespace qforge
