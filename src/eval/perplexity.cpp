// The perplexity loop of include/qforge/eval/perplexity.h: one fresh KV cache per chunk, all
// logits of the chunk in one batched forward, NLL of each scored token from a log-sum-exp.
#include "qforge/eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "backend/cpu/vector_ops.h"
#include "qforge/core/progress.h"

namespace qforge {

double log_sum_exp(const float* x, int64_t n) {
  const float max_value = cpu::max_value(x, n);
  return static_cast<double>(max_value) +
         std::log(static_cast<double>(cpu::sum_exp(x, n, max_value)));
}

Result<PerplexityResult> evaluate_perplexity(InferenceSession& session, const PplDataset& dataset,
                                             TokenScorer* extra, bool show_progress) {
  const int64_t vocab = session.model().config().vocab_size;
  PerplexityResult r;
  double sum = 0;
  double sum_sq = 0;
  int64_t model_tokens = 0;
  ProgressOptions progress_options;
  progress_options.enabled = show_progress;
  progress_options.unit = "chunk";
  ProgressBar progress("perplexity", static_cast<int64_t>(dataset.chunks.size()), progress_options);
  const auto start = std::chrono::steady_clock::now();
  for (const PplChunk& chunk : dataset.chunks) {
    session.reset();
    // Logits are needed from position first_target - 1 on; earlier rows only fill the cache.
    const auto n = static_cast<int64_t>(chunk.tokens.size());
    const std::span<const int32_t> tokens(chunk.tokens);
    const int64_t context = chunk.first_target - 1;
    if (context > 0) {
      QF_TRY(session.forward(tokens.subspan(0, static_cast<size_t>(context)), LogitsMode::kNone)
                 .context("perplexity: context part of a chunk"));
    }
    // rows: [n - context, vocab]; row i predicts token context + i + 1.
    QF_ASSIGN_OR_RETURN(Tensor logits, session.forward(tokens.subspan(static_cast<size_t>(context)),
                                                       LogitsMode::kAll));
    for (int64_t j = chunk.first_target; j < n; ++j) {
      const float* row = logits.data_as<float>() + (j - 1 - context) * vocab;
      const int32_t target = chunk.tokens[static_cast<size_t>(j)];
      const double nll = log_sum_exp(row, vocab) - static_cast<double>(row[target]);
      sum += nll;
      sum_sq += nll * nll;
      ++r.scored_tokens;
      if (extra != nullptr) QF_TRY(extra->score(row, vocab, target));
    }
    model_tokens += n;
    ++r.chunks;
    progress.advance();
  }
  progress.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.tokens_per_second = r.seconds > 0 ? static_cast<double>(model_tokens) / r.seconds : 0;
  if (r.scored_tokens == 0) {
    return make_error(ErrorCode::kInvalidArgument, "perplexity: the dataset scores no tokens");
  }
  const auto n = static_cast<double>(r.scored_tokens);
  r.mean_nll = sum / n;
  r.ppl = std::exp(r.mean_nll);
  const double var = std::max(0.0, sum_sq / n - r.mean_nll * r.mean_nll);
  r.ppl_stderr = r.scored_tokens > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0.0;
  return r;
}

}  // namespace qforge
