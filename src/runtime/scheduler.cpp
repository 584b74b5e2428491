// Scheduler (include/qforge/runtime/scheduler.h): admission against the page pool, the token
// budget of a step (decode tokens first, then prefill chunks in arrival order), sampling with
// each request's own Sampler, stop conditions and streaming.
#include "qforge/runtime/scheduler.h"

#include <algorithm>
#include <chrono>

#include "runtime/batch_forward.h"
#include "runtime/stop_matcher.h"

namespace qforge {
namespace runtime_internal {

struct RequestState {
  RequestOutput out;
  SamplingParams params;
  int64_t max_tokens = 0;      // params.max_tokens capped by max_seq_len
  int64_t reserve_tokens = 0;  // KV positions the request can ever write
  StreamCallback on_token;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StopMatcher> stops;
  PagedKvCache::SeqId seq = -1;
  int64_t n_cached = 0;          // positions in the KV cache
  std::vector<int32_t> context;  // repetition-penalty ids (prompt + generated)
  int32_t previous = 0;          // last id, for incremental detokenization
  bool done = false;
};

}  // namespace runtime_internal

using runtime_internal::RequestState;
using runtime_internal::SequenceChunk;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Scheduler::~Scheduler() = default;

Result<std::unique_ptr<Scheduler>> Scheduler::create(std::shared_ptr<const Model> model,
                                                     std::shared_ptr<const Tokenizer> tokenizer,
                                                     const SchedulerConfig& config,
                                                     const PagedKvCacheOptions& kv_options) {
  if (model == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "Scheduler::create: model is null");
  }
  const auto positive = [](const char* field, int64_t v) -> Status {
    if (v < 1) {
      return make_error(ErrorCode::kInvalidArgument, "scheduler: {} = {} must be >= 1", field, v);
    }
    return ok_status();
  };
  QF_TRY(positive("max_batch_size", config.max_batch_size));
  QF_TRY(positive("max_num_tokens", config.max_num_tokens));
  QF_TRY(positive("max_input_len", config.max_input_len));
  QF_TRY(positive("max_seq_len", config.max_seq_len));
  if (config.max_input_len > config.max_seq_len) {
    return make_error(ErrorCode::kInvalidArgument,
                      "scheduler: max_input_len = {} exceeds max_seq_len = {}",
                      config.max_input_len, config.max_seq_len);
  }
  const ModelConfig& c = model->config();
  const bool extendable = c.rope_scaling.type == RopeScalingType::Dynamic;
  if (config.max_seq_len > c.max_position_embeddings && !extendable) {
    return make_error(ErrorCode::kInvalidArgument,
                      "scheduler: max_seq_len = {} exceeds the model's max_position_embeddings "
                      "= {}",
                      config.max_seq_len, c.max_position_embeddings);
  }
  auto s = std::unique_ptr<Scheduler>(new Scheduler());
  s->model_ = std::move(model);
  s->tokenizer_ = std::move(tokenizer);
  s->config_ = config;
  QF_ASSIGN_OR_RETURN(s->cache_, PagedKvCache::create(kv_options));
  s->forward_ = std::make_unique<runtime_internal::BatchForward>(s->model_, s->cache_.get(),
                                                                 config.deterministic);
  if (s->tokenizer_ && s->tokenizer_->eos_id() >= 0) s->eos_.push_back(s->tokenizer_->eos_id());
  for (int64_t id : c.eos_token_ids) s->eos_.push_back(static_cast<int32_t>(id));
  return s;
}

