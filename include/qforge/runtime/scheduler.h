// Scheduler: in-flight (continuous) batching over one Model and one PagedKvCache, as vLLM and
// TensorRT-LLM's batch manager do. Requests wait in a FIFO queue and join the running batch
// between steps (at most max_batch_size run at once); each step runs every running request's
// next token (decode) plus chunks of the prompts still being prefilled, at most max_num_tokens
// tokens in all (chunked prefill, decode first), then samples, streams, and retires finished
// requests, whose pages go straight back to the pool.
//
// Limits (documented choices):
// - a prompt longer than max_input_len is rejected by add_request() with an error;
// - prompt + max_tokens beyond max_seq_len is not an error: generation stops at max_seq_len
//   positions with finish reason "length";
// - KV pages are reserved when a request is admitted, for its whole prompt + max_tokens (capped
//   at max_seq_len), so a running request never runs out of pages; a request that does not fit
//   in the free pages waits in the queue (FIFO: later requests wait behind it); one that could
//   not fit even in an empty pool is rejected by add_request().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/model.h"
#include "qforge/runtime/generate.h"
#include "qforge/runtime/paged_kv_cache.h"
#include "qforge/runtime/sampling.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

namespace runtime_internal {
class BatchForward;
struct RequestState;
}  // namespace runtime_internal

struct SchedulerConfig {
  int64_t max_batch_size = 8;
  int64_t max_num_tokens = 1024;  // tokens per step over all sequences
  int64_t max_input_len = 1024;
  int64_t max_seq_len = 2048;
  // Logits of a sequence bit-identical whatever shares its batch (runtime/batch_forward.h says
  // what it costs); off: the linears may round a lone row differently.
  bool deterministic = true;
};

struct RequestOutput {
  int64_t request_id = 0;  // Scheduler: its add_request id; LLM::generate: the prompt's index
  std::string prompt;      // the text given to LLM::generate (empty for token-id prompts)
  std::vector<int32_t> prompt_ids;
  std::string text;                 // generated text, cut before a stop string
  std::vector<int32_t> output_ids;  // generated ids (EOS / stop token included when it ended)
  FinishReason finish_reason = FinishReason::kLength;
  // One entry per output token when SamplingParams::logprobs was set.
  std::vector<SampleLogprobs> logprobs;
  // Steady-clock seconds: queued, first token sampled, last token sampled.
  double arrival_time = 0;
  double first_token_time = 0;
  double finish_time = 0;
};

// One streamed token of one request. `text`: the new text that is now final (may be empty while
// a stop string might still match, or for EOS / stop tokens); `finished` on the last event.
struct StreamEvent {
  int64_t request_id = 0;
  int32_t token = 0;
  std::string_view text;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;
};
using StreamCallback = std::function<void(const StreamEvent&)>;

struct StepStats {
  int64_t sequences = 0;       // chunks in the step
  int64_t decode_tokens = 0;   // sequences that decoded one token
  int64_t prefill_tokens = 0;  // prompt tokens run
  double seconds = 0;
};

class Scheduler {
 public:
  // `tokenizer` may be null (token ids only: no text, no stop strings; EOS from the config).
  static Result<std::unique_ptr<Scheduler>> create(std::shared_ptr<const Model> model,
                                                   std::shared_ptr<const Tokenizer> tokenizer,
                                                   const SchedulerConfig& config,
                                                   const PagedKvCacheOptions& kv_options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates and queues a request; returns its id. A request with no room to generate
  // (max_tokens 0, or a prompt of max_seq_len tokens) finishes at once with no output. Errors
  // (nothing queued): an empty prompt, one longer than max_input_len, ids outside the vocabulary,
  // invalid sampling params, stop strings without a tokenizer, or more pages than the whole pool.
  Result<int64_t> add_request(std::vector<int32_t> prompt_ids, const SamplingParams& params,
                              StreamCallback on_token = {}, std::string prompt_text = {});

  // One step: admit, forward, sample, stream, retire. A no-op when there is nothing to do.
  Status step();
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  // Finished requests since the last call, in the order they finished.
  std::vector<RequestOutput> take_finished();
  // Drops every queued and running request (their pages return to the pool).
  void abort_all();
  // Drops one queued or running request (its pages return to the pool; it produces no
  // RequestOutput). False when no such request is unfinished. For clients that went away.
  bool abort_request(int64_t request_id);

  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  const PagedKvCache& kv_cache() const { return *cache_; }
  const SchedulerConfig& config() const { return config_; }
  const StepStats& last_step() const { return last_step_; }
  const Model& model() const { return *model_; }

 private:
  Scheduler() = default;
  void admit();
  void finish(runtime_internal::RequestState& r, FinishReason reason);
  Status sample_and_stream(runtime_internal::RequestState& r, const float* logits);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  SchedulerConfig config_;
  std::unique_ptr<PagedKvCache> cache_;
  std::unique_ptr<runtime_internal::BatchForward> forward_;
  std::deque<std::unique_ptr<runtime_internal::RequestState>> waiting_;
  std::vector<std::unique_ptr<runtime_internal::RequestState>> running_;
  std::vector<RequestOutput> finished_;
  std::vector<int32_t> eos_;
  int64_t next_id_ = 0;
  StepStats last_step_;
};

}  // namespace qforge
