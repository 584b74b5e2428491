// step_cache.h: step directories keyed by configuration and input identity.
#include "pipeline/step_cache.h"

#include <algorithm>

#include "core/json_depth.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/text_file.h"

namespace qforge::pipeline_internal {
namespace {

namespace fs = std::filesystem;

std::string one_file(const fs::path& p, const fs::path& shown) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  const auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
  return fmt::format("{} {} {}\n", shown.string(), ec ? 0 : size, ec ? 0 : mtime);
}

}  // namespace

std::string hash_parts(const std::vector<std::string>& parts) {
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  for (const std::string& p : parts) {
    mix(std::to_string(p.size()));
    mix(":");
    mix(p);
  }
  return fmt::format("{:016x}", h);
}

std::string file_identity(const fs::path& path) {
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec).lexically_normal();
  if (fs::is_regular_file(abs, ec)) return one_file(abs, abs);
  if (!fs::is_directory(abs, ec)) return "missing " + abs.string() + "\n";
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(abs, ec);
       !ec && it != fs::recursive_directory_iterator() && files.size() < 100000; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::string out = "dir " + abs.string() + "\n";
  for (const fs::path& f : files) out += one_file(f, f.lexically_relative(abs));
  return out;
}

Step::Step(const fs::path& steps_dir, const std::string& name,
           const std::vector<std::string>& parts)
    : key_(hash_parts(parts)) {
  dir_ = steps_dir / (name + "-" + key_);
}

bool Step::done() const {
  auto text = read_text_input(dir_ / "done.json", "done marker", 1 << 16);
  if (!text.ok()) return false;
  auto j = nlohmann::json::parse(text.value(), nullptr, false);
  return j.is_object() && j.value("key", std::string()) == key_ && fs::exists(dir_ / "result.json");
}

Result<nlohmann::json> Step::result() const {
  const fs::path p = dir_ / "result.json";
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(p, "step result", uint64_t{256} << 20));
  QF_TRY(check_json_depth(text, p.string()));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return make_error(ErrorCode::kFormat, "'{}' is not a JSON object; delete '{}' to rerun it",
                      p.string(), dir_.string());
  }
  return j;
}

Status Step::begin(bool keep_partial) const {
  std::error_code ec;
  if (!keep_partial) fs::remove_all(dir_, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot clear '{}': {}", dir_.string(), ec.message());
  }
  fs::create_directories(dir_, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create '{}': {}", dir_.string(), ec.message());
  }
  return ok_status();
}

Status Step::finish(const nlohmann::json& result) const {
  QF_TRY(write_file_atomic(dir_ / "result.json", result.dump(1) + "\n"));
  nlohmann::json done = {{"key", key_}};
  return write_file_atomic(dir_ / "done.json", done.dump() + "\n");
}

}  // namespace qforge::pipeline_internal
