// model.safetensors.index.json reader (transformers' sharded checkpoint index).
#include "io/hf_index.h"

#include "io/io_util.h"

namespace qforge::io_detail {

namespace {

constexpr uint64_t kMaxIndexBytes = 64 << 20;

Status check_shard_name(const std::string& name, const std::string& index_path) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos || name.find('\0') != std::string::npos) {
    return make_error(ErrorCode::kFormat,
                      "{}: weight_map names shard '{}' (expected a file name in the same "
                      "directory, without path separators)",
                      index_path, printable(name));
  }
  return ok_status();
}

}  // namespace

Result<std::map<std::string, std::string>> read_shard_index(
    const std::filesystem::path& index_path) {
  const std::string ip = index_path.string();
  QF_ASSIGN_OR_RETURN(std::string text, read_text_file(index_path, kMaxIndexBytes));
  QF_ASSIGN_OR_RETURN(nlohmann::json doc, parse_json_strict(text, ip));
  if (!doc.is_object() || !doc.contains("weight_map") || !doc["weight_map"].is_object()) {
    return make_error(ErrorCode::kFormat,
                      "{}: expected an object with a 'weight_map' object (tensor name -> shard "
                      "file)",
                      ip);
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, shard] : doc["weight_map"].items()) {
    if (!shard.is_string()) {
      return make_error(ErrorCode::kFormat,
                        "{}: weight_map['{}'] is a JSON {}, expected a file name", ip,
                        printable(name), json_type_name(shard));
    }
    const auto& file = shard.get_ref<const std::string&>();
    QF_TRY(check_shard_name(file, ip));
    weight_map.emplace(name, file);
  }
  if (weight_map.empty()) {
    return make_error(ErrorCode::kFormat, "{}: weight_map is empty (expected tensor -> shard)", ip);
  }
  return weight_map;
}

}  // namespace qforge::io_detail
