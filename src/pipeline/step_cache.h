// Reusable pipeline steps: a step's directory is steps/<name>-<hash>, where the hash covers the
// configuration text the step depends on and the identity of its input files (path, size,
// mtime; directories file by file). The step writes its files, then result.json, then done.json
// last; a directory without done.json (an interrupted run) is removed and the step rerun.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "qforge/core/error.h"

namespace qforge::pipeline_internal {

// FNV-1a 64 of the parts (each length-prefixed), as 16 hex digits.
std::string hash_parts(const std::vector<std::string>& parts);

// "path size mtime" of a file, or of every regular file below a directory (sorted, at most
// 100000 entries); "missing path" when it does not exist (the step then fails on its own).
std::string file_identity(const std::filesystem::path& path);

class Step {
 public:
  // `steps_dir`/<name>-<hash of parts>.
  Step(const std::filesystem::path& steps_dir, const std::string& name,
       const std::vector<std::string>& parts);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& key() const { return key_; }
  // True when done.json exists and names this key; then result() reads result.json.
  bool done() const;
  Result<nlohmann::json> result() const;
  // Removes any leftover of an interrupted run and creates the empty directory; with
  // `keep_partial` the leftover stays (a step that resumes its own partial work: quantize).
  Status begin(bool keep_partial = false) const;
  // Writes result.json, then done.json (both atomically).
  Status finish(const nlohmann::json& result) const;

 private:
  std::filesystem::path dir_;
  std::string key_;
};

}  // namespace qforge::pipeline_internal
