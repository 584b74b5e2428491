// LLM: the offline inference API (vLLM's LLM / TensorRT-LLM's LLM). Opens a model through
// open_engine (an .engine file, or a checkpoint directory built on the fly and cached), and runs
// every prompt of a generate() call together through the in-flight batching Scheduler over one
// paged KV cache. Results are the same as running each prompt alone (greedy ids, and logits bit
// for bit): batching changes throughput, never answers.
//
//   auto llm = qforge::LLM::create("/models/llama-3.2-1b", {.max_batch_size = 16});
//   auto outs = llm->generate({"Hello", "The capital of France is"}, {.max_tokens = 64});
//
// Exceptions do not cross this API: every fallible call returns Result. Not thread-safe: one
// caller at a time (the kernels inside use every qforge thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/engine/build_config.h"
#include "qforge/engine/engine.h"
#include "qforge/runtime/sampling.h"
#include "qforge/runtime/scheduler.h"

namespace qforge {

// Runtime choices that are not part of an engine's build.
struct RuntimeOptions {
  bool deterministic = true;  // SchedulerConfig::deterministic
  // Called before each scheduler step of generate(); a non-OK status aborts every request of
  // that call (their pages go back to the pool; the LLM stays usable) and generate() returns
  // it. The Python binding turns Ctrl-C into KeyboardInterrupt here.
  std::function<Status()> interrupt_check;
};

class LLM {
 public:
  // open_engine(model_path, config), then create(Engine).
  static Result<LLM> create(const std::string& model_path, const BuildConfig& config = {},
                            const RuntimeOptions& options = {});
  // An opened engine: its model, tokenizer, build config limits and KV-cache storage.
  static Result<LLM> create(const Engine& engine, const RuntimeOptions& options = {});
  // A model built elsewhere (tests, tools). `tokenizer` may be null (token-id prompts only).
  // KV storage: config.kv_cache_storage, else the model's calibrated FP8/INT8 type, else the
  // element type of config.precision.
  static Result<LLM> create(std::shared_ptr<const Model> model,
                            std::shared_ptr<const Tokenizer> tokenizer, const BuildConfig& config,
                            const RuntimeOptions& options = {});

  LLM(LLM&&) noexcept;
  LLM& operator=(LLM&&) noexcept;
  ~LLM();

  // Text prompts (encoded with BOS). One params for all, or one per prompt. on_token gets
  // StreamEvents whose request_id is the prompt's index. Errors before any work: a prompt that
  // is empty, longer than max_input_len, or that cannot fit in the KV pool; invalid params.
  Result<std::vector<RequestOutput>> generate(const std::vector<std::string>& prompts,
                                              const SamplingParams& params = {},
                                              const StreamCallback& on_token = {});
  Result<std::vector<RequestOutput>> generate(const std::vector<std::string>& prompts,
                                              const std::vector<SamplingParams>& params,
                                              const StreamCallback& on_token = {});
  // Token-id prompts (used as they are: no BOS added).
  Result<std::vector<RequestOutput>> generate_ids(const std::vector<std::vector<int32_t>>& prompts,
                                                  const SamplingParams& params = {},
                                                  const StreamCallback& on_token = {});
  Result<std::vector<RequestOutput>> generate_ids(const std::vector<std::vector<int32_t>>& prompts,
                                                  const std::vector<SamplingParams>& params,
                                                  const StreamCallback& on_token = {});

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  const BuildConfig& build_config() const { return build_config_; }
  KvCacheStorage kv_cache_storage() const { return storage_; }
  // The scheduler (its KV pool, last step's statistics).
  Scheduler& scheduler() { return *scheduler_; }

 private:
  LLM() = default;
  Result<std::vector<RequestOutput>> run(std::vector<std::vector<int32_t>> ids,
                                         const std::vector<std::string>* texts,
                                         const std::vector<SamplingParams>& params,
                                         const StreamCallback& on_token);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  BuildConfig build_config_;
  RuntimeOptions options_;
  KvCacheStorage storage_ = KvCacheStorage::kF32;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace qforge
