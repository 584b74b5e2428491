// Subcommand registration for the qforge CLI. Each subcommand lives in its own cmd_<name>.cpp
// and adds itself to the app; its callback throws CliFailure to exit non-zero with a message.
#pragma once

#include <CLI/CLI.hpp>

#include <stdexcept>
#include <string>

#include "qforge/core/error.h"

namespace qforge::cli {

// Thrown by a subcommand to end the program with exit code 1 and `message` on stderr.
struct CliFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Unwraps a Result or fails the command with its error chain.
template <typename T>
T value_or_fail(Result<T> result) {
  if (!result.ok()) throw CliFailure(result.error().to_string());
  return std::move(result).value();
}
inline void ok_or_fail(Status status) {
  if (!status.ok()) throw CliFailure(status.error().to_string());
}

// Subcommands register themselves at static-initialisation time, so adding one never edits
// main.cpp:   QF_REGISTER_COMMAND(20, register_formats);
// `order` sets the position in `qforge --help` (lower first).
using RegisterFn = void (*)(CLI::App& app);
bool add_command(int order, const char* name, RegisterFn fn);
void register_all_commands(CLI::App& app);

}  // namespace qforge::cli

#define QF_REGISTER_COMMAND(order, fn)                        \
  [[maybe_unused]] static const bool qf_command_registered_ = \
      ::qforge::cli::add_command(order, #fn, fn)
