// Logging: prefixes, level filtering, parsing, the sink, and whole lines under concurrency.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "qforge/core/log.h"

namespace qforge {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_level_ = log_level();
    saved_sink_ = set_log_sink([this](LogLevel level, std::string_view line) {
      lines_.emplace_back(line);
      levels_.push_back(level);
    });
  }
  void TearDown() override {
    set_log_sink(std::move(saved_sink_));
    set_log_level(saved_level_);
  }

  std::vector<std::string> lines_;
  std::vector<LogLevel> levels_;
  LogLevel saved_level_ = LogLevel::kInfo;
  LogSink saved_sink_;
};

TEST_F(LogTest, LinesCarryTheLevelPrefix) {
  set_log_level(LogLevel::kDebug);
  log_error("bad tensor {}", "w");
  log_warn("ratio {:.2f}", 0.5);
  log_info("loaded {} layers", 32);
  log_debug("x={}", -1);
  const std::vector<std::string> expected = {
      "qforge: error: bad tensor w",
      "qforge: warning: ratio 0.50",
      "qforge: info: loaded 32 layers",
      "qforge: debug: x=-1",
  };
  EXPECT_EQ(lines_, expected);
  const std::vector<LogLevel> levels = {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo,
                                        LogLevel::kDebug};
  EXPECT_EQ(levels_, levels);
}

TEST_F(LogTest, LevelFiltersMessages) {
  set_log_level(LogLevel::kWarn);
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  log_info("hidden");
  log_debug("hidden");
  log_warn("shown");
  log_error("shown too");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0], "qforge: warning: shown");
  set_log_level(LogLevel::kError);
  log_warn("hidden");
  EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(LogTest, ParsesLevelNames) {
  EXPECT_EQ(*parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(*parse_log_level("INFO"), LogLevel::kInfo);
  EXPECT_EQ(*parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_EQ(*parse_log_level("Warn"), LogLevel::kWarn);
  EXPECT_EQ(*parse_log_level("0"), LogLevel::kError);
  auto bad = parse_log_level("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'loud'"), std::string::npos);
  EXPECT_EQ(log_level_name(LogLevel::kWarn), "warn");
}

TEST_F(LogTest, SetSinkReturnsThePreviousOne) {
  int calls = 0;
  LogSink mine = set_log_sink([&](LogLevel, std::string_view) { ++calls; });
  log_error("to the counting sink");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(lines_.empty());
  set_log_sink(std::move(mine));  // back to the fixture's sink
  log_error("to the fixture");
  EXPECT_EQ(lines_.size(), 1u);
}

TEST_F(LogTest, ConcurrentMessagesArriveWhole) {
  set_log_level(LogLevel::kInfo);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kPerThread; ++i) log_info("thread {} message {} {}", t, i, "payload");
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(lines_.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const std::string& line : lines_) {
    int t = -1;
    int i = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "qforge: info: thread %d message %d payload", &t, &i), 2)
        << line;
    ASSERT_EQ(i, next[t]++);  // per-thread order is kept
  }
}

TEST_F(LogTest, DefaultSinkWritesOneLinePerCallToStderr) {
  set_log_sink(nullptr);
  set_log_level(LogLevel::kInfo);
  std::FILE* capture = std::tmpfile();
  ASSERT_NE(capture, nullptr);
  std::fflush(stderr);
  const int saved_fd = ::dup(2);
  ::dup2(::fileno(capture), 2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) log_info("stderr line {} {} {}", t, i, std::string(50, 'x'));
    });
  }
  for (auto& th : threads) th.join();
  std::fflush(stderr);
  ::dup2(saved_fd, 2);
  ::close(saved_fd);

  std::rewind(capture);
  char buf[256];
  int count = 0;
  while (std::fgets(buf, sizeof(buf), capture) != nullptr) {
    const std::string line(buf);
    if (line.find("stderr line") == std::string::npos) continue;  // e.g. gtest output
    ++count;
    int t = -1;
    int i = -1;
    char tail[64] = {};
    ASSERT_EQ(std::sscanf(buf, "qforge: info: stderr line %d %d %63s", &t, &i, tail), 3) << line;
    EXPECT_EQ(std::string(tail), std::string(50, 'x'));
    EXPECT_EQ(line.back(), '\n');
  }
  std::fclose(capture);
  EXPECT_EQ(count, 400);
}

}  // namespace
}  // namespace qforge
