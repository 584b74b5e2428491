// LLM (include/qforge/runtime/llm.h): engine opening, KV-storage resolution, and generate():
// every prompt queued at once, the scheduler stepped until all have finished.
#include "qforge/runtime/llm.h"

#include <algorithm>
#include <utility>

namespace qforge {
namespace {

KvCacheStorage default_storage(const Model& model, const BuildConfig& config) {
  if (config.kv_cache_storage) return *config.kv_cache_storage;
  switch (model.kv_cache_quant().dtype) {
    case KvCacheDType::kFp8:
      return KvCacheStorage::kFp8;
    case KvCacheDType::kInt8:
      return KvCacheStorage::kInt8;
    default:
      break;
  }
  if (config.precision == DType::F16) return KvCacheStorage::kF16;
  if (config.precision == DType::BF16) return KvCacheStorage::kBF16;
  return KvCacheStorage::kF32;
}

}  // namespace

LLM::LLM(LLM&&) noexcept = default;
LLM& LLM::operator=(LLM&&) noexcept = default;
LLM::~LLM() = default;

Result<LLM> LLM::create(const std::string& model_path, const BuildConfig& config,
                        const RuntimeOptions& options) {
  QF_ASSIGN_OR_RETURN(Engine engine, open_engine(model_path, config).context("LLM"));
  return create(engine, options);
}

Result<LLM> LLM::create(const Engine& engine, const RuntimeOptions& options) {
  if (engine.model == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "LLM: the engine '{}' has no model",
                      engine.path);
  }
  QF_TRY(validate_build_config(engine.build_config).context("LLM: engine " + engine.path));
  LLM llm;
  llm.model_ = engine.model;
  llm.tokenizer_ = engine.tokenizer;
  llm.build_config_ = engine.build_config;
  llm.options_ = options;
  llm.storage_ = engine.kv_cache_storage;
  const ModelConfig& c = llm.model_->config();
  SchedulerConfig sc{
      engine.build_config.max_batch_size, effective_max_num_tokens(engine.build_config),
      engine.build_config.max_input_len, engine.build_config.max_seq_len, options.deterministic};
  QF_ASSIGN_OR_RETURN(llm.scheduler_,
                      Scheduler::create(llm.model_, llm.tokenizer_, sc,
                                        paged_kv_cache_options(c, engine.build_config, llm.storage_,
                                                               llm.model_->kv_cache_quant()))
                          .context("LLM"));
  return llm;
}

Result<LLM> LLM::create(std::shared_ptr<const Model> model,
                        std::shared_ptr<const Tokenizer> tokenizer, const BuildConfig& config,
                        const RuntimeOptions& options) {
  if (model == nullptr) return make_error(ErrorCode::kInvalidArgument, "LLM: model is null");
  Engine engine;
  engine.kv_cache_storage = default_storage(*model, config);
  engine.model = std::move(model);
  engine.tokenizer = std::move(tokenizer);
  engine.build_config = config;
  engine.path = engine.model->source();
  return create(engine, options);
}

Result<std::vector<RequestOutput>> LLM::generate(const std::vector<std::string>& prompts,
                                                 const SamplingParams& params,
                                                 const StreamCallback& on_token) {
  return generate(prompts, std::vector<SamplingParams>(prompts.size(), params), on_token);
}

Result<std::vector<RequestOutput>> LLM::generate(const std::vector<std::string>& prompts,
                                                 const std::vector<SamplingParams>& params,
                                                 const StreamCallback& on_token) {
  if (tokenizer_ == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "LLM::generate: this model has no tokenizer; pass token ids "
                      "(generate_ids)");
  }
  std::vector<std::vector<int32_t>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    QF_ASSIGN_OR_RETURN(std::vector<int32_t> t,
                        tokenizer_->encode(prompts[i], true)
                            .context(fmt::format("LLM::generate: encoding prompt #{}", i)));
    ids.push_back(std::move(t));
  }
  return run(std::move(ids), &prompts, params, on_token);
}

Result<std::vector<RequestOutput>> LLM::generate_ids(
    const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& params,
    const StreamCallback& on_token) {
  return run(prompts, nullptr, std::vector<SamplingParams>(prompts.size(), params), on_token);
}

Result<std::vector<RequestOutput>> LLM::generate_ids(
    const std::vector<std::vector<int32_t>>& prompts, const std::vector<SamplingParams>& params,
    const StreamCallback& on_token) {
  return run(prompts, nullptr, params, on_token);
}

Result<std::vector<RequestOutput>> LLM::run(std::vector<std::vector<int32_t>> ids,
                                            const std::vector<std::string>* texts,
                                            const std::vector<SamplingParams>& params,
                                            const StreamCallback& on_token) {
  if (params.size() != ids.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "LLM::generate: {} prompts but {} SamplingParams (pass one, or one per "
                      "prompt)",
                      ids.size(), params.size());
  }
  Scheduler& s = *scheduler_;
  std::vector<int64_t> request_ids;
  const auto fail = [&](Error e) -> Result<std::vector<RequestOutput>> {
    s.abort_all();
    s.take_finished();
    return e;
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    StreamCallback cb;
    if (on_token) {
      cb = [&on_token, i](const StreamEvent& e) {
        StreamEvent mine = e;
        mine.request_id = static_cast<int64_t>(i);
        on_token(mine);
      };
    }
    auto id = s.add_request(std::move(ids[i]), params[i], std::move(cb),
                            texts != nullptr ? (*texts)[i] : std::string());
    if (!id.ok()) return fail(std::move(id).error().add_context(fmt::format("prompt #{}", i)));
    request_ids.push_back(*id);
  }
  while (s.has_unfinished()) {
    if (options_.interrupt_check) {
      Status interrupted = options_.interrupt_check();
      if (!interrupted.ok()) return fail(std::move(interrupted).error());
    }
    Status st = s.step();
    if (!st.ok()) return fail(std::move(st).error());
  }
  std::vector<RequestOutput> done = s.take_finished();
  std::vector<RequestOutput> out(request_ids.size());
  for (RequestOutput& r : done) {
    const auto it = std::find(request_ids.begin(), request_ids.end(), r.request_id);
    if (it == request_ids.end()) continue;
    const auto index = static_cast<size_t>(it - request_ids.begin());
    r.request_id = static_cast<int64_t>(index);
    out[index] = std::move(r);
  }
  return out;
}

}  // namespace qforge
