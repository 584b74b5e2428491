// Runs an OpenAI-compatible server until SIGINT/SIGTERM, shared by `qforge serve` and
// `qforge pipeline --serve`.
#pragma once

#include <optional>

#include "qforge/engine/engine.h"
#include "qforge/serve/server.h"

namespace qforge::cli {

// Starts the server on `candidate` (and `baseline`), prints the address, and blocks until
// SIGINT or SIGTERM; then shuts down gracefully (in-flight requests finish or are cancelled
// after config.shutdown_grace_seconds) and returns. The signals are caught by a handler that
// only sets a flag, so it works whichever thread the kernel delivers them to (the pipeline's
// worker threads exist before the server does). Errors (a taken port, a bad config) throw
// CliFailure.
void serve_until_signal(const ServerConfig& config, Engine candidate,
                        std::optional<Engine> baseline = std::nullopt);

}  // namespace qforge::cli
