// Shadow quality monitoring: a sampled share of the candidate's served completions is re-scored
// off the hot path (one low-priority thread, a bounded queue that drops when full) on both the
// candidate and the baseline model (reference InferenceSession, F32 KV): at each generated
// position, KL(P_baseline || P_candidate) of the next-token distributions and whether their
// most likely tokens agree. Running means are exported as gauges; crossing a threshold logs a
// warning (once per crossing).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "qforge/model/model.h"
#include "qforge/runtime/scheduler.h"
#include "serve/server_metrics.h"

namespace qforge::serve_internal {

struct ShadowOptions {
  int64_t queue = 16;
  double kl_warn = 0.1;
  double agreement_warn = 0.9;
  int64_t min_tokens_for_warning = 16;  // no verdict on a handful of tokens
};

struct ShadowStats {
  int64_t completions = 0;
  int64_t tokens = 0;
  double kl_sum = 0;
  int64_t agreed = 0;
};

class ShadowMonitor {
 public:
  ShadowMonitor(std::shared_ptr<const Model> candidate, std::shared_ptr<const Model> baseline,
                ServerMetrics* metrics, const ShadowOptions& options);
  ~ShadowMonitor();
  // Engine thread: queues a copy of the ids (never blocks; drops when the queue is full).
  void offer(const RequestOutput& out);
  void stop();
  ShadowStats stats() const;

 private:
  struct Item {
    std::vector<int32_t> ids;  // prompt + output
    int64_t n_prompt = 0;
  };
  void loop();
  void score(const Item& item);

  std::shared_ptr<const Model> candidate_;
  std::shared_ptr<const Model> baseline_;
  ServerMetrics* metrics_;
  ShadowOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  ShadowStats stats_;
  bool warned_ = false;
  std::thread thread_;
};

}  // namespace qforge::serve_internal
