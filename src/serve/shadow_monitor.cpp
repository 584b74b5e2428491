// ShadowMonitor (shadow_monitor.h).
#include "serve/shadow_monitor.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>

#include "qforge/core/log.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/sampling.h"

namespace qforge::serve_internal {
namespace {

// log_softmax of one logits row into `out` (double inside).
void log_softmax(const float* logits, int64_t vocab, std::vector<double>& out) {
  out.resize(static_cast<size_t>(vocab));
  double mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < vocab; ++i) out[static_cast<size_t>(i)] = logits[i] - lse;
}

}  // namespace

ShadowMonitor::ShadowMonitor(std::shared_ptr<const Model> candidate,
                             std::shared_ptr<const Model> baseline, ServerMetrics* metrics,
                             const ShadowOptions& options)
    : candidate_(std::move(candidate)),
      baseline_(std::move(baseline)),
      metrics_(metrics),
      options_(options) {
  thread_ = std::thread([this] { loop(); });
}

ShadowMonitor::~ShadowMonitor() {
  stop();
}

void ShadowMonitor::offer(const RequestOutput& out) {
  if (out.output_ids.empty() || out.prompt_ids.empty()) return;
  Item item;
  item.ids = out.prompt_ids;
  item.ids.insert(item.ids.end(), out.output_ids.begin(), out.output_ids.end());
  item.n_prompt = static_cast<int64_t>(out.prompt_ids.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ || static_cast<int64_t>(queue_.size()) >= options_.queue) {
      metrics_->shadow_dropped().Increment();
      return;
    }
    queue_.push_back(std::move(item));
  }
  cv_.notify_one();
}

void ShadowMonitor::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ShadowStats ShadowMonitor::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void ShadowMonitor::loop() {
  // Lowest CPU priority for this thread only (Linux: nice applies per thread id).
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;  // pending items are dropped: shadow scores are advisory
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    score(item);
  }
}

void ShadowMonitor::score(const Item& item) {
  // Inputs: every id but the last; rows n_prompt-1 .. end predict the generated ids.
  const auto n_in = static_cast<int64_t>(item.ids.size()) - 1;
  const int64_t n_out = n_in - item.n_prompt + 1;
  if (n_in <= 0 || n_out <= 0) return;
  const std::span<const int32_t> input(item.ids.data(), static_cast<size_t>(n_in));
  SessionOptions so;
  so.context_length = n_in;
  auto run = [&](const std::shared_ptr<const Model>& m) -> Result<Tensor> {
    QF_ASSIGN_OR_RETURN(InferenceSession s, InferenceSession::create(m, so));
    return s.forward(input, LogitsMode::kAll);
  };
  auto cand = run(candidate_);
  auto base = run(baseline_);
  if (!cand.ok() || !base.ok()) {
    log_warn("serve: shadow scoring failed: {}",
             (!cand.ok() ? cand.error() : base.error()).to_string());
    return;
  }
  const int64_t vocab = candidate_->config().vocab_size;
  const float* c = cand->data_as<float>();
  const float* b = base->data_as<float>();
  std::vector<double> lc, lb;
  double kl_sum = 0;
  int64_t agreed = 0;
  for (int64_t r = item.n_prompt - 1; r < n_in; ++r) {
    const float* cr = c + r * vocab;
    const float* br = b + r * vocab;
    log_softmax(cr, vocab, lc);
    log_softmax(br, vocab, lb);
    double kl = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      const double pb = std::exp(lb[static_cast<size_t>(i)]);
      if (pb > 0) kl += pb * (lb[static_cast<size_t>(i)] - lc[static_cast<size_t>(i)]);
    }
    kl_sum += std::max(0.0, kl);
    agreed += argmax_token(cr, vocab) == argmax_token(br, vocab);
  }
  ShadowStats s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.completions += 1;
    stats_.tokens += n_out;
    stats_.kl_sum += kl_sum;
    stats_.agreed += agreed;
    s = stats_;
  }
  const double mean_kl = s.kl_sum / static_cast<double>(s.tokens);
  const double agreement = static_cast<double>(s.agreed) / static_cast<double>(s.tokens);
  metrics_->shadow_kl().Set(mean_kl);
  metrics_->shadow_agreement().Set(agreement);
  metrics_->shadow_scored().Increment();
  const bool bad = s.tokens >= options_.min_tokens_for_warning &&
                   (mean_kl > options_.kl_warn || agreement < options_.agreement_warn);
  if (bad && !warned_) {
    log_warn(
        "serve: shadow quality alert: mean KL {:.4f} nats (warn > {}), top-1 agreement "
        "{:.3f} (warn < {}) over {} tokens of {} completions",
        mean_kl, options_.kl_warn, agreement, options_.agreement_warn, s.tokens, s.completions);
  }
  warned_ = bad;
}

}  // namespace qforge::serve_internal
