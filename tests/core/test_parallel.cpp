// parallel_for: exact coverage, chunk sizes and determinism over many (range, grain, threads),
// nested calls running inline, and the QFORGE_NUM_THREADS policy.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "qforge/core/log.h"
#include "qforge/core/parallel.h"

namespace qforge {
namespace {

using Chunks = std::vector<std::pair<int64_t, int64_t>>;

Chunks run_and_record(int64_t begin, int64_t end, int64_t grain) {
  Chunks chunks;
  std::mutex mutex;
  parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    chunks.emplace_back(b, e);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

class ParallelTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = num_threads(); }
  void TearDown() override { set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_F(ParallelTest, CoversEveryIndexExactlyOnce) {
  const std::pair<int64_t, int64_t> ranges[] = {{0, 0},    {0, 1},    {0, 7},    {5, 100},
                                                {-50, 50}, {0, 1000}, {3, 1003}, {10, 5}};
  const int64_t grains[] = {-3, 0, 1, 3, 64, 1000, 5000};
  for (int threads : {1, 2, 3, 4, 7, 16}) {
    set_num_threads(threads);
    ASSERT_EQ(num_threads(), threads);
    for (const auto& range : ranges) {
      // Named copies: clang 14 cannot capture structured bindings in lambdas.
      const int64_t begin = range.first;
      const int64_t end = range.second;
      for (int64_t grain : grains) {
        SCOPED_TRACE(fmt::format("threads={} range=[{}, {}) grain={}", threads, begin, end, grain));
        const int64_t n = std::max<int64_t>(end - begin, 0);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i - begin)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;

        const Chunks chunks = run_and_record(begin, end, grain);
        if (n == 0) {
          EXPECT_TRUE(chunks.empty());
          continue;
        }
        const int64_t g = std::max<int64_t>(grain, 1);
        const int64_t expected = std::max<int64_t>(std::min<int64_t>(threads, n / g), 1);
        ASSERT_EQ(static_cast<int64_t>(chunks.size()), expected);
        EXPECT_EQ(chunks.front().first, begin);
        EXPECT_EQ(chunks.back().second, end);
        int64_t smallest = n;
        int64_t largest = 0;
        for (size_t c = 0; c < chunks.size(); ++c) {
          if (c > 0) {
            EXPECT_EQ(chunks[c].first, chunks[c - 1].second);
          }
          smallest = std::min(smallest, chunks[c].second - chunks[c].first);
          largest = std::max(largest, chunks[c].second - chunks[c].first);
        }
        EXPECT_GE(smallest, std::min(g, n));
        EXPECT_LE(largest - smallest, 1);                      // as even as possible
        EXPECT_EQ(run_and_record(begin, end, grain), chunks);  // deterministic
      }
    }
  }
}

TEST_F(ParallelTest, ChunkBoundariesAreFixedForAThreadCount) {
  set_num_threads(4);
  const Chunks expected = {{0, 3}, {3, 6}, {6, 8}, {8, 10}};
  EXPECT_EQ(run_and_record(0, 10, 1), expected);
  set_num_threads(3);
  const Chunks three = {{100, 134}, {134, 167}, {167, 200}};
  EXPECT_EQ(run_and_record(100, 200, 10), three);
}

TEST_F(ParallelTest, RunsChunksOnDifferentThreads) {
  set_num_threads(4);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  parallel_for(0, 4, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GT(ids.size(), 1u);
}

TEST_F(ParallelTest, NestedCallsRunInline) {
  set_num_threads(4);
  EXPECT_FALSE(in_parallel_region());
  std::atomic<int> inner_chunks{0};
  std::atomic<int> outer_chunks{0};
  std::atomic<int> inner_flag{0};
  parallel_for(0, 8, 1, [&](int64_t, int64_t) {
    outer_chunks++;
    if (in_parallel_region()) inner_flag++;
    parallel_for(0, 1000, 1, [&](int64_t ib, int64_t ie) {
      inner_chunks++;
      EXPECT_EQ(ib, 0);
      EXPECT_EQ(ie, 1000);
    });
  });
  EXPECT_EQ(outer_chunks.load(), 4);
  EXPECT_EQ(inner_flag.load(), 4);
  EXPECT_EQ(inner_chunks.load(), 4);  // one inline chunk per outer chunk
  EXPECT_FALSE(in_parallel_region());
}

TEST_F(ParallelTest, SingleTopLevelChunkLeavesInnerLoopsParallel) {
  set_num_threads(4);
  Chunks inner;
  parallel_for(0, 1, 1, [&](int64_t, int64_t) {
    EXPECT_FALSE(in_parallel_region());
    inner = run_and_record(0, 100, 1);
  });
  EXPECT_EQ(inner.size(), 4u);
}

TEST_F(ParallelTest, ExtremeRangesDoNotOverflow) {
  set_num_threads(4);
  const int64_t max = std::numeric_limits<int64_t>::max();
  const Chunks chunks = run_and_record(0, max, max / 4);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks.front().first, 0);
  EXPECT_EQ(chunks.back().second, max);
  const Chunks negative = run_and_record(-max, -max + 10, 5);
  ASSERT_EQ(negative.size(), 2u);
  EXPECT_EQ(negative[1].second, -max + 10);
}

TEST_F(ParallelTest, ThreadCountPolicy) {
  set_num_threads(100000);
  EXPECT_EQ(num_threads(), kMaxThreads);

  const char* old_env = std::getenv("QFORGE_NUM_THREADS");
  const std::string saved_env = old_env != nullptr ? old_env : "";
  std::vector<std::string> warnings;
  const LogLevel saved_level = log_level();
  set_log_level(LogLevel::kWarn);  // the warnings are what this test checks
  LogSink previous =
      set_log_sink([&](LogLevel, std::string_view line) { warnings.emplace_back(line); });

  ::unsetenv("QFORGE_NUM_THREADS");
  set_num_threads(0);
  const int fallback = num_threads();
  EXPECT_GE(fallback, 1);
  EXPECT_TRUE(warnings.empty());

  ::setenv("QFORGE_NUM_THREADS", "3", 1);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), 3);

  for (const char* bad : {"abc", "0", "-2", "3x", "99999"}) {
    warnings.clear();
    ::setenv("QFORGE_NUM_THREADS", bad, 1);
    set_num_threads(0);
    EXPECT_EQ(num_threads(), fallback) << bad;
    ASSERT_EQ(warnings.size(), 1u) << bad;
    EXPECT_NE(warnings[0].find(fmt::format("QFORGE_NUM_THREADS='{}'", bad)), std::string::npos);
    EXPECT_EQ(warnings[0].rfind("qforge: warning: ", 0), 0u);
  }

  set_log_sink(std::move(previous));
  set_log_level(saved_level);
  if (old_env != nullptr) {
    ::setenv("QFORGE_NUM_THREADS", saved_env.c_str(), 1);
  } else {
    ::unsetenv("QFORGE_NUM_THREADS");
  }
}

}  // namespace
}  // namespace qforge
