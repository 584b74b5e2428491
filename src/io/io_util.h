// Internal helpers shared by the checkpoint readers: a bounds-checked little-endian byte reader
// whose errors name the file, the field and the offset, and a JSON nesting-depth guard that runs
// before nlohmann::json builds a document from untrusted text.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_depth.h"
#include "qforge/core/error.h"

namespace qforge::io_detail {

using ::qforge::check_json_depth;  // core/json_depth.h
using ::qforge::kMaxJsonDepth;

class ByteReader {
 public:
  ByteReader(std::span<const std::byte> bytes, std::string_view file)
      : bytes_(bytes), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  std::string_view file() const { return file_; }

  // Fails (naming `field`) unless `n` more bytes are available.
  Status need(uint64_t n, std::string_view field) const {
    if (n > remaining()) {
      return make_error(ErrorCode::kFormat,
                        "{}: {} needs {} bytes at offset {} but only {} remain (the file has {} "
                        "bytes; truncated or corrupt?)",
                        file_, field, n, pos_, remaining(), size());
    }
    return ok_status();
  }

  Result<std::span<const std::byte>> take(uint64_t n, std::string_view field) {
    QF_TRY(need(n, field));
    auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  template <typename T>
  Result<T> read(std::string_view field) {
    QF_TRY(need(sizeof(T), field));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  Status seek(uint64_t pos, std::string_view field) {
    if (pos > size()) {
      return make_error(ErrorCode::kFormat,
                        "{}: {} at offset {} is past the end of the file ({} bytes)", file_, field,
                        pos, size());
    }
    pos_ = pos;
    return ok_status();
  }

 private:
  std::span<const std::byte> bytes_;
  std::string_view file_;
  uint64_t pos_ = 0;
};

// Shortens arbitrary file text for an error message: at most `max` bytes, non-printable bytes
// shown as \xNN.
std::string printable(std::string_view text, size_t max = 64);

}  // namespace qforge::io_detail

#include <nlohmann/json.hpp>

namespace qforge::io_detail {

// Builds the DOM from SAX events itself. nlohmann's callback parser (json::parse with a
// parser_callback_t) rescans the parent's members at every nested object's end to drop
// "discarded" values, so an object with n object members took O(n^2) (100k safetensors tensors:
// minutes). Here each event is O(log n) (std::map insert), and a duplicate key is found by the
// same insert that places the value.
class StrictDomBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;

  bool null() override { return add(json(nullptr)); }
  bool boolean(bool v) override { return add(json(v)); }
  bool number_integer(number_integer_t v) override { return add(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return add(json(v)); }
  bool number_float(number_float_t v, const string_t& /*text*/) override { return add(json(v)); }
  bool string(string_t& v) override { return add(json(std::move(v))); }
  bool binary(binary_t& v) override { return add(json::binary(std::move(v))); }
  bool start_object(std::size_t /*elements*/) override { return open(json::object()); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t /*elements*/) override { return open(json::array()); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

  json& root() { return root_; }
  const std::string& error() const { return error_; }
  const std::string& duplicate() const { return duplicate_; }

 private:
  // Places `v` in the open container (or as the root); returns where it went, or nullptr for a
  // duplicate key (parsing stops there).
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      auto& a = top.get_ref<json::array_t&>();
      a.push_back(std::move(v));
      return &a.back();
    }
    auto& o = top.get_ref<json::object_t&>();
    auto [it, inserted] = o.emplace(std::move(key_), std::move(v));
    if (!inserted) {
      duplicate_ = it->first;
      return nullptr;
    }
    return &it->second;
  }
  bool add(json&& v) { return place(std::move(v)) != nullptr; }
  bool open(json&& container) {
    // The pointers on the stack stay valid: a container's parent only grows after it is closed
    // (arrays append after their last element ends; std::map nodes never move).
    json* p = place(std::move(container));
    if (p == nullptr) return false;
    stack_.push_back(p);
    return true;
  }
  bool close() {
    if (!stack_.empty()) stack_.pop_back();
    return true;
  }

  json root_;
  std::vector<json*> stack_;
  std::string key_;
  std::string error_;
  std::string duplicate_;
};

// Parses untrusted JSON: bounded nesting depth, duplicate keys in any object rejected (naming
// the key), syntax errors reported with the byte position. `file` names the file in errors.
Result<nlohmann::json> parse_json_strict(std::string_view text, std::string_view file);

// The pieces of parse_json_strict for readers that stream a large document through their own
// SAX handler (forwarding values to StrictDomBuilders) instead of building its whole DOM: the
// depth and NUL checks, and the duplicate-key message.
Status check_json_text(std::string_view text, std::string_view file);
Error duplicate_key_error(std::string_view file, std::string_view key);

// A JSON value's type for messages: "string", "number", "object", ...
const char* json_type_name(const nlohmann::json& value);

// Reads an integer JSON value into int64 (rejecting floats, bools, out-of-range numbers).
// `field` names it in errors.
Result<int64_t> json_to_int64(const nlohmann::json& value, std::string_view file,
                              std::string_view field);
// Reads a non-negative integer JSON value into uint64.
Result<uint64_t> json_to_uint64(const nlohmann::json& value, std::string_view file,
                                std::string_view field);

}  // namespace qforge::io_detail

#include <filesystem>

namespace qforge::io_detail {

// Reads a small text file (config.json, an index) whole; files over `max_bytes` are an error
// naming the file.
Result<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes);

}  // namespace qforge::io_detail
