// Scheduler limits and policies: a prompt over max_input_len is an error; more requests than
// max_batch_size wait and all finish; an exhausted KV pool queues requests (never crashes) and
// every page comes back; each step carries at most max_num_tokens tokens; max_seq_len caps
// generation with "length"; stop token ids, EOS, max_tokens 0; seeded sampling is the same
// alone or batched.
#include <gtest/gtest.h>

#include <vector>

#include "qforge/core/rng.h"
#include "qforge/runtime/llm.h"
#include "runtime_test_util.h"

namespace qforge {
namespace {

std::vector<int32_t> prompt_of(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int32_t& id : p) id = static_cast<int32_t>(3 + rng.uniform_int(500));
  return p;
}

struct Fixture {
  test::TestModel t;
  SchedulerConfig sc;
  BuildConfig bc;
};

Fixture setup(int64_t batch, int64_t max_num_tokens, int64_t block, int64_t blocks) {
  Fixture s;
  s.t = test::load_stories();
  s.bc.max_input_len = 64;
  s.bc.max_seq_len = 96;
  s.bc.max_batch_size = batch;
  s.bc.max_num_tokens = max_num_tokens;
  s.bc.kv_cache_block_size = block;
  s.bc.kv_cache_blocks = blocks;
  s.sc = {batch, max_num_tokens, s.bc.max_input_len, s.bc.max_seq_len};
  return s;
}

std::unique_ptr<Scheduler> make(const Fixture& s) {
  return Scheduler::create(
             s.t.model, s.t.tokenizer, s.sc,
             paged_kv_cache_options(s.t.model->config(), s.bc, KvCacheStorage::kF32, {}))
      .value();
}

#define QF_REQUIRE_STORIES(s) \
  if ((s).t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path()

TEST(SchedulerLimits, PromptLongerThanMaxInputLenIsAnError) {
  const Fixture s = setup(4, 32, 16, 0);
  QF_REQUIRE_STORIES(s);
  auto sched = make(s);
  auto r = sched->add_request(prompt_of(65, 1), SamplingParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("the prompt has 65 tokens but max_input_len is 64"),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(sched->has_unfinished());
  r = sched->add_request({}, SamplingParams{});
  EXPECT_FALSE(r.ok());
  r = sched->add_request({1, 512}, SamplingParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("token id 512 at index 1"), std::string::npos);
  // Through the LLM API: the whole call fails before any work, naming the prompt.
  auto llm = LLM::create(s.t.model, s.t.tokenizer, s.bc).value();
  auto outs = llm.generate_ids({prompt_of(5, 2), prompt_of(70, 3)}, SamplingParams{});
  ASSERT_FALSE(outs.ok());
  EXPECT_NE(outs.error().to_string().find("prompt #1"), std::string::npos);
  EXPECT_EQ(llm.scheduler().kv_cache().free_blocks(), llm.scheduler().kv_cache().total_blocks());
}

TEST(SchedulerLimits, RequestsBeyondMaxBatchSizeWaitAndAllFinish) {
  const Fixture s = setup(2, 64, 16, 0);
  QF_REQUIRE_STORIES(s);
  auto sched = make(s);
  SamplingParams p;
  p.max_tokens = 6;
  p.ignore_eos = true;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sched->add_request(prompt_of(3 + i, 10 + i), p).ok());
  EXPECT_EQ(sched->num_waiting(), 5);
  ASSERT_TRUE(sched->step().ok());
  EXPECT_EQ(sched->num_running(), 2);
  EXPECT_EQ(sched->num_waiting(), 3);
  int64_t steps = 1;
  while (sched->has_unfinished()) {
    ASSERT_TRUE(sched->step().ok());
    EXPECT_LE(sched->num_running(), 2);
    ++steps;
  }
  auto outs = sched->take_finished();
  ASSERT_EQ(outs.size(), 5u);
  for (const RequestOutput& r : outs) EXPECT_EQ(r.output_ids.size(), 6u);
  EXPECT_GE(steps, 3 * 6 - 1);  // three waves of requests
  EXPECT_EQ(sched->kv_cache().free_blocks(), sched->kv_cache().total_blocks());
}

TEST(SchedulerLimits, ExhaustedKvPoolQueuesRequestsAndPagesComeBack) {
  for (int64_t block : {1, 16}) {
    // Each request: 20 prompt + 12 new tokens = 31 positions. A pool of 2.5 requests' pages.
    const int64_t per_request = (31 + block - 1) / block;
    const Fixture s = setup(8, 40, block, per_request * 5 / 2);
    QF_REQUIRE_STORIES(s);
    auto sched = make(s);
    SamplingParams p;
    p.max_tokens = 12;
    p.ignore_eos = true;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 6; ++i) {
      prompts.push_back(prompt_of(20, 30 + i));
      ASSERT_TRUE(sched->add_request(prompts.back(), p).ok());
    }
    ASSERT_TRUE(sched->step().ok());
    EXPECT_EQ(sched->num_running(), 2) << "block " << block;
    EXPECT_EQ(sched->num_waiting(), 4);
    EXPECT_LT(sched->kv_cache().free_blocks(), per_request);
    while (sched->has_unfinished()) ASSERT_TRUE(sched->step().ok());
    auto outs = sched->take_finished();
    ASSERT_EQ(outs.size(), 6u);
    EXPECT_EQ(sched->kv_cache().free_blocks(), sched->kv_cache().total_blocks());
    EXPECT_EQ(sched->kv_cache().live_sequences(), 0);
    // Same greedy ids as each prompt alone in a roomy cache.
    const Fixture roomy = setup(1, 64, 16, 0);
    auto alone = make(roomy);
    for (const RequestOutput& r : outs) {
      ASSERT_TRUE(alone->add_request(r.prompt_ids, p).ok());
      while (alone->has_unfinished()) ASSERT_TRUE(alone->step().ok());
      EXPECT_EQ(alone->take_finished().at(0).output_ids, r.output_ids);
    }
    // A request that could never fit is an error, not a wait.
    auto r = sched->add_request(prompt_of(60, 1), SamplingParams{.max_tokens = 36});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("KV pages"), std::string::npos) << r.error().message();
  }
}

