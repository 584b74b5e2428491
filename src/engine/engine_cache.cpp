// open_engine (include/qforge/engine/engine.h): an .engine file as it is, or a checkpoint
// directory built once into the engine cache ($QFORGE_CACHE, else $XDG_CACHE_HOME/qforge, else
// ~/.cache/qforge) under a key of the checkpoint's files (names, sizes, mtimes), the build
// config, the CPU target and the engine format version, so a changed input rebuilds.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "engine/engine_checksum.h"
#include "engine/engine_metadata.h"
#include "qforge/core/log.h"
#include "qforge/core/simd.h"
#include "qforge/engine/engine.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path cache_root() {
  if (const char* q = std::getenv("QFORGE_CACHE"); q != nullptr && *q != '\0') return q;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return fs::path(x) / "qforge";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return fs::path(h) / ".cache" / "qforge";
  }
  return fs::temp_directory_path() / "qforge-cache";
}

Result<std::string> cache_key(const fs::path& dir, const BuildConfig& config) {
  std::error_code ec;
  std::vector<std::string> lines;
  lines.push_back(fs::weakly_canonical(fs::absolute(dir), ec).string());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    lines.push_back(fmt::format("{} {} {}.{}", entry.path().filename().string(), st.st_size,
                                st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  }
  if (ec) {
    return make_error(ErrorCode::kIo, "open_engine: cannot list {}: {}", dir.string(),
                      ec.message());
  }
  std::sort(lines.begin() + 1, lines.end());
  lines.push_back(engine_detail::build_config_to_json(config).dump());
  lines.push_back(simd_dispatch_target_name());
  lines.push_back(std::to_string(kEngineFormatVersion));
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return engine_detail::checksum_hex(
      engine_detail::checksum64(std::as_bytes(std::span<const char>(all))));
}

}  // namespace

Result<Engine> open_engine(const std::string& model_path, const BuildConfig& config) {
  std::error_code ec;
  if (fs::is_regular_file(model_path, ec)) return load_engine(model_path);
  if (!fs::is_directory(model_path, ec)) {
    return make_error(ErrorCode::kNotFound,
                      "open_engine: '{}' is neither an .engine file nor a checkpoint directory",
                      model_path);
  }
  QF_TRY(validate_build_config(config));
  const fs::path dir(model_path);
  QF_ASSIGN_OR_RETURN(std::string key, cache_key(dir, config));
  const fs::path root = cache_root();
  fs::create_directories(root, ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "open_engine: cannot create the engine cache {}: {} (set "
                      "QFORGE_CACHE to a writable directory)",
                      root.string(), ec.message());
  }
  std::string stem = fs::weakly_canonical(fs::absolute(dir), ec).filename().string();
  if (stem.empty()) stem = "model";
  const fs::path cached = root / fmt::format("{}-{}.engine", stem, key);
  if (fs::is_regular_file(cached, ec)) {
    auto engine = load_engine(cached.string());
    if (engine.ok()) return engine;
    log_warn("engine cache: {} does not load ({}); rebuilding it", cached.string(),
             engine.error().to_string());
  }
  log_info("building engine for {} into the cache: {}", model_path, cached.string());
  auto built = build_engine(model_path, config, cached.string());
  if (!built.ok()) return std::move(built).error().add_context("open_engine");
  return load_engine(cached.string());
}

}  // namespace qforge
