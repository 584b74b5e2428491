// ProgressBar: exact plain-line output off a terminal, single-line throttled redraws on one,
// disabling by option and by QFORGE_NO_PROGRESS, thread-safe advancing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "qforge/core/progress.h"

namespace qforge {
namespace {

// A FILE* whose contents can be read back at any time (open_memstream updates on fflush).
class MemStream {
 public:
  MemStream() : file_(::open_memstream(&buffer_, &size_)) {}
  ~MemStream() {
    std::fclose(file_);
    std::free(buffer_);
  }
  MemStream(const MemStream&) = delete;
  MemStream& operator=(const MemStream&) = delete;
  std::FILE* file() const { return file_; }
  std::string str() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("QFORGE_NO_PROGRESS");
    had_env_ = env != nullptr;
    if (had_env_) saved_env_ = env;
    ::unsetenv("QFORGE_NO_PROGRESS");
  }
  void TearDown() override {
    if (had_env_) ::setenv("QFORGE_NO_PROGRESS", saved_env_.c_str(), 1);
  }

  ProgressOptions options(bool tty) {
    ProgressOptions o;
    o.stream = out_.file();
    o.is_tty = tty;
    o.clock = [this] { return now_; };
    return o;
  }

  MemStream out_;
  double now_ = 0.0;
  bool had_env_ = false;
  std::string saved_env_;
};

TEST_F(ProgressTest, PlainOutputHasStartMilestonesAndEnd) {
  {
    ProgressBar bar("quantize", 20, options(false));
    for (int i = 1; i <= 20; ++i) {
      now_ = 0.5 * i;
      bar.advance();
    }
  }
  const std::string expected =
      "quantize: 0/20 (0%)\n"
      "quantize: 2/20 (10%), 2.00 it/s, ETA 9.0s\n"
      "quantize: 4/20 (20%), 2.00 it/s, ETA 8.0s\n"
      "quantize: 6/20 (30%), 2.00 it/s, ETA 7.0s\n"
      "quantize: 8/20 (40%), 2.00 it/s, ETA 6.0s\n"
      "quantize: 10/20 (50%), 2.00 it/s, ETA 5.0s\n"
      "quantize: 12/20 (60%), 2.00 it/s, ETA 4.0s\n"
      "quantize: 14/20 (70%), 2.00 it/s, ETA 3.0s\n"
      "quantize: 16/20 (80%), 2.00 it/s, ETA 2.0s\n"
      "quantize: 18/20 (90%), 2.00 it/s, ETA 1.0s\n"
      "quantize: 20/20 (100%) in 10.0s, 2.00 it/s\n";
  EXPECT_EQ(out_.str(), expected);
}

TEST_F(ProgressTest, PlainOutputPrintsOneLinePerJumpAndNoControlCharacters) {
  ProgressOptions o = options(false);
  o.unit = "layer";
  ProgressBar bar("calib", 100, o);
  now_ = 10.0;
  bar.set(35);  // crosses 10%, 20%, 30%: one line
  bar.set(36);
  bar.set(39);
  now_ = 100.0;
  bar.set(40);
  now_ = 800.0;
  bar.advance(1000);  // clamped to total
  bar.finish();
  bar.finish();  // idempotent
  bar.advance(1);
  const std::string text = out_.str();
  const std::string expected =
      "calib: 0/100 (0%)\n"
      "calib: 35/100 (35%), 3.50 layer/s, ETA 18.6s\n"
      "calib: 40/100 (40%), 0.40 layer/s, ETA 2m30s\n"
      "calib: 100/100 (100%) in 13m20s, 0.12 layer/s\n";
  EXPECT_EQ(text, expected);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(bar.value(), 100);
}

TEST_F(ProgressTest, EarlyFinishReportsWhereItStopped) {
  {
    ProgressBar bar("eval", 10, options(false));
    now_ = 2.0;
    bar.advance(3);
    bar.finish();
    now_ = 3.0;
  }  // the destructor must not print a second end line
  EXPECT_EQ(out_.str(),
            "eval: 0/10 (0%)\n"
            "eval: 3/10 (30%), 1.50 it/s, ETA 4.7s\n"
            "eval: 3/10 (30%) in 2.0s, 1.50 it/s\n");
}

TEST_F(ProgressTest, TerminalOutputStaysOnOneLineUntilFinish) {
  ProgressOptions o = options(true);
  o.bar_width = 10;
  ProgressBar bar("tty", 100, o);
  EXPECT_EQ(out_.str(), "\rtty [>         ]   0% 0/100");
  now_ = 2.0;
  bar.set(40);
  EXPECT_EQ(out_.str().substr(out_.str().rfind('\r')),
            "\rtty [====>     ]  40% 40/100 20.0 it/s ETA 3.0s");
  // 100 updates 10 ms apart: throttled to about 10 redraws per second.
  for (int i = 1; i <= 100; ++i) {
    now_ = 2.0 + 0.01 * i;
    bar.set(40 + i * 60 / 100);
  }
  const std::string before = out_.str();
  EXPECT_EQ(before.find('\n'), std::string::npos);
  const auto redraws = std::count(before.begin(), before.end(), '\r');
  EXPECT_GE(redraws, 9);
  EXPECT_LE(redraws, 13);
  now_ = 4.0;
  bar.finish();
  const std::string after = out_.str();
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 1);
  EXPECT_EQ(after.back(), '\n');
  EXPECT_EQ(after.substr(after.rfind('\r')), "\rtty [==========] 100% 100/100 25.0 it/s in 4.0s\n");
  EXPECT_EQ(after.find('\x1b'), std::string::npos);
}

