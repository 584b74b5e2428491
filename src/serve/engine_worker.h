// EngineWorker: one engine thread that owns an LLM's Scheduler (which is single-threaded). HTTP
// handler threads submit() requests into a bounded queue and wait on a per-request Channel; the
// engine thread admits them between steps (so concurrent requests share batches), steps, and
// delivers text deltas and the final output to each channel.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "qforge/runtime/llm.h"
#include "serve/server_metrics.h"

namespace qforge::serve_internal {

// What a handler thread receives for one request.
class Channel {
 public:
  struct Event {
    enum class Kind { kDelta, kDone, kError, kTimeout } kind = Kind::kTimeout;
    std::string text;  // kDelta: new text; kError: the message
    int status = 0;    // kError: HTTP status
  };
  // Next event, waiting up to `timeout_ms` (kTimeout when none came).
  Event next(int timeout_ms);
  // Blocks until the request finished or failed; returns kDone or kError.
  Event wait_done();

  // Engine side.
  void push_delta(std::string_view text);
  void finish(RequestOutput output);
  void fail(int status, std::string message);

  const RequestOutput& output() const { return output_; }  // valid after kDone
  int64_t prompt_tokens = 0;                               // set before the first event
  std::atomic<bool> abandoned{false};                      // the client went away

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> deltas_;
  bool done_ = false;
  bool failed_ = false;
  int status_ = 0;
  std::string error_;
  RequestOutput output_;
};

struct WorkItem {
  std::string prompt;  // text to encode on the engine thread
  bool add_bos = true;
  SamplingParams params;
  std::shared_ptr<Channel> channel;
  double arrival = 0;  // steady-clock seconds
  // Called on the engine thread with each finished request (shadow sampling); may be empty.
  std::function<void(const RequestOutput&)> on_finished;
};

double steady_seconds();

class EngineWorker {
 public:
  EngineWorker(LLM llm, std::string variant, ServerMetrics* metrics, int64_t max_queue);
  ~EngineWorker();

  enum class Submit { kOk, kQueueFull, kStopping };
  Submit submit(WorkItem item);
  // Stops taking requests; the thread exits once everything in flight has finished, or at
  // `deadline` (steady seconds) after cancelling what is left (channels get 503).
  void drain(double deadline);
  void join();

  const std::string& variant() const { return variant_; }
  const LLM& llm() const { return llm_; }
  // Requests not yet running: submitted but not admitted, plus waiting in the scheduler.
  int64_t queue_depth() const { return queued_.load() + waiting_.load(); }

 private:
  void loop();
  void admit(std::vector<WorkItem>& items);
  void cancel_all(int status, const std::string& message);
  void publish_gauges();

  LLM llm_;
  std::string variant_;
  ServerMetrics* metrics_;
  VariantMetrics* vm_;
  int64_t max_queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<WorkItem> incoming_;
  bool stopping_ = false;
  double deadline_ = 0;
  std::atomic<int64_t> queued_{0};   // submitted, not yet handed to the scheduler
  std::atomic<int64_t> waiting_{0};  // the scheduler's queue (engine thread writes)
  struct Live {
    std::shared_ptr<Channel> channel;
    std::function<void(const RequestOutput&)> on_finished;
    double arrival = 0;
    double last_token = 0;
  };
  std::unordered_map<int64_t, Live> live_;  // engine thread only
  double max_running_ = 0;
  std::thread thread_;
};

}  // namespace qforge::serve_internal
