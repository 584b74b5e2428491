// Internal: reading and checking model.safetensors.index.json (tensor name -> shard file).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "qforge/core/error.h"

namespace qforge::io_detail {

// weight_map of the index at `index_path`: every value a plain file name in the same directory
// (no path separators, no "..": a hostile index cannot point outside the checkpoint).
Result<std::map<std::string, std::string>> read_shard_index(
    const std::filesystem::path& index_path);

}  // namespace qforge::io_detail