Result<int64_t> Scheduler::add_request(std::vector<int32_t> prompt_ids,
                                       const SamplingParams& params, StreamCallback on_token,
                                       std::string prompt_text) {
  QF_TRY(validate_sampling_params(params));
  const auto n = static_cast<int64_t>(prompt_ids.size());
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "request: the prompt has no tokens");
  if (n > config_.max_input_len) {
    return make_error(ErrorCode::kInvalidArgument,
                      "request: the prompt has {} tokens but max_input_len is {} (shorten the "
                      "prompt, or build the engine with a larger --max-input-len)",
                      n, config_.max_input_len);
  }
  const int64_t vocab = model_->config().vocab_size;
  for (int64_t i = 0; i < n; ++i) {
    if (prompt_ids[i] < 0 || prompt_ids[i] >= vocab) {
      return make_error(ErrorCode::kInvalidArgument,
                        "request: prompt token id {} at index {} is outside the vocabulary "
                        "[0, {})",
                        prompt_ids[i], i, vocab);
    }
  }
  if (!params.stop.empty() && tokenizer_ == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "request: stop strings need a tokenizer (use stop_token_ids)");
  }
  auto r = std::make_unique<RequestState>();
  r->params = params;
  r->max_tokens = std::min(params.max_tokens, config_.max_seq_len - n);
  // The last sampled token is never run, so it needs no KV position.
  r->reserve_tokens = n + std::max<int64_t>(r->max_tokens - 1, 0);
  const int64_t pages = cache_->blocks_for(r->reserve_tokens);
  if (pages > cache_->total_blocks()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "request: {} prompt + {} new tokens need {} KV pages of {} positions but "
                      "the pool has {} (raise kv_cache_blocks or lower max_tokens)",
                      n, r->max_tokens, pages, cache_->options().block_size,
                      cache_->total_blocks());
  }
  const int64_t id = next_id_++;
  r->out.request_id = id;
  r->out.prompt = std::move(prompt_text);
  r->out.prompt_ids = std::move(prompt_ids);
  r->out.arrival_time = now_seconds();
  r->on_token = std::move(on_token);
  r->sampler = std::make_unique<Sampler>(params);
  r->stops = std::make_unique<runtime_internal::StopMatcher>(params.stop);
  if (params.repetition_penalty != 1.0f) r->context = r->out.prompt_ids;
  r->previous = r->out.prompt_ids.back();
  if (r->max_tokens == 0) {
    r->out.finish_reason = FinishReason::kLength;
    r->out.first_token_time = r->out.finish_time = r->out.arrival_time;
    finished_.push_back(std::move(r->out));
    return id;
  }
  waiting_.push_back(std::move(r));
  return id;
}

