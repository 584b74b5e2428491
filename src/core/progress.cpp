// ProgressBar rendering: a throttled one-line '\r' redraw on terminals, plain milestone lines
// (no escape codes, no carriage returns) everywhere else.
#include "qforge/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace qforge {
namespace {

bool disabled_by_env() {
  const char* env = std::getenv("QFORGE_NO_PROGRESS");
  return env != nullptr && *env != '\0' && std::string_view(env) != "0";
}

// "4.2s", "3m07s", "2h05m".
std::string format_duration(double seconds) {
  seconds = std::max(seconds, 0.0);
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto whole = static_cast<int64_t>(seconds);
  if (whole < 3600) return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02}m", whole / 3600, whole % 3600 / 60);
}

// Three significant digits or so, without noise: "0.53", "12.5", "1234".
std::string format_rate(double rate) {
  if (rate < 10) return fmt::format("{:.2f}", rate);
  if (rate < 100) return fmt::format("{:.1f}", rate);
  return fmt::format("{:.0f}", rate);
}

// floor(value * scale / total) without overflow; total > 0.
int64_t scaled(int64_t value, int64_t total, int64_t scale) {
  return static_cast<int64_t>(static_cast<__int128>(value) * scale / total);
}

}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 0)), options_(std::move(options)) {
  enabled_ = options_.enabled && options_.stream != nullptr && !disabled_by_env();
  is_tty_ = options_.is_tty.has_value()
                ? *options_.is_tty
                : (options_.stream != nullptr && ::isatty(::fileno(options_.stream)) != 0);
  options_.bar_width = std::clamp(options_.bar_width, 1, 200);
  start_s_ = now();
  last_draw_s_ = start_s_;
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (is_tty_) {
    draw_tty_locked(false);
  } else {
    print_line_locked(false);
  }
}

ProgressBar::~ProgressBar() {
  finish();
}

double ProgressBar::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t ProgressBar::value() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return value_;
}

void ProgressBar::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Saturating add: value_ + n may not fit when n is huge.
  const int64_t room = total_ - value_;
  update_locked(n >= room ? total_ : value_ + n);
}

void ProgressBar::set(int64_t value) {
  std::lock_guard<std::mutex> lock(mutex_);
  update_locked(value);
}

void ProgressBar::update_locked(int64_t value) {
  if (finished_) return;
  value_ = std::clamp<int64_t>(value, 0, total_);
  if (!enabled_) return;
  if (is_tty_) {
    if (now() - last_draw_s_ >= options_.min_redraw_interval_s) draw_tty_locked(false);
    return;
  }
  // Plain lines at 10%, 20%, ... 90%; 100% is the finish line.
  if (value_ < total_) {
    const auto decile = static_cast<int>(scaled(value_, total_, 10));
    if (decile > last_decile_) {
      last_decile_ = decile;
      print_line_locked(false);
    }
  }
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  if (is_tty_) {
    draw_tty_locked(true);
  } else {
    print_line_locked(true);
  }
}

// "label: 30/100 (30%), 15.0 it/s, ETA 4.7s" or, final, "label: 100/100 (100%) in 6.7s, 15.0 it/s".
void ProgressBar::print_line_locked(bool final) {
  const double elapsed = now() - start_s_;
  const int64_t percent = total_ > 0 ? scaled(value_, total_, 100) : 100;
  std::string line = fmt::format("{}: {}/{} ({}%)", label_, value_, total_, percent);
  const double rate = elapsed > 0 ? static_cast<double>(value_) / elapsed : 0.0;
  if (final) {
    line += " in " + format_duration(elapsed);
    if (rate > 0) line += fmt::format(", {} {}/s", format_rate(rate), options_.unit);
  } else if (rate > 0) {
    const double eta = static_cast<double>(total_ - value_) / rate;
    line +=
        fmt::format(", {} {}/s, ETA {}", format_rate(rate), options_.unit, format_duration(eta));
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), options_.stream);
  std::fflush(options_.stream);
}

// "\rlabel [=========>          ]  45% 45/100 15.0 it/s ETA 3.7s", padded with spaces over
// the previous line; the final draw ends the line with '\n'.
void ProgressBar::draw_tty_locked(bool final) {
  const double t = now();
  last_draw_s_ = t;
  const double elapsed = t - start_s_;
  const int width = options_.bar_width;
  const int64_t filled = total_ > 0 ? scaled(value_, total_, width) : width;
  const int64_t percent = total_ > 0 ? scaled(value_, total_, 100) : 100;
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) {
    bar += '>';
    bar.append(static_cast<size_t>(width - filled - 1), ' ');
  }
  std::string line = fmt::format("{} [{}] {:3}% {}/{}", label_, bar, percent, value_, total_);
  const double rate = elapsed > 0 ? static_cast<double>(value_) / elapsed : 0.0;
  if (rate > 0) line += fmt::format(" {} {}/s", format_rate(rate), options_.unit);
  if (final) {
    line += " in " + format_duration(elapsed);
  } else if (rate > 0) {
    line += " ETA " + format_duration(static_cast<double>(total_ - value_) / rate);
  }
  const size_t size = line.size();
  if (size < last_line_size_) line.append(last_line_size_ - size, ' ');
  last_line_size_ = size;
  std::string out = "\r" + line;
  if (final) out += '\n';
  std::fwrite(out.data(), 1, out.size(), options_.stream);
  std::fflush(options_.stream);
}

}  // namespace qforge