TEST(SchedulerLimits, StepsCarryAtMostMaxNumTokens) {
  const Fixture s = setup(4, 10, 8, 0);
  QF_REQUIRE_STORIES(s);
  auto sched = make(s);
  SamplingParams p;
  p.max_tokens = 5;
  p.ignore_eos = true;
  for (int n : {23, 4, 17, 9}) ASSERT_TRUE(sched->add_request(prompt_of(n, n), p).ok());
  bool mixed = false;
  while (sched->has_unfinished()) {
    ASSERT_TRUE(sched->step().ok());
    const StepStats& st = sched->last_step();
    EXPECT_LE(st.decode_tokens + st.prefill_tokens, 10);
    mixed = mixed || (st.decode_tokens > 0 && st.prefill_tokens > 0);
  }
  EXPECT_TRUE(mixed);  // decode tokens and prefill chunks shared steps
  EXPECT_EQ(sched->take_finished().size(), 4u);
}

TEST(SchedulerLimits, FinishReasons) {
  const Fixture s = setup(4, 64, 16, 0);
  QF_REQUIRE_STORIES(s);
  auto llm = LLM::create(s.t.model, s.t.tokenizer, s.bc).value();
  SamplingParams p;
  p.max_tokens = 20;
  p.ignore_eos = true;
  auto base = llm.generate({"Once upon a time"}, p).value().at(0);
  ASSERT_EQ(base.output_ids.size(), 20u);
  // A stop token id ends generation after it (kept in the ids, not in the text).
  SamplingParams stop = p;
  stop.stop_token_ids = {base.output_ids[4]};
  auto r = llm.generate({"Once upon a time"}, stop).value().at(0);
  EXPECT_EQ(r.finish_reason, FinishReason::kStop);
  const auto first = std::find(base.output_ids.begin(), base.output_ids.end(), base.output_ids[4]) -
                     base.output_ids.begin();
  EXPECT_EQ(r.output_ids,
            std::vector<int32_t>(base.output_ids.begin(), base.output_ids.begin() + first + 1));
  // max_seq_len caps prompt + output: "length".
  SamplingParams longer = p;
  longer.max_tokens = 500;
  auto capped = llm.generate_ids({prompt_of(60, 5)}, longer).value().at(0);
  EXPECT_EQ(capped.output_ids.size(), 96u - 60u);
  EXPECT_EQ(capped.finish_reason, FinishReason::kLength);
  // max_tokens 0: nothing generated.
  auto none = llm.generate({"Hi"}, SamplingParams{.max_tokens = 0}).value().at(0);
  EXPECT_TRUE(none.output_ids.empty());
  // Stop strings cut the text (here across tokens) and finish with "stop".
  SamplingParams text_stop = p;
  text_stop.stop = {"named Lily"};
  auto cut = llm.generate({"Once upon a time"}, text_stop).value().at(0);
  EXPECT_EQ(cut.finish_reason, FinishReason::kStop);
  EXPECT_EQ(cut.text, ", there was a little girl ");
}

TEST(SchedulerLimits, SeededSamplingIsTheSameAloneOrBatched) {
  const Fixture s = setup(8, 16, 4, 0);
  QF_REQUIRE_STORIES(s);
  auto llm = LLM::create(s.t.model, s.t.tokenizer, s.bc).value();
  std::vector<SamplingParams> params(4);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].temperature = 1.3f;
    params[i].top_k = 100;
    params[i].min_p = 0.01f;
    params[i].repetition_penalty = 1.1f;
    params[i].max_tokens = 16;
    params[i].seed = 100 + i;
  }
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Once upon a time",
                                            "A big"};
  auto together = llm.generate(prompts, params).value();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto alone = llm.generate({prompts[i]}, params[i]).value().at(0);
    EXPECT_EQ(alone.output_ids, together[i].output_ids) << i;
  }
  EXPECT_NE(together[0].output_ids, together[2].output_ids);  // same prompt, other seed
}

}  // namespace
}  // namespace qforge
