// ProgressBar: progress of a long step (quantizing layers, scoring a dataset) on stderr.
// On a terminal it redraws one line with '\r' (bar, percent, count, rate, ETA) at most ~10 times
// a second; elsewhere (CI logs, pipes) it prints plain lines only: at start, at each 10%
// milestone and at the end. QFORGE_NO_PROGRESS=1 (or options.enabled = false) silences it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace qforge {

struct ProgressOptions {
  std::FILE* stream = stderr;
  // Whether `stream` is a terminal; unset: isatty(fileno(stream)).
  std::optional<bool> is_tty;
  // false silences the bar; so does a non-empty QFORGE_NO_PROGRESS other than "0".
  bool enabled = true;
  // Monotonic time in seconds; unset: std::chrono::steady_clock. Tests inject a fake.
  std::function<double()> clock;
  std::string unit = "it";  // "it/s" in the rate; e.g. "tok" or "layer"
  int bar_width = 30;
  double min_redraw_interval_s = 0.1;  // terminal redraw throttle
};

// Thread-safe: advance() may be called from parallel_for workers. Values are clamped to
// [0, total]. finish() prints the final line once; the destructor calls it.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, ProgressOptions options = {});
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void advance(int64_t n = 1);
  void set(int64_t value);
  void finish();

  int64_t value() const;
  int64_t total() const { return total_; }
  bool enabled() const { return enabled_; }
  bool is_tty() const { return is_tty_; }

 private:
  double now() const;
  void update_locked(int64_t value);
  void draw_tty_locked(bool final);
  void print_line_locked(bool final);

  std::string label_;
  int64_t total_;
  ProgressOptions options_;
  bool enabled_ = false;
  bool is_tty_ = false;
  bool finished_ = false;
  int64_t value_ = 0;
  int last_decile_ = 0;  // non-TTY: last 10% milestone printed
  double start_s_ = 0;
  double last_draw_s_ = 0;     // TTY: time of the last redraw
  size_t last_line_size_ = 0;  // TTY: to blank out leftovers of a longer previous line
  mutable std::mutex mutex_;
};

}  // namespace qforge
