// Unicode-aware pattern matching for tokenizer.json Split/Replace: PCRE2 in UTF + UCP mode (so
// \p{L}, \p{N}, \s follow the Unicode tables as Oniguruma's do in HF tokenizers), JIT-compiled,
// with match and depth limits so a hostile pattern cannot hang or exhaust the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qforge/core/error.h"

namespace qforge::tokenizer {

// A match: bytes [begin, end).
struct MatchRange {
  uint32_t begin;
  uint32_t end;
};

class Pattern {
 public:
  // A regular expression (PCRE2 syntax, a superset of what tokenizer.json regexes use).
  static Result<Pattern> regex(std::string_view pattern);
  // A literal string (tokenizer.json {"String": ...}); must not be empty.
  static Result<Pattern> literal(std::string_view text);

  // Appends every non-overlapping, non-empty match in `text` (valid UTF-8), left to right.
  Status find_all(std::string_view text, std::vector<MatchRange>& out) const;
  // Replaces every match with `content`, appending to `out`. Fails (kFormat) as soon as `out`
  // would grow past `max_out` bytes, so a hostile replacement never allocates more than that.
  Status replace_all(std::string_view text, std::string_view content, std::string& out,
                     size_t max_out = SIZE_MAX) const;

  const std::string& source() const { return source_; }
  bool is_regex() const { return code_ != nullptr; }

 private:
  std::string source_;
  std::shared_ptr<void> code_;  // pcre2_code_8*, null for a literal
};

}  // namespace qforge::tokenizer
