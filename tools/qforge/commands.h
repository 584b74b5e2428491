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

void register_formats(CLI::App& app);
void register_roundtrip(CLI::App& app);

}  // namespace qforge::cli
