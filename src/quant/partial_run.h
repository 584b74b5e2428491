// The state of an interrupted `qforge quantize` run, kept inside <output>.partial/ beside the
// finished block shards: a fingerprint of everything the result depends on, the next block to
// quantize, the per-layer reports and plan so far, and the hidden states that feed the next
// block (bit-exact, so a resumed run gives byte-identical output). Each file is replaced
// atomically; the state file is written last, so a crash at any point leaves a consistent state
// that redoes at most the block in flight.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/quant/quantize.h"

namespace qforge::quant_internal {

inline constexpr const char* kStateFile = "qforge_quantize_state.json";
inline constexpr const char* kHiddenFile = "qforge_quantize_hidden.f32";

struct PartialState {
  std::string fingerprint;
  int64_t next_block = 0;  // blocks [0, next_block) are written
  std::vector<LayerQuantReport> reports;
  std::map<std::string, std::string> plan;  // MIXED_PRECISION: module -> QuantAlgo name
  std::string plan_table;
  // KV amax per finished block: [n_kv_heads] each.
  std::vector<std::vector<float>> k_amax, v_amax;
};

Status save_partial_state(const std::filesystem::path& dir, const PartialState& state);
// Errors name the file; a missing file is kNotFound.
Result<PartialState> load_partial_state(const std::filesystem::path& dir);

Status save_hidden(const std::filesystem::path& dir, const std::vector<float>& hidden);
// Loads exactly `count` floats (a size mismatch is an error).
Result<std::vector<float>> load_hidden(const std::filesystem::path& dir, size_t count);

// Hex digest (FNV-1a 64 over the given parts, each length-prefixed).
std::string fingerprint_parts(const std::vector<std::string>& parts);

}  // namespace qforge::quant_internal
