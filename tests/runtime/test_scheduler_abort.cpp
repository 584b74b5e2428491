// Scheduler::abort_request: dropping one running or queued request frees its pages at once and
// leaves the others' outputs exactly as if it had never been there.
#include <gtest/gtest.h>

#include <vector>

#include "qforge/runtime/llm.h"
#include "runtime_test_util.h"

namespace qforge {
namespace {

TEST(SchedulerAbort, AbortOneRequestLeavesTheOthersUnchanged) {
  const test::TestModel t = test::load_stories();
  if (t.model == nullptr) GTEST_SKIP() << "missing " << test::stories_path();
  BuildConfig bc;
  bc.max_input_len = 64;
  bc.max_seq_len = 96;
  bc.max_batch_size = 2;
  const SchedulerConfig sc{2, 64, 64, 96};
  const auto make = [&] {
    return Scheduler::create(
               t.model, t.tokenizer, sc,
               paged_kv_cache_options(t.model->config(), bc, KvCacheStorage::kF32, {}))
        .value();
  };
  SamplingParams p;
  p.max_tokens = 40;
  p.ignore_eos = true;
  const std::vector<int32_t> a = t.tokenizer->encode("Once upon a time", true).value();
  const std::vector<int32_t> b = t.tokenizer->encode("The cat sat", true).value();
  const std::vector<int32_t> c = t.tokenizer->encode("Lily", true).value();

  // Reference: b alone.
  auto alone = make();
  ASSERT_TRUE(alone->add_request(b, p).ok());
  while (alone->has_unfinished()) ASSERT_TRUE(alone->step().ok());
  const std::vector<RequestOutput> ref = alone->take_finished();

  auto s = make();
  const int64_t total = s->kv_cache().free_blocks();
  const int64_t ida = s->add_request(a, p).value();
  const int64_t idb = s->add_request(b, p).value();
  const int64_t idc = s->add_request(c, p).value();  // waits: batch of 2
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s->step().ok());
  EXPECT_EQ(s->num_running(), 2);
  EXPECT_EQ(s->num_waiting(), 1);
  EXPECT_TRUE(s->abort_request(idc));  // queued
  EXPECT_EQ(s->num_waiting(), 0);
  EXPECT_TRUE(s->abort_request(ida));  // running
  EXPECT_EQ(s->num_running(), 1);
  EXPECT_FALSE(s->abort_request(ida));
  EXPECT_FALSE(s->abort_request(12345));
  while (s->has_unfinished()) ASSERT_TRUE(s->step().ok());
  const std::vector<RequestOutput> outs = s->take_finished();
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].request_id, idb);
  EXPECT_EQ(outs[0].output_ids, ref[0].output_ids);
  EXPECT_EQ(outs[0].text, ref[0].text);
  EXPECT_EQ(s->kv_cache().free_blocks(), total);
  EXPECT_FALSE(s->abort_request(idb));  // finished
}

}  // namespace
}  // namespace qforge
