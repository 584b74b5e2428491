// Sampler (include/qforge/runtime/sampling.h): temperature -> top-k -> top-p -> draw, the order
// Hugging Face's generate() applies its logits warpers in.
#include <algorithm>
#include <cmath>

#include "qforge/runtime/sampling.h"

namespace qforge {

Status validate_sampling_params(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--temperature {} is invalid; expected a finite value >= 0 (0 = greedy)",
                      p.temperature);
  }
  if (p.top_k < 0) {
    return make_error(ErrorCode::kInvalidArgument, "--top-k {} must be >= 0 (0 = no limit)",
                      p.top_k);
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "--top-p {} is out of range; expected (0, 1]",
                      p.top_p);
  }
  if (p.max_tokens < 0) {
    return make_error(ErrorCode::kInvalidArgument, "--max-tokens {} must be >= 0", p.max_tokens);
  }
  for (const std::string& s : p.stop) {
    if (s.empty()) return make_error(ErrorCode::kInvalidArgument, "--stop: empty stop string");
  }
  return ok_status();
}

int32_t argmax_token(const float* logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (params_.temperature == 0.0f) return argmax_token(logits, vocab);
  // candidates: (logit / T, id) sorted by decreasing probability (ties: smaller id first).
  candidates_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    candidates_[i] = {logits[i] / params_.temperature, static_cast<int32_t>(i)};
  }
  const auto better = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                      candidates_.end(), better);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), better);
  }
  // Softmax over the kept candidates (in double), then the nucleus cut.
  std::vector<double> probs(keep);
  const double max_logit = candidates_[0].first;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += probs[i] = std::exp(candidates_[i].first - max_logit);
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    size_t cut = 0;
    while (cut < keep) {
      cumulative += probs[cut++] / sum;
      if (cumulative >= params_.top_p) break;
    }
    keep = cut;  // at least one token survives
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += probs[i];
  }
  double u = rng_.uniform() * sum;
  for (size_t i = 0; i < keep; ++i) {
    u -= probs[i];
    if (u < 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace qforge
