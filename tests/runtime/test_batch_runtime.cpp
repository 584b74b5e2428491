// The batched runtime: BatchForward logits of a sequence are bit-identical whatever shares its
// steps, however its prompt is chunked and whatever the thread count; LLM greedy ids equal the
// reference InferenceSession (F32 pages; FP8/INT8 pages against the reference's fake
// quantization); every architecture feature (biases, qk_norm, sliding window) matches too.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/llm.h"
#include "runtime/batch_forward.h"
#include "runtime_test_util.h"

namespace qforge {
namespace {

using runtime_internal::BatchForward;
using runtime_internal::SequenceChunk;

std::vector<int32_t> random_prompt(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int32_t& id : p) id = static_cast<int32_t>(1 + rng.uniform_int(vocab - 1));
  return p;
}

// Greedy continuation of `prompt` on the reference runtime (one InferenceSession).
std::vector<int32_t> reference_greedy(const std::shared_ptr<const Model>& model,
                                      const std::vector<int32_t>& prompt, int64_t n,
                                      const std::optional<KvCacheQuant>& kv = std::nullopt) {
  SessionOptions o;
  o.context_length = static_cast<int64_t>(prompt.size()) + n;
  o.kv_cache_quant = kv;
  auto s = InferenceSession::create(model, o).value();
  std::vector<int32_t> out;
  auto logits = s.forward(prompt).value();
  const int64_t vocab = model->config().vocab_size;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(argmax_token(logits.data_as<float>(), vocab));
    if (i + 1 < n) logits = s.forward(std::span<const int32_t>(&out.back(), 1)).value();
  }
  return out;
}

struct Plan {
  std::vector<int32_t> prompt;
  int64_t chunk = 0;  // prefill chunk size when batched
  int64_t decode = 0;
};

