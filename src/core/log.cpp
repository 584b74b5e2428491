// Log level (from QFORGE_LOG_LEVEL at first use), sink, and the locked line writer.
#include "qforge/core/log.h"

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace qforge {
namespace {

constexpr LogLevel kDefaultLevel = LogLevel::kInfo;

std::string_view line_prefix(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "qforge: error: ";
    case LogLevel::kWarn:
      return "qforge: warning: ";
    case LogLevel::kInfo:
      return "qforge: info: ";
    case LogLevel::kDebug:
      return "qforge: debug: ";
  }
  return "qforge: ";
}

struct LogState {
  std::mutex mutex;
  LogSink sink;  // empty: stderr
  std::atomic<uint8_t> level{static_cast<uint8_t>(kDefaultLevel)};

  LogState() {
    const char* env = std::getenv("QFORGE_LOG_LEVEL");
    if (env == nullptr || *env == '\0') return;
    auto parsed = parse_log_level(env);
    if (parsed.ok()) {
      level.store(static_cast<uint8_t>(*parsed), std::memory_order_relaxed);
    } else {
      // Logging is not usable yet (this is its initialization), so write the warning directly.
      std::string line =
          fmt::format("{}QFORGE_LOG_LEVEL: {}; using '{}'\n", line_prefix(LogLevel::kWarn),
                      parsed.error().message(), log_level_name(kDefaultLevel));
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  }
};

LogState& state() {
  static LogState instance;
  return instance;
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "invalid";
}

Result<LogLevel> parse_log_level(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "error" || lower == "0") return LogLevel::kError;
  if (lower == "warn" || lower == "warning" || lower == "1") return LogLevel::kWarn;
  if (lower == "info" || lower == "2") return LogLevel::kInfo;
  if (lower == "debug" || lower == "3") return LogLevel::kDebug;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown log level '{}' (expected error, warn, info or debug)", text);
}

LogLevel log_level() {
  return static_cast<LogLevel>(state().level.load(std::memory_order_relaxed));
}

void set_log_level(LogLevel level) {
  state().level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
}

LogSink set_log_sink(LogSink sink) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::swap(s.sink, sink);
  return sink;
}

void log_message(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  // Format the whole line first so that it reaches the sink (and stderr) in one piece.
  std::string line;
  line.reserve(message.size() + 24);
  line += line_prefix(level);
  line += message;
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.sink) {
    s.sink(level, line);
    return;
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace qforge
