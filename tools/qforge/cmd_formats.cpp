// `qforge formats`: the precision table.
#include "commands.h"

namespace qforge::cli {
void register_formats(CLI::App& app) {
  auto* cmd = app.add_subcommand("formats", "Print the precision table of every number format");
  cmd->callback([] {});
}
}  // namespace qforge::cli
