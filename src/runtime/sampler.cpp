// Sampler (include/qforge/runtime/sampling.h): repetition penalty -> temperature -> top-k ->
// top-p -> min-p -> draw, the order Hugging Face's generate() applies its logits processors and
// warpers in; log-probabilities of the sampled token.
#include <algorithm>
#include <cmath>
#include <unordered_set>

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
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--min-p {} is out of range; expected [0, 1] (0 = off)", p.min_p);
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--repetition-penalty {} is invalid; expected a finite value > 0 (1 = off)",
                      p.repetition_penalty);
  }
  if (p.max_tokens < 0) {
    return make_error(ErrorCode::kInvalidArgument, "--max-tokens {} must be >= 0", p.max_tokens);
  }
  for (const std::string& s : p.stop) {
    if (s.empty()) return make_error(ErrorCode::kInvalidArgument, "--stop: empty stop string");
  }
  for (int32_t id : p.stop_token_ids) {
    if (id < 0) {
      return make_error(ErrorCode::kInvalidArgument, "--stop-token-id {} must be >= 0", id);
    }
  }
  if (p.logprobs && (*p.logprobs < 0 || *p.logprobs > kMaxLogprobs)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--logprobs {} is out of range; expected [0, {}]", *p.logprobs, kMaxLogprobs);
  }
  return ok_status();
}

int32_t argmax_token(const float* logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

void apply_repetition_penalty(float* logits, int64_t vocab, std::span<const int32_t> context,
                              float penalty) {
  if (penalty == 1.0f) return;
  std::unordered_set<int32_t> seen;
  for (int32_t id : context) {
    if (id < 0 || id >= vocab || !seen.insert(id).second) continue;
    float& l = logits[id];
    l = l > 0.0f ? l / penalty : l * penalty;
  }
}

SampleLogprobs compute_logprobs(const float* logits, int64_t vocab, int32_t sampled,
                                int64_t top_n) {
  const double max_logit = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_z = max_logit + std::log(sum);
  const auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[id]) - log_z);
  };
  SampleLogprobs r;
  r.sampled = {sampled, logprob(sampled)};
  const auto n = static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(top_n, 0), vocab));
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) {
                      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                    });
  for (size_t i = 0; i < n; ++i) r.top.push_back({ids[i], logprob(ids[i])});
  return r;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(const float* logits, int64_t vocab, std::span<const int32_t> context) {
  if (params_.repetition_penalty != 1.0f && !context.empty()) {
    penalized_.assign(logits, logits + vocab);
    apply_repetition_penalty(penalized_.data(), vocab, context, params_.repetition_penalty);
    logits = penalized_.data();
  }
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
  if (params_.min_p > 0.0f) {
    // probs[i] / probs[0] is the probability ratio to the most likely token (probs[0] = 1),
    // whatever the normalization, so the cut needs no renormalized distribution.
    size_t cut = 1;
    while (cut < keep && probs[cut] >= static_cast<double>(params_.min_p)) ++cut;
    keep = cut;
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
