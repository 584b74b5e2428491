// Runs the qforge CLI from tests: exit code plus captured stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace qforge::test {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// One shell word: single-quoted, with embedded single quotes escaped.
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
inline std::string quote(const std::filesystem::path& p) {
  return quote(p.string());
}
inline std::string quote(const char* s) {
  return quote(std::string(s));
}

// Runs `command` under /bin/sh with stdin from /dev/null; stdout and stderr are captured together.
inline CliRun run_shell(const std::string& command) {
  CliRun r;
  FILE* pipe = popen((command + " 2>&1 </dev/null").c_str(), "r");
  if (pipe == nullptr) {
    r.out = "popen failed";
    return r;
  }
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `args` is already shell text (quote() the paths in it).
inline CliRun run_cli(const std::string& args) {
  return run_shell(std::string("QFORGE_NO_PROGRESS=1 ") + QFORGE_CLI_PATH + " " + args);
}

// Each argument is one word, quoted here; `timeout_s` kills a hung command (exit 124);
// `prefix` is shell text run first (e.g. "ulimit -v 262144; ").
inline CliRun run_cli(const std::vector<std::string>& args, int timeout_s,
                      const std::string& prefix = "") {
  std::string command = prefix + "QFORGE_NO_PROGRESS=1 timeout " + std::to_string(timeout_s) + " " +
                        quote(QFORGE_CLI_PATH);
  for (const auto& a : args) command += " " + quote(a);
  return run_shell(command);
}

inline std::filesystem::path shared_dir() {
  return std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared";
}

}  // namespace qforge::test
