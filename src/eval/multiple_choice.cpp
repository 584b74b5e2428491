// Log-likelihood scoring of multiple_choice.h: the context runs once per example; each choice
// rewinds the KV cache to the context and scores its continuation tokens.
#include "qforge/eval/multiple_choice.h"

#include <chrono>
#include <cmath>

#include "qforge/core/progress.h"
#include "qforge/eval/perplexity.h"

namespace qforge {
namespace {

bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Sums log p(cont[i]) over the rows of `logits` ([n, vocab], row i predicts cont[i]).
McChoiceScore score_rows(const float* logits, int64_t vocab, const std::vector<int32_t>& cont,
                         size_t first) {
  McChoiceScore s;
  s.greedy = true;
  for (size_t i = first; i < cont.size(); ++i) {
    const float* row = logits + static_cast<int64_t>(i - first) * vocab;
    s.logprob += static_cast<double>(row[cont[i]]) - log_sum_exp(row, vocab);
    for (int64_t v = 0; v < vocab; ++v) {
      if (row[v] > row[cont[i]]) {
        s.greedy = false;
        break;
      }
    }
  }
  s.tokens = static_cast<int64_t>(cont.size() - first);
  return s;
}

int64_t argmax(const std::vector<double>& v) {
  int64_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

double mean_stderr(double p, int64_t n) {
  // sqrt(sample variance (ddof=1) / n) of a 0/1 vector with mean p.
  if (n < 2) return 0;
  const double var = p * (1 - p) * static_cast<double>(n) / static_cast<double>(n - 1);
  return std::sqrt(var / static_cast<double>(n));
}

}  // namespace

Result<McEncoded> encode_mc_pair(const Tokenizer& tokenizer, std::string_view context,
                                 std::string_view choice) {
  std::string ctx(context);
  std::string cont;
  const bool delimited =
      (!choice.empty() && is_space(choice.front())) || (!ctx.empty() && is_space(ctx.back()));
  cont = (delimited ? std::string() : std::string(" ")) + std::string(choice);
  size_t trail = ctx.size();
  while (trail > 0 && is_space(ctx[trail - 1])) --trail;
  cont = ctx.substr(trail) + cont;
  ctx.resize(trail);

  McEncoded e;
  QF_ASSIGN_OR_RETURN(e.context, tokenizer.encode(ctx, /*add_bos=*/true));
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> whole, tokenizer.encode(ctx + cont, true));
  if (e.context.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the context encodes to no tokens and the tokenizer has no BOS to start "
                      "from");
  }
  if (whole.size() <= e.context.size()) {
    return make_error(ErrorCode::kInvalidArgument, "choice '{}' adds no tokens to the context",
                      std::string(choice.substr(0, 60)));
  }
  e.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(e.context.size()), whole.end());
  return e;
}

Result<McResult> evaluate_multiple_choice(InferenceSession& session, const Tokenizer& tokenizer,
                                          const McTask& task, const McOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t vocab = session.model().config().vocab_size;
  const int64_t cap = session.context_length();
  if (tokenizer.vocab_size() > vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the tokenizer has {} ids but the model's vocabulary is {}",
                      tokenizer.vocab_size(), vocab);
  }
  int64_t n = static_cast<int64_t>(task.examples.size());
  if (options.limit > 0) n = std::min(n, options.limit);
  McResult r;
  r.task = task.name;
  ProgressOptions po;
  po.enabled = options.show_progress;
  po.unit = "ex";
  ProgressBar bar("mc " + task.name, n, po);
  int64_t correct = 0, correct_norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    const McExample& ex = task.examples[static_cast<size_t>(i)];
    const std::string where = fmt::format("{} example {} (line {})", task.name, i, ex.line);
    McExampleResult er;
    er.label = ex.label;
    std::vector<double> sums, norms;
    bool prefix_ready = false;
    std::vector<int32_t> shared_ctx;
    for (const std::string& choice : ex.choices) {
      auto enc = encode_mc_pair(tokenizer, ex.context, choice);
      if (!enc.ok()) return std::move(enc).error().add_context(where);
      std::vector<int32_t>& ctx = enc->context;
      const std::vector<int32_t>& cont = enc->continuation;
      McChoiceScore s;
      if (static_cast<int64_t>(ctx.size() + cont.size()) - 1 <= cap) {
        // Context minus its last token once; then [last context token] + cont[:-1] per choice.
        if (!prefix_ready || shared_ctx != ctx) {
          session.reset();
          if (ctx.size() > 1) {
            auto f = session.forward(std::span(ctx.data(), ctx.size() - 1), LogitsMode::kNone);
            if (!f.ok()) return std::move(f).error().add_context(where);
          }
          shared_ctx = ctx;
          prefix_ready = true;
        } else {
          QF_TRY(session.rewind(static_cast<int64_t>(ctx.size()) - 1));
        }
        std::vector<int32_t> in = {ctx.back()};
        in.insert(in.end(), cont.begin(), cont.end() - 1);
        auto logits = session.forward(in, LogitsMode::kAll);
        if (!logits.ok()) return std::move(logits).error().add_context(where);
        s = score_rows(logits->data_as<const float>(), vocab, cont, 0);
      } else {
        // lm-eval: (context + continuation)[-(cap + 1):][:-1], scoring the continuation rows
        // (a continuation longer than the whole context keeps its last cap tokens).
        std::vector<int32_t> all = ctx;
        all.insert(all.end(), cont.begin(), cont.end());
        const size_t keep = static_cast<size_t>(cap) + 1;
        std::vector<int32_t> window(all.end() - static_cast<std::ptrdiff_t>(keep), all.end());
        const size_t n_cont = std::min(cont.size(), static_cast<size_t>(cap));
        session.reset();
        prefix_ready = false;
        std::vector<int32_t> in(window.begin(), window.end() - 1);
        auto logits = session.forward(in, LogitsMode::kAll);
        if (!logits.ok()) return std::move(logits).error().add_context(where);
        const float* rows =
            logits->data_as<const float>() + static_cast<int64_t>(in.size() - n_cont) * vocab;
        s = score_rows(rows, vocab, cont, cont.size() - n_cont);
        ++r.truncated;
      }
      s.length = code_points(choice);
      sums.push_back(s.logprob);
      norms.push_back(s.logprob / static_cast<double>(std::max<int64_t>(s.length, 1)));
      er.choices.push_back(s);
    }
    er.pred = argmax(sums);
    er.pred_norm = argmax(norms);
    correct += er.pred == ex.label;
    correct_norm += er.pred_norm == ex.label;
    r.per_example.push_back(std::move(er));
    bar.advance();
  }
  bar.finish();
  session.reset();
  r.examples = n;
  r.acc = n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0;
  r.acc_norm = n > 0 ? static_cast<double>(correct_norm) / static_cast<double>(n) : 0;
  r.acc_stderr = mean_stderr(r.acc, n);
  r.acc_norm_stderr = mean_stderr(r.acc_norm, n);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace qforge
