// Bounded JSON parsing and typed field access for tokenizer files (see json_util.h).
#include "tokenizer/json_util.h"

#include "core/json_depth.h"

namespace qforge::tokenizer {

Result<Json> parse_json_bounded(std::string_view text, const std::string& source, int max_depth) {
  QF_TRY(check_json_depth(text, source, max_depth));
  // nlohmann's lexer stops at a NUL byte as at the end of input ("{...}\0garbage" would parse).
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(ErrorCode::kFormat,
                      "{}: NUL byte at offset {} (JSON text holds no raw NUL bytes; binary or "
                      "NUL-padded file?)",
                      source, nul);
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return make_error(ErrorCode::kFormat, "{}: not valid JSON: {}", source, e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kFormat, "{}: cannot parse JSON: {}", source, e.what());
  }
}

Error JsonReader::error(std::string_view path, std::string_view what) const {
  return make_error(ErrorCode::kFormat, "{}: field '{}' {}", source_, path, what);
}

const Json* JsonReader::member(const Json& obj, const char* key) const {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status JsonReader::expect(const Json& value, Json::value_t type, std::string_view path) const {
  if (value.type() == type) return ok_status();
  const char* want = type == Json::value_t::object   ? "an object"
                     : type == Json::value_t::array  ? "an array"
                     : type == Json::value_t::string ? "a string"
                                                     : "another type";
  return error(path, fmt::format("is {} ({}), expected {}", value.type_name(),
                                 value.dump().substr(0, 60), want));
}

Result<bool> JsonReader::boolean(const Json& obj, const char* key, std::string_view path,
                                 bool dflt) const {
  const Json* v = member(obj, key);
  if (v == nullptr) return dflt;
  if (!v->is_boolean()) {
    return error(path, fmt::format("is {} ({}), expected true or false", v->type_name(),
                                   v->dump().substr(0, 60)));
  }
  return v->get<bool>();
}

Result<int64_t> JsonReader::integer(const Json& obj, const char* key, std::string_view path,
                                    int64_t dflt, int64_t min, int64_t max) const {
  const Json* v = member(obj, key);
  if (v == nullptr) return dflt;
  if (v->is_number_unsigned()) {
    const auto u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      return error(path, fmt::format("is {}, expected an integer in [{}, {}]", u, min, max));
    }
    return static_cast<int64_t>(u);
  }
  if (!v->is_number_integer()) {
    return error(path, fmt::format("is {} ({}), expected an integer", v->type_name(),
                                   v->dump().substr(0, 60)));
  }
  const auto i = v->get<int64_t>();
  if (i < min || i > max) {
    return error(path, fmt::format("is {}, expected an integer in [{}, {}]", i, min, max));
  }
  return i;
}

Result<std::string> JsonReader::string(const Json& obj, const char* key, std::string_view path,
                                       bool required, size_t max_bytes) const {
  const Json* v = member(obj, key);
  if (v == nullptr) {
    if (required) return error(path, "is missing (expected a string)");
    return std::string();
  }
  if (!v->is_string()) {
    return error(path, fmt::format("is {} ({}), expected a string", v->type_name(),
                                   v->dump().substr(0, 60)));
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes) {
    return error(path, fmt::format("is a string of {} bytes, more than the {} allowed", s.size(),
                                   max_bytes));
  }
  return s;
}

}  // namespace qforge::tokenizer