void Scheduler::admit() {
  while (!waiting_.empty() && num_running() < config_.max_batch_size) {
    RequestState& r = *waiting_.front();
    const PagedKvCache::SeqId seq = cache_->add_sequence();
    if (!cache_->try_reserve(seq, r.reserve_tokens)) {
      cache_->release(seq);
      break;  // the pool is full: wait for running requests to finish (FIFO)
    }
    r.seq = seq;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::finish(RequestState& r, FinishReason reason) {
  r.out.finish_reason = reason;
  r.out.finish_time = now_seconds();
  r.done = true;
  cache_->release(r.seq);
  r.seq = -1;
  finished_.push_back(std::move(r.out));
}

Status Scheduler::sample_and_stream(RequestState& r, const float* logits) {
  const int64_t vocab = model_->config().vocab_size;
  const int32_t token = r.sampler->sample(logits, vocab, r.context);
  if (r.params.logprobs) {
    r.out.logprobs.push_back(compute_logprobs(logits, vocab, token, *r.params.logprobs));
  }
  r.out.output_ids.push_back(token);
  if (r.params.repetition_penalty != 1.0f) r.context.push_back(token);
  const double t = now_seconds();
  if (r.out.output_ids.size() == 1) r.out.first_token_time = t;
  r.out.finish_time = t;

  std::string emit;
  bool end = false;
  bool stop_string = false;
  FinishReason reason = FinishReason::kLength;
  const auto& stop_ids = r.params.stop_token_ids;
  if (!r.params.ignore_eos && std::find(eos_.begin(), eos_.end(), token) != eos_.end()) {
    end = true;
    reason = FinishReason::kEos;
  } else if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    end = true;
    reason = FinishReason::kStop;
  } else {
    bool stopped = false;
    // A model's vocabulary may be padded past its tokenizer's (embedding rows no piece names,
    // as in Llama 3's checkpoints): such ids are generated as ids with no text.
    if (tokenizer_ != nullptr && token < tokenizer_->vocab_size()) {
      const int32_t previous = r.previous < tokenizer_->vocab_size() ? r.previous : -1;
      QF_ASSIGN_OR_RETURN(std::string piece, tokenizer_->decode_next(previous, token));
      emit = r.stops->feed(piece, &stopped);
    }
    r.previous = token;
    if (stopped) {
      end = stop_string = true;
      reason = FinishReason::kStop;
    } else if (static_cast<int64_t>(r.out.output_ids.size()) >= r.max_tokens) {
      end = true;
    }
  }
  // Held-back text is final once generation ends for any reason but a stop string.
  if (end && !stop_string) emit += r.stops->flush();
  r.out.text += emit;
  if (r.on_token) {
    StreamEvent e;
    e.request_id = r.out.request_id;
    e.token = token;
    e.text = emit;
    e.finished = end;
    e.finish_reason = reason;
    r.on_token(e);
  }
  if (end) finish(r, reason);
  return ok_status();
}

Status Scheduler::step() {
  const double t0 = now_seconds();
  last_step_ = StepStats{};
  admit();
  if (running_.empty()) return ok_status();
  std::vector<SequenceChunk> chunks;
  std::vector<RequestState*> owners;
  int64_t budget = config_.max_num_tokens;
  // Decode tokens first (one per running request past its prompt), then prefill chunks.
  for (auto& r : running_) {
    const auto prompt = static_cast<int64_t>(r->out.prompt_ids.size());
    if (r->n_cached < prompt || budget == 0) continue;
    chunks.push_back(
        {r->seq, r->n_cached, std::span<const int32_t>(&r->out.output_ids.back(), 1), true});
    owners.push_back(r.get());
    --budget;
    ++last_step_.decode_tokens;
  }
  for (auto& r : running_) {
    const auto prompt = static_cast<int64_t>(r->out.prompt_ids.size());
    if (r->n_cached >= prompt || budget == 0) continue;
    const int64_t take = std::min(prompt - r->n_cached, budget);
    chunks.push_back({r->seq, r->n_cached,
                      std::span<const int32_t>(r->out.prompt_ids)
                          .subspan(static_cast<size_t>(r->n_cached), static_cast<size_t>(take)),
                      r->n_cached + take == prompt});
    owners.push_back(r.get());
    budget -= take;
    last_step_.prefill_tokens += take;
  }
  std::vector<float> logits;
  QF_TRY(forward_->run(chunks, &logits).context("scheduler step"));
  const int64_t vocab = model_->config().vocab_size;
  int64_t j = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    RequestState& r = *owners[i];
    r.n_cached += static_cast<int64_t>(chunks[i].tokens.size());
    if (!chunks[i].want_logits) continue;
    QF_TRY(sample_and_stream(r, logits.data() + j * vocab));
    ++j;
  }
  std::erase_if(running_, [](const std::unique_ptr<RequestState>& r) { return r->done; });
  last_step_.sequences = static_cast<int64_t>(chunks.size());
  last_step_.seconds = now_seconds() - t0;
  return ok_status();
}

std::vector<RequestOutput> Scheduler::take_finished() {
  return std::exchange(finished_, {});
}

bool Scheduler::abort_request(int64_t request_id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->out.request_id != request_id) continue;
    if ((*it)->seq >= 0) cache_->release((*it)->seq);
    waiting_.erase(it);
    return true;
  }
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if ((*it)->out.request_id != request_id || (*it)->done) continue;
    if ((*it)->seq >= 0) cache_->release((*it)->seq);
    running_.erase(it);
    return true;
  }
  return false;
}

void Scheduler::abort_all() {
  for (auto& r : running_) cache_->release(r->seq);
  running_.clear();
  waiting_.clear();
}

}  // namespace qforge
