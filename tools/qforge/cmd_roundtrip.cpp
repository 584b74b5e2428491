// `qforge roundtrip`: quantize->dequantize error table on a built-in synthetic tensor set.
#include "commands.h"

namespace qforge::cli {
void register_roundtrip(CLI::App& app) {
  auto* cmd = app.add_subcommand("roundtrip", "Quantize->dequantize error of every format");
  cmd->callback([] {});
}
}  // namespace qforge::cli
