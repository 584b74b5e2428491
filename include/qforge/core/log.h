// Logging: four levels, fmt-style messages, one line per call on stderr ("qforge: warning: ...").
// The level comes from QFORGE_LOG_LEVEL (error|warn|info|debug, default info) at first use, or
// set_log_level(). Thread-safe: each call is delivered whole, lines never interleave.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "qforge/core/error.h"

namespace qforge {

enum class LogLevel : uint8_t {
  kError = 0,
  kWarn = 1,
  kInfo = 2,
  kDebug = 3,
};

// "error", "warn", "info", "debug".
std::string_view log_level_name(LogLevel level);
// Accepts the names above (any case), "warning", and the digits 0..3.
Result<LogLevel> parse_log_level(std::string_view text);

LogLevel log_level();
void set_log_level(LogLevel level);
inline bool log_enabled(LogLevel level) {
  return static_cast<uint8_t>(level) <= static_cast<uint8_t>(log_level());
}

// Receives every enabled message as one formatted line without the trailing newline,
// e.g. "qforge: warning: QFORGE_NUM_THREADS='x' is not a number". Called under the log lock,
// so a sink must not log itself.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;
// Replaces the sink (an empty function restores stderr) and returns the previous one.
LogSink set_log_sink(LogSink sink);

// Delivers `message` at `level` if enabled (the building block of log_info & co.).
void log_message(LogLevel level, std::string_view message);

template <typename... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(LogLevel::kError)) {
    log_message(LogLevel::kError, fmt::format(format, std::forward<Args>(args)...));
  }
}

template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(LogLevel::kWarn)) {
    log_message(LogLevel::kWarn, fmt::format(format, std::forward<Args>(args)...));
  }
}

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(LogLevel::kInfo)) {
    log_message(LogLevel::kInfo, fmt::format(format, std::forward<Args>(args)...));
  }
}

template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(LogLevel::kDebug)) {
    log_message(LogLevel::kDebug, fmt::format(format, std::forward<Args>(args)...));
  }
}

}  // namespace qforge
