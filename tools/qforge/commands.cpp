// The subcommand registry behind QF_REGISTER_COMMAND.
#include <algorithm>
#include <string>
#include <vector>

#include "commands.h"

namespace qforge::cli {
namespace {

struct Entry {
  int order;
  std::string name;
  RegisterFn fn;
};

// Function-local static: safe to use from other files' static initialisers.
std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

}  // namespace

bool add_command(int order, const char* name, RegisterFn fn) {
  registry().push_back({order, name, fn});
  return true;
}

void register_all_commands(CLI::App& app) {
  auto entries = registry();
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  for (const auto& e : entries) e.fn(app);
}

}  // namespace qforge::cli
