// EngineWorker (engine_worker.h).
#include "serve/engine_worker.h"

#include <chrono>

#include "qforge/core/log.h"

namespace qforge::serve_internal {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Channel::Event Channel::next(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return !deltas_.empty() || done_; });
  Event e;
  if (!deltas_.empty()) {
    e.kind = Event::Kind::kDelta;
    e.text = std::move(deltas_.front());
    deltas_.pop_front();
  } else if (done_) {
    e.kind = failed_ ? Event::Kind::kError : Event::Kind::kDone;
    e.text = error_;
    e.status = status_;
  }
  return e;
}

Channel::Event Channel::wait_done() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return done_; });
  deltas_.clear();
  Event e;
  e.kind = failed_ ? Event::Kind::kError : Event::Kind::kDone;
  e.text = error_;
  e.status = status_;
  return e;
}

void Channel::push_delta(std::string_view text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    deltas_.emplace_back(text);
  }
  cv_.notify_all();
}

void Channel::finish(RequestOutput output) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_) return;
    output_ = std::move(output);
    done_ = true;
  }
  cv_.notify_all();
}

void Channel::fail(int status, std::string message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_) return;
    failed_ = true;
    status_ = status;
    error_ = std::move(message);
    done_ = true;
  }
  cv_.notify_all();
}

EngineWorker::EngineWorker(LLM llm, std::string variant, ServerMetrics* metrics, int64_t max_queue)
    : llm_(std::move(llm)),
      variant_(std::move(variant)),
      metrics_(metrics),
      vm_(&metrics->variant(variant_)),
      max_queue_(max_queue) {
  vm_->kv_blocks_total->Set(static_cast<double>(llm_.scheduler().kv_cache().total_blocks()));
  thread_ = std::thread([this] { loop(); });
}

EngineWorker::~EngineWorker() {
  drain(steady_seconds());
  join();
}

EngineWorker::Submit EngineWorker::submit(WorkItem item) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Submit::kStopping;
    if (queued_.load() + waiting_.load() >= max_queue_) return Submit::kQueueFull;
    ++queued_;
    incoming_.push_back(std::move(item));
  }
  vm_->queue_depth->Set(static_cast<double>(queue_depth()));
  cv_.notify_all();
  return Submit::kOk;
}

void EngineWorker::drain(double deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      deadline_ = deadline;
    } else {
      deadline_ = std::min(deadline_, deadline);
    }
  }
  cv_.notify_all();
}

void EngineWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void EngineWorker::admit(std::vector<WorkItem>& items) {
  Scheduler& s = llm_.scheduler();
  const Tokenizer& tok = *llm_.tokenizer();
  for (WorkItem& w : items) {
    --queued_;
    auto ids = tok.encode(w.prompt, w.add_bos);
    if (!ids.ok()) {
      w.channel->fail(400, "encoding the prompt: " + ids.error().to_string());
      continue;
    }
    w.channel->prompt_tokens = static_cast<int64_t>(ids->size());
    Channel* ch = w.channel.get();
    const int64_t n_prompt = static_cast<int64_t>(ids->size());
    // The callback runs on this thread inside step(); live_ outlives it (erased after finish).
    auto id = s.add_request(
        std::move(ids).value(), w.params,
        [this, ch](const StreamEvent& e) {
          auto it = live_.find(e.request_id);
          const double now = steady_seconds();
          if (it != live_.end()) {
            Live& l = it->second;
            if (l.last_token == 0) {
              vm_->time_to_first_token->Observe(now - l.arrival);
            } else {
              vm_->inter_token_latency->Observe(now - l.last_token);
            }
            l.last_token = now;
          }
          vm_->generation_tokens->Increment();
          ch->push_delta(e.text);
        },
        w.prompt);
    if (!id.ok()) {
      const int status = id.error().code() == ErrorCode::kInternal ? 500 : 400;
      w.channel->fail(status, id.error().to_string());
      continue;
    }
    vm_->prompt_tokens->Increment(static_cast<double>(n_prompt));
    live_[*id] = Live{std::move(w.channel), std::move(w.on_finished), w.arrival, 0};
  }
  items.clear();
  waiting_.store(s.num_waiting());
  for (RequestOutput& r : s.take_finished()) {  // requests with no room finish at once
    auto it = live_.find(r.request_id);
    if (it == live_.end()) continue;
    it->second.channel->finish(std::move(r));
    live_.erase(it);
  }
}

void EngineWorker::cancel_all(int status, const std::string& message) {
  llm_.scheduler().abort_all();
  llm_.scheduler().take_finished();
  for (auto& [id, l] : live_) l.channel->fail(status, message);
  live_.clear();
}

void EngineWorker::publish_gauges() {
  const Scheduler& s = llm_.scheduler();
  const auto running = static_cast<double>(s.num_running());
  vm_->running_batch_size->Set(running);
  if (running > max_running_) {
    max_running_ = running;
    vm_->running_batch_size_max->Set(running);
  }
  waiting_.store(s.num_waiting());
  vm_->queue_depth->Set(static_cast<double>(queue_depth()));
  const PagedKvCache& kv = s.kv_cache();
  vm_->kv_blocks_used->Set(static_cast<double>(kv.total_blocks() - kv.free_blocks()));
}

void EngineWorker::loop() {
  Scheduler& s = llm_.scheduler();
  std::vector<WorkItem> batch;
  while (true) {
    bool stopping = false;
    double deadline = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return !incoming_.empty() || stopping_ || s.has_unfinished(); });
      batch.swap(incoming_);
      stopping = stopping_;
      deadline = deadline_;
    }
    if (!batch.empty()) admit(batch);
    if (stopping && steady_seconds() >= deadline) {
      cancel_all(503, "the server is shutting down; the request was cancelled");
      publish_gauges();
      break;
    }
    // Clients that went away free their batch slot and KV pages now, not at max_tokens.
    for (auto it = live_.begin(); it != live_.end();) {
      if (!it->second.channel->abandoned.load()) {
        ++it;
        continue;
      }
      s.abort_request(it->first);
      it->second.channel->fail(499, "the client disconnected");
      it = live_.erase(it);
    }
    if (s.has_unfinished()) {
      Status st = s.step();
      if (!st.ok()) {
        log_error("serve[{}]: engine step failed: {}", variant_, st.error().to_string());
        cancel_all(500, "engine step failed: " + st.error().to_string());
      } else {
        vm_->step_batch_size->Observe(static_cast<double>(s.last_step().sequences));
      }
      for (RequestOutput& r : s.take_finished()) {
        auto it = live_.find(r.request_id);
        if (it == live_.end()) continue;
        if (it->second.on_finished) it->second.on_finished(r);
        it->second.channel->finish(std::move(r));
        live_.erase(it);
      }
    }
    publish_gauges();
    if (stopping && !s.has_unfinished()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (incoming_.empty()) break;
    }
  }
  // Anything submitted after the last look (submit() refuses once stopping_, so only a race).
  std::lock_guard<std::mutex> lock(mutex_);
  for (WorkItem& w : incoming_) w.channel->fail(503, "the server is shutting down");
  incoming_.clear();
}

}  // namespace qforge::serve_internal
