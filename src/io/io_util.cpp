// Implementation of the internal reader helpers declared in io_util.h.
#include "io/io_util.h"

#include <string>
#include <utility>
#include <vector>

namespace qforge::io_detail {

std::string printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace qforge::io_detail

namespace qforge::io_detail {

Status check_json_text(std::string_view text, std::string_view file) {
  QF_TRY(check_json_depth(text, file));
  // nlohmann's lexer takes a NUL byte for the end of input: "{}\0anything" would parse. JSON text
  // never holds a raw NUL (inside strings it must be escaped as \u0000).
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(ErrorCode::kFormat,
                      "{}: NUL byte at offset {} of the JSON text (JSON holds no raw NUL bytes; "
                      "NUL-padded or binary file?)",
                      file, nul);
  }
  return ok_status();
}

Error duplicate_key_error(std::string_view file, std::string_view key) {
  return make_error(ErrorCode::kFormat,
                    "{}: key '{}' appears twice in one JSON object (expected unique keys; "
                    "corrupt or tampered file?)",
                    file, printable(key));
}

Result<nlohmann::json> parse_json_strict(std::string_view text, std::string_view file) {
  // A key seen twice in the same object is an error (readers disagree on which copy wins, which
  // hides tampering).
  QF_TRY(check_json_text(text, file));
  StrictDomBuilder builder;
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kFormat, "{}: malformed JSON: {}", file, e.what());
  }
  if (!builder.duplicate().empty()) return duplicate_key_error(file, builder.duplicate());
  if (!ok) {
    return make_error(ErrorCode::kFormat, "{}: malformed JSON: {}", file,
                      builder.error().empty() ? "parse stopped" : builder.error());
  }
  return std::move(builder.root());
}

const char* json_type_name(const nlohmann::json& value) {
  return value.type_name();
}

Result<int64_t> json_to_int64(const nlohmann::json& value, std::string_view file,
                              std::string_view field) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v);
  } else if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  return make_error(ErrorCode::kFormat, "{}: {} = {} is not an integer (got a {}{})", file, field,
                    printable(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
                    json_type_name(value), value.is_number_unsigned() ? " above 2^63" : "");
}

Result<uint64_t> json_to_uint64(const nlohmann::json& value, std::string_view file,
                                std::string_view field) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return make_error(ErrorCode::kFormat, "{}: {} = {} is not a non-negative integer (got a {})",
                    file, field,
                    printable(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
                    json_type_name(value));
}

}  // namespace qforge::io_detail

#include "qforge/core/mmap_file.h"

namespace qforge::io_detail {

Result<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes) {
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path));
  if (file.size() > max_bytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: file has {} bytes, more than the {} expected for this kind of file "
                      "(wrong file?)",
                      path.string(), file.size(), max_bytes);
  }
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

}  // namespace qforge::io_detail