TEST_F(ProgressTest, TerminalRedrawBlanksOutALongerPreviousLine) {
  ProgressOptions o = options(true);
  o.bar_width = 10;
  ProgressBar bar("pad", 1000, o);
  now_ = 1.0;
  bar.set(1);
  bar.finish();
  EXPECT_EQ(out_.str(),
            "\rpad [>         ]   0% 0/1000"
            "\rpad [>         ]   0% 1/1000 1.00 it/s ETA 16m39s"
            "\rpad [>         ]   0% 1/1000 1.00 it/s in 1.0s   \n");
}

TEST_F(ProgressTest, DisabledByOption) {
  ProgressOptions o = options(true);
  o.enabled = false;
  {
    ProgressBar bar("quiet", 10, o);
    bar.advance(5);
    EXPECT_EQ(bar.value(), 5);
    EXPECT_FALSE(bar.enabled());
  }
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ProgressTest, DisabledByEnvironment) {
  ::setenv("QFORGE_NO_PROGRESS", "1", 1);
  {
    ProgressBar bar("quiet", 10, options(false));
    bar.advance(10);
  }
  EXPECT_EQ(out_.str(), "");
  ::setenv("QFORGE_NO_PROGRESS", "0", 1);
  {
    ProgressBar bar("loud", 1, options(false));
    bar.advance(1);
  }
  ::unsetenv("QFORGE_NO_PROGRESS");
  EXPECT_EQ(out_.str(), "loud: 0/1 (0%)\nloud: 1/1 (100%) in 0.0s\n");
}

TEST_F(ProgressTest, ZeroTotalIsComplete) {
  { ProgressBar bar("nothing", 0, options(false)); }
  EXPECT_EQ(out_.str(), "nothing: 0/0 (100%)\nnothing: 0/0 (100%) in 0.0s\n");
}

TEST_F(ProgressTest, AdvanceIsThreadSafe) {
  ProgressOptions o = options(false);
  o.clock = nullptr;  // the real clock: the fake one is not synchronized
  ProgressBar bar("threads", 4000, o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&bar] {
      for (int i = 0; i < 1000; ++i) bar.advance();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bar.value(), 4000);
  bar.finish();
  const std::string text = out_.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 11);  // start, 9 milestones, end
  EXPECT_NE(text.find("threads: 4000/4000 (100%) in "), std::string::npos);
}

}  // namespace
}  // namespace qforge
