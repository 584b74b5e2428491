// Prometheus metrics of the server (prometheus-cpp core registry, rendered with its
// TextSerializer for GET /metrics): requests by endpoint/status/variant, time to first token and
// inter-token latency histograms, prompt/generated token counters (rate() gives tokens/s), queue
// depth, running batch size (gauge, maximum seen, per-step histogram), KV-cache pages in use, and
// the shadow monitor's running KL divergence and top-1 agreement.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace qforge::serve_internal {

// One engine's metrics (label variant="candidate" or "baseline").
struct VariantMetrics {
  prometheus::Histogram* time_to_first_token = nullptr;  // seconds
  prometheus::Histogram* inter_token_latency = nullptr;  // seconds
  prometheus::Histogram* step_batch_size = nullptr;      // sequences per scheduler step
  prometheus::Counter* prompt_tokens = nullptr;
  prometheus::Counter* generation_tokens = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Gauge* running_batch_size = nullptr;
  prometheus::Gauge* running_batch_size_max = nullptr;
  prometheus::Gauge* kv_blocks_used = nullptr;
  prometheus::Gauge* kv_blocks_total = nullptr;
};

class ServerMetrics {
 public:
  ServerMetrics();
  VariantMetrics& variant(const std::string& name);  // created on first use
  void count_request(const std::string& endpoint, int status, const std::string& variant);
  std::string render() const;  // Prometheus text exposition format 0.0.4

  prometheus::Gauge& shadow_kl() { return *shadow_kl_; }
  prometheus::Gauge& shadow_agreement() { return *shadow_agreement_; }
  prometheus::Counter& shadow_scored() { return *shadow_scored_; }
  prometheus::Counter& shadow_dropped() { return *shadow_dropped_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* ttft_;
  prometheus::Family<prometheus::Histogram>* itl_;
  prometheus::Family<prometheus::Histogram>* step_batch_;
  prometheus::Family<prometheus::Counter>* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* generation_tokens_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Gauge>* running_;
  prometheus::Family<prometheus::Gauge>* running_max_;
  prometheus::Family<prometheus::Gauge>* kv_used_;
  prometheus::Family<prometheus::Gauge>* kv_total_;
  prometheus::Gauge* shadow_kl_;
  prometheus::Gauge* shadow_agreement_;
  prometheus::Counter* shadow_scored_;
  prometheus::Counter* shadow_dropped_;
  std::mutex mutex_;
  std::map<std::string, VariantMetrics> variants_;
};

}  // namespace qforge::serve_internal
