// ServerMetrics (server_metrics.h).
#include "serve/server_metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace qforge::serve_internal {
namespace {

// Latency buckets from 1 ms to 60 s (CPU decode of small models is milliseconds per token).
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

ServerMetrics::ServerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  requests_ = &BuildCounter()
                   .Name("qforge_requests_total")
                   .Help("HTTP requests by endpoint, status code and variant")
                   .Register(*registry_);
  ttft_ = &BuildHistogram()
               .Name("qforge_time_to_first_token_seconds")
               .Help("Time from request arrival to its first generated token")
               .Register(*registry_);
  itl_ = &BuildHistogram()
              .Name("qforge_inter_token_latency_seconds")
              .Help("Time between consecutive generated tokens of one request")
              .Register(*registry_);
  step_batch_ = &BuildHistogram()
                     .Name("qforge_step_batch_size")
                     .Help("Sequences in each scheduler step (in-flight batching)")
                     .Register(*registry_);
  prompt_tokens_ = &BuildCounter()
                        .Name("qforge_prompt_tokens_total")
                        .Help("Prompt tokens admitted (rate() gives prefill tokens/s)")
                        .Register(*registry_);
  generation_tokens_ = &BuildCounter()
                            .Name("qforge_generation_tokens_total")
                            .Help("Tokens generated (rate() gives decode tokens/s)")
                            .Register(*registry_);
  queue_depth_ = &BuildGauge()
                      .Name("qforge_queue_depth")
                      .Help("Requests waiting for a batch slot")
                      .Register(*registry_);
  running_ = &BuildGauge()
                  .Name("qforge_running_batch_size")
                  .Help("Sequences in the running batch")
                  .Register(*registry_);
  running_max_ = &BuildGauge()
                      .Name("qforge_running_batch_size_max")
                      .Help("Largest running batch seen since start")
                      .Register(*registry_);
  kv_used_ = &BuildGauge()
                  .Name("qforge_kv_cache_blocks_used")
                  .Help("KV-cache pages in use")
                  .Register(*registry_);
  kv_total_ = &BuildGauge()
                   .Name("qforge_kv_cache_blocks_total")
                   .Help("KV-cache pages in the pool")
                   .Register(*registry_);
  shadow_kl_ = &BuildGauge()
                    .Name("qforge_shadow_kl_divergence")
                    .Help("Running mean KL(baseline || candidate) per generated token (nats)")
                    .Register(*registry_)
                    .Add({});
  shadow_agreement_ = &BuildGauge()
                           .Name("qforge_shadow_top1_agreement")
                           .Help(
                               "Running share of generated tokens where the candidate's and "
                               "baseline's most likely tokens agree")
                           .Register(*registry_)
                           .Add({});
  shadow_scored_ = &BuildCounter()
                        .Name("qforge_shadow_completions_total")
                        .Help("Completions re-scored by the shadow monitor")
                        .Register(*registry_)
                        .Add({});
  shadow_dropped_ = &BuildCounter()
                         .Name("qforge_shadow_dropped_total")
                         .Help("Completions sampled for shadow scoring but dropped (queue full)")
                         .Register(*registry_)
                         .Add({});
}

VariantMetrics& ServerMetrics::variant(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = variants_.find(name);
  if (it != variants_.end()) return it->second;
  const prometheus::Labels l{{"variant", name}};
  VariantMetrics v;
  v.time_to_first_token = &ttft_->Add(l, latency_buckets());
  v.inter_token_latency = &itl_->Add(l, latency_buckets());
  v.step_batch_size =
      &step_batch_->Add(l, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  v.prompt_tokens = &prompt_tokens_->Add(l);
  v.generation_tokens = &generation_tokens_->Add(l);
  v.queue_depth = &queue_depth_->Add(l);
  v.running_batch_size = &running_->Add(l);
  v.running_batch_size_max = &running_max_->Add(l);
  v.kv_blocks_used = &kv_used_->Add(l);
  v.kv_blocks_total = &kv_total_->Add(l);
  return variants_.emplace(name, v).first->second;
}

void ServerMetrics::count_request(const std::string& endpoint, int status,
                                  const std::string& variant) {
  requests_->Add({{"endpoint", endpoint}, {"status", std::to_string(status)}, {"variant", variant}})
      .Increment();
}

std::string ServerMetrics::render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace qforge::serve_internal