// Every logits row (prefill end + each decode step) of each plan, greedy, with all plans sharing
// every step (together) or each alone with its prompt in one chunk.
std::vector<std::vector<float>> run_plans(const std::shared_ptr<const Model>& model,
                                          const std::vector<Plan>& plans, bool together,
                                          KvCacheStorage storage, int64_t block_size) {
  PagedKvCacheOptions o;
  o.n_layers = model->config().num_hidden_layers;
  o.n_kv_heads = model->config().num_key_value_heads;
  o.head_dim = model->config().head_dim;
  o.block_size = block_size;
  o.n_blocks = 256;
  o.storage = storage;
  auto cache = PagedKvCache::create(o).value();
  BatchForward fwd(model, cache.get());
  const int64_t vocab = model->config().vocab_size;
  std::vector<std::vector<float>> rows(plans.size());
  struct State {
    PagedKvCache::SeqId seq;
    int64_t cached = 0;
    std::vector<int32_t> out;
  };
  const auto run_group = [&](const std::vector<size_t>& group) {
    std::vector<State> st;
    for (size_t i : group) {
      st.push_back({cache->add_sequence(), 0, {}});
      const Plan& p = plans[i];
      ASSERT_TRUE(
          cache->try_reserve(st.back().seq, static_cast<int64_t>(p.prompt.size()) + p.decode));
    }
    for (;;) {
      std::vector<SequenceChunk> chunks;
      std::vector<size_t> who;
      for (size_t j = 0; j < group.size(); ++j) {
        const Plan& p = plans[group[j]];
        State& s = st[j];
        const auto n = static_cast<int64_t>(p.prompt.size());
        if (s.cached < n) {
          const int64_t take = together ? std::min(p.chunk, n - s.cached) : n;
          chunks.push_back({s.seq, s.cached,
                            std::span<const int32_t>(p.prompt).subspan(s.cached, take),
                            s.cached + take == n});
        } else if (static_cast<int64_t>(s.out.size()) <= p.decode) {
          chunks.push_back({s.seq, s.cached, std::span<const int32_t>(&s.out.back(), 1), true});
        } else {
          continue;
        }
        who.push_back(j);
      }
      if (chunks.empty()) break;
      std::vector<float> logits;
      ASSERT_TRUE(fwd.run(chunks, &logits).ok());
      int64_t r = 0;
      for (size_t c = 0; c < chunks.size(); ++c) {
        State& s = st[who[c]];
        s.cached += static_cast<int64_t>(chunks[c].tokens.size());
        if (!chunks[c].want_logits) continue;
        const float* row = logits.data() + r++ * vocab;
        auto& dst = rows[group[who[c]]];
        dst.insert(dst.end(), row, row + vocab);
        s.out.push_back(argmax_token(row, vocab));
      }
    }
    for (State& s : st) cache->release(s.seq);
  };
  if (together) {
    std::vector<size_t> all(plans.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    run_group(all);
  } else {
    for (size_t i = 0; i < plans.size(); ++i) run_group({i});
  }
  EXPECT_EQ(cache->free_blocks(), cache->total_blocks());
  return rows;
}

TEST(BatchForward, LogitsAreBitIdenticalWhateverSharesTheBatchAndTheThreadCount) {
  const auto t = test::load_stories();
  if (t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path();
  const int64_t vocab = t.model->config().vocab_size;
  const std::vector<Plan> plans = {{random_prompt(7, vocab, 1), 3, 12},
                                   {random_prompt(40, vocab, 2), 16, 5},
                                   {random_prompt(1, vocab, 3), 1, 20},
                                   {random_prompt(23, vocab, 4), 5, 9}};
  for (KvCacheStorage storage : {KvCacheStorage::kF32, KvCacheStorage::kBF16}) {
    for (int64_t bs : {1, 16}) {
      const auto alone = run_plans(t.model, plans, false, storage, bs);
      const auto together = run_plans(t.model, plans, true, storage, bs);
      const int threads = num_threads();
      set_num_threads(1);
      const auto one_thread = run_plans(t.model, plans, true, storage, bs);
      set_num_threads(threads);
      for (size_t i = 0; i < plans.size(); ++i) {
        ASSERT_EQ(alone[i].size(), static_cast<size_t>((plans[i].decode + 1) * vocab));
        ASSERT_EQ(together[i].size(), alone[i].size());
        EXPECT_EQ(0,
                  std::memcmp(alone[i].data(), together[i].data(), alone[i].size() * sizeof(float)))
            << "sequence " << i << " storage " << kv_cache_storage_name(storage) << " block " << bs;
        EXPECT_EQ(
            0, std::memcmp(alone[i].data(), one_thread[i].data(), alone[i].size() * sizeof(float)))
            << "sequence " << i << " (1 thread)";
      }
    }
  }
}

BuildConfig small_config(int64_t batch, KvCacheStorage storage) {
  BuildConfig b;
  b.max_input_len = 128;
  b.max_seq_len = 256;
  b.max_batch_size = batch;
  b.max_num_tokens = 24;  // prompts are prefilled in chunks
  b.kv_cache_block_size = 16;
  b.kv_cache_storage = storage;
  b.precision = DType::F32;
  return b;
}

TEST(Llm, BatchedGreedyEqualsEachPromptAloneAndTheReference) {
  const auto t = test::load_stories();
  if (t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path();
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog",
                                            "Lily and Ben went to the park to play with a ball",
                                            "One day", "Tom had a red"};
  SamplingParams p;
  p.max_tokens = 30;
  p.logprobs = 3;
  p.ignore_eos = true;
  auto llm = LLM::create(t.model, t.tokenizer, small_config(8, KvCacheStorage::kF32)).value();
  std::vector<std::string> streamed(prompts.size());
  auto together = llm.generate(prompts, p, [&](const StreamEvent& e) {
    streamed[static_cast<size_t>(e.request_id)] += e.text;
  });
  ASSERT_TRUE(together.ok()) << together.error().to_string();
  ASSERT_EQ(together->size(), prompts.size());
  auto single = LLM::create(t.model, t.tokenizer, small_config(1, KvCacheStorage::kF32)).value();
  for (size_t i = 0; i < prompts.size(); ++i) {
    const RequestOutput& r = (*together)[i];
    EXPECT_EQ(r.prompt, prompts[i]);
    EXPECT_EQ(r.output_ids.size(), 30u);
    EXPECT_EQ(r.finish_reason, FinishReason::kLength);
    EXPECT_EQ(streamed[i], r.text);
    auto alone = single.generate({prompts[i]}, p);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*alone)[0].output_ids, r.output_ids) << prompts[i];
    EXPECT_EQ((*alone)[0].text, r.text);
    ASSERT_EQ((*alone)[0].logprobs.size(), r.logprobs.size());
    for (size_t k = 0; k < r.logprobs.size(); ++k) {
      EXPECT_EQ((*alone)[0].logprobs[k].sampled.logprob, r.logprobs[k].sampled.logprob);
      ASSERT_EQ(r.logprobs[k].top.size(), 3u);
      EXPECT_EQ(r.logprobs[k].top[0].id, r.output_ids[k]);  // greedy: the top-1 token
    }
    // The reference runtime (contiguous F32 cache) gives the same greedy ids.
    EXPECT_EQ(reference_greedy(t.model, r.prompt_ids, 30), r.output_ids) << prompts[i];
  }
  EXPECT_EQ((*together)[0].text.rfind(", there was a little girl named Lily.", 0), 0u)
      << (*together)[0].text;
  EXPECT_EQ(llm.scheduler().kv_cache().free_blocks(), llm.scheduler().kv_cache().total_blocks());
}

