// Bounding JSON nesting before a parser recurses into it: hostile files (configs, tokenizer.json,
// safetensors headers) can nest brackets deep enough to exhaust the stack of a recursive parser.
#pragma once

#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

// Real configs nest 3-4 levels, tokenizer.json fewer than 10.
inline constexpr int kMaxJsonDepth = 64;

// Scans `text` without building anything and fails if brackets nest deeper than `max_depth`
// (strings and escapes are skipped, so '[' inside a string does not count). `source` names the
// file in the error.
Status check_json_depth(std::string_view text, std::string_view source,
                        int max_depth = kMaxJsonDepth);

}  // namespace qforge
