// Defensive JSON helpers for tokenizer files: a nesting-depth pre-scan (run before the DOM parse,
// so a hostile file cannot exhaust memory or stack), parsing without exceptions escaping, and typed
// member access whose errors name the file and the field path.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge::tokenizer {

using Json = nlohmann::json;

// Parses `text` as JSON; rejects nesting deeper than max_depth before building anything.
Result<Json> parse_json_bounded(std::string_view text, const std::string& source, int max_depth);

// Field access. `path` is the dotted field path used in messages ("model.byte_fallback").
// Absent or null members give the default; a member of the wrong type is an error.
class JsonReader {
 public:
  explicit JsonReader(const std::string& source) : source_(source) {}

  Error error(std::string_view path, std::string_view what) const;
  // Member `key` of object `obj` (nullptr when absent or null).
  const Json* member(const Json& obj, const char* key) const;
  Result<bool> boolean(const Json& obj, const char* key, std::string_view path, bool dflt) const;
  Result<int64_t> integer(const Json& obj, const char* key, std::string_view path, int64_t dflt,
                          int64_t min, int64_t max) const;
  Result<std::string> string(const Json& obj, const char* key, std::string_view path, bool required,
                             size_t max_bytes) const;
  Status expect(const Json& value, Json::value_t type, std::string_view path) const;

  const std::string& source() const { return source_; }

 private:
  const std::string& source_;
};

}  // namespace qforge::tokenizer