// RuntimeOptions::interrupt_check (the Python binding's Ctrl-C hook) runs before every step; a
// failed check ends generate() with its error, frees every page, and the LLM stays usable.
TEST(Llm, InterruptCheckAbortsTheCallAndLeavesTheLlmUsable) {
  const auto t = test::load_stories();
  if (t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path();
  SamplingParams p;
  p.max_tokens = 20;
  p.ignore_eos = true;
  int64_t checks = 0;
  bool interrupt = true;
  RuntimeOptions ro;
  ro.interrupt_check = [&]() -> Status {
    ++checks;
    if (interrupt && checks == 5) return make_error(ErrorCode::kInternal, "interrupted");
    return ok_status();
  };
  auto llm = LLM::create(t.model, t.tokenizer, small_config(4, KvCacheStorage::kF32), ro).value();
  int64_t streamed = 0;
  auto r = llm.generate({"Once upon a time", "The little dog"}, p,
                        [&](const StreamEvent&) { ++streamed; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "interrupted");
  EXPECT_EQ(checks, 5);
  EXPECT_LT(streamed, 2 * 20);  // stopped part-way
  EXPECT_EQ(llm.scheduler().kv_cache().free_blocks(), llm.scheduler().kv_cache().total_blocks());
  EXPECT_FALSE(llm.scheduler().has_unfinished());
  // The next call runs to the end: one check per step (every prompt prefills in the first
  // step, 20 decode steps in all), and the same ids as without a hook.
  interrupt = false;
  checks = 0;
  auto again = llm.generate({"Once upon a time"}, p);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(checks, 20);
  auto plain = LLM::create(t.model, t.tokenizer, small_config(4, KvCacheStorage::kF32)).value();
  EXPECT_EQ(plain.generate({"Once upon a time"}, p).value()[0].output_ids, (*again)[0].output_ids);
}

TEST(Llm, QuantizedPagesEqualTheReferenceWithFakeQuantization) {
  const auto t = test::load_stories();
  if (t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path();
  const ModelConfig& c = t.model->config();
  const std::vector<std::vector<int32_t>> prompts = {random_prompt(9, c.vocab_size, 5),
                                                     random_prompt(33, c.vocab_size, 6),
                                                     random_prompt(2, c.vocab_size, 7)};
  for (KvCacheDType dtype : {KvCacheDType::kFp8, KvCacheDType::kInt8}) {
    KvCacheQuant q = kv_cache_quant_unit_scales(dtype, c.num_hidden_layers);
    if (dtype == KvCacheDType::kInt8) {
      q.per_head = true;
      q.k_scale.assign(static_cast<size_t>(c.num_hidden_layers * c.num_key_value_heads), 0.04f);
      q.v_scale.assign(q.k_scale.size(), 0.02f);
      q.k_scale[1] = 0.05f;
    }
    BuildConfig b =
        small_config(4, dtype == KvCacheDType::kFp8 ? KvCacheStorage::kFp8 : KvCacheStorage::kInt8);
    SchedulerConfig sc{b.max_batch_size, b.max_num_tokens, b.max_input_len, b.max_seq_len};
    auto s = Scheduler::create(t.model, t.tokenizer, sc,
                               paged_kv_cache_options(c, b, *b.kv_cache_storage, q))
                 .value();
    SamplingParams p;
    p.max_tokens = 24;
    p.ignore_eos = true;
    for (const auto& prompt : prompts) ASSERT_TRUE(s->add_request(prompt, p).ok());
    while (s->has_unfinished()) ASSERT_TRUE(s->step().ok());
    auto outs = s->take_finished();
    ASSERT_EQ(outs.size(), prompts.size());
    for (const RequestOutput& r : outs) {
      EXPECT_EQ(reference_greedy(t.model, r.prompt_ids, 24, q), r.output_ids)
          << kv_cache_dtype_name(dtype) << " prompt of " << r.prompt_ids.size();
    }
  }
}

TEST(Llm, EveryArchitectureFeatureMatchesTheReference) {
  struct Arch {
    const char* preset;
    int64_t window;
  };
  for (const Arch a :
       {Arch{"tiny", 0}, Arch{"tiny", 6}, Arch{"tiny-qwen2", 0}, Arch{"tiny-qwen3", 0}}) {
    const auto model =
        test::synthetic_model(a.preset, [&](ModelConfig& c) { c.sliding_window = a.window; });
    ASSERT_NE(model, nullptr) << a.preset;
    const int64_t vocab = model->config().vocab_size;
    const std::vector<std::vector<int32_t>> prompts = {random_prompt(11, vocab, 8),
                                                       random_prompt(30, vocab, 9)};
    SamplingParams p;
    p.max_tokens = 12;
    p.ignore_eos = true;
    BuildConfig b = small_config(4, KvCacheStorage::kF32);
    b.kv_cache_block_size = 4;
    auto llm = LLM::create(model, nullptr, b).value();
    auto outs = llm.generate_ids(prompts, p);
    ASSERT_TRUE(outs.ok()) << outs.error().to_string();
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(reference_greedy(model, prompts[i], 12), (*outs)[i].output_ids)
          << a.preset << " window " << a.window << " prompt " << i;
    }
  }
}

}  // namespace
}  // namespace qforge
