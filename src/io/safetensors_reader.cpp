// safetensors reader: header parsing and validation (the rules of the reference library's
// Metadata::validate plus a closed dtype list, bounded JSON depth and duplicate-key rejection),
// and zero-copy tensor views into a memory-mapped file.
#include <algorithm>
#include <array>
#include <cstring>

#include "io/io_util.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

using io_detail::printable;

struct DTypeName {
  std::string_view name;
  DType dtype;
};

// The closed list qforge reads and writes.
constexpr std::array<DTypeName, 13> kDTypes = {{{"F64", DType::F64},
                                                {"F32", DType::F32},
                                                {"F16", DType::F16},
                                                {"BF16", DType::BF16},
                                                {"F8_E4M3", DType::F8_E4M3FN},
                                                {"F8_E5M2", DType::F8_E5M2},
                                                {"F8_E8M0", DType::E8M0},
                                                {"I64", DType::I64},
                                                {"I32", DType::I32},
                                                {"I16", DType::I16},
                                                {"I8", DType::I8},
                                                {"U8", DType::U8},
                                                {"BOOL", DType::BOOL}}};

// Valid in the reference library but not read by qforge.
constexpr std::string_view kKnownUnsupported[] = {"U16", "U32",     "U64",    "C64",
                                                  "F4",  "F6_E2M3", "F6_E3M2"};

std::string closed_list() {
  std::string out;
  for (const auto& d : kDTypes) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

Result<SafetensorsTensorInfo> parse_tensor_entry(const std::string& name,
                                                 const nlohmann::json& entry,
                                                 std::string_view file) {
  // Formatted only for an error: a header may hold a million tensors, and building these
  // strings for every field was a large part of the cost.
  const auto where = [&] { return fmt::format("tensor '{}'", printable(name, 200)); };
  const auto to_uint64 = [&](const nlohmann::json& v, const auto& field) -> Result<uint64_t> {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    return io_detail::json_to_uint64(v, file, field());
  };
  if (!entry.is_object()) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} is a JSON {}, expected an object with dtype, shape and data_offsets",
                      file, where(), io_detail::json_type_name(entry));
  }
  SafetensorsTensorInfo info;
  info.name = name;
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) {
      return make_error(ErrorCode::kFormat,
                        "{}: {} has no '{}' field (expected dtype, shape and "
                        "data_offsets)",
                        file, where(), key);
    }
  }
  const auto& dtype = entry["dtype"];
  if (!dtype.is_string()) {
    return make_error(ErrorCode::kFormat, "{}: {} field dtype is a JSON {}, expected a string",
                      file, where(), io_detail::json_type_name(dtype));
  }
  auto parsed = parse_safetensors_dtype(dtype.get_ref<const std::string&>());
  if (!parsed.ok())
    return std::move(parsed).error().add_context(fmt::format("{}: {}", file, where()));
  info.dtype = *parsed;

  const auto& shape = entry["shape"];
  if (!shape.is_array()) {
    return make_error(ErrorCode::kFormat, "{}: {} field shape is a JSON {}, expected an array",
                      file, where(), io_detail::json_type_name(shape));
  }
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    return make_error(ErrorCode::kFormat, "{}: {} field shape has {} dims (expected at most {})",
                      file, where(), shape.size(), kMaxDims);
  }
  std::array<int64_t, kMaxDims> dims{};
  for (size_t i = 0; i < shape.size(); ++i) {
    QF_ASSIGN_OR_RETURN(
        uint64_t d, to_uint64(shape[i], [&] { return fmt::format("{} shape[{}]", where(), i); }));
    if (d > static_cast<uint64_t>(INT64_MAX)) {
      return make_error(ErrorCode::kFormat, "{}: {} shape[{}] = {} is too large", file, where(), i,
                        d);
    }
    dims[i] = static_cast<int64_t>(d);
  }
  auto shape_result = Shape::from({dims.data(), shape.size()});
  if (!shape_result.ok()) {
    return std::move(shape_result)
        .error()
        .add_context(fmt::format("{}: {} field shape", file, where()));
  }
  info.shape = *shape_result;

  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    return make_error(
        ErrorCode::kFormat, "{}: {} field data_offsets = {} (expected an array [begin, end])", file,
        where(), printable(offsets.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  }
  QF_ASSIGN_OR_RETURN(info.begin,
                      to_uint64(offsets[0], [&] { return where() + " data_offsets[0]"; }));
  QF_ASSIGN_OR_RETURN(info.end,
                      to_uint64(offsets[1], [&] { return where() + " data_offsets[1]"; }));
  if (info.begin > info.end) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} data_offsets [{}, {}] end before they begin (expected begin <= end)",
                      file, where(), info.begin, info.end);
  }
  auto nbytes = dtype_storage_bytes(info.dtype, info.shape.numel());
  if (!nbytes.ok())
    return std::move(nbytes).error().add_context(fmt::format("{}: {}", file, where()));
  if (info.end - info.begin != *nbytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} data_offsets [{}, {}] span {} bytes but dtype {} x shape {} needs {} "
                      "bytes (corrupt header?)",
                      file, where(), info.begin, info.end, info.end - info.begin,
                      dtype.get_ref<const std::string&>(), info.shape, *nbytes);
  }
  return info;
}

}  // namespace

Result<std::string_view> safetensors_dtype_name(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return make_error(ErrorCode::kUnsupported,
                    "safetensors: dtype {} cannot be stored (supported: {}; pack sub-byte codes "
                    "into U8)",
                    dtype, closed_list());
}

Result<DType> parse_safetensors_dtype(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return d.dtype;
  }
  for (std::string_view n : kKnownUnsupported) {
    if (n == name) {
      return make_error(ErrorCode::kUnsupported,
                        "dtype '{}' is a valid safetensors dtype that qforge does not read "
                        "(supported: {})",
                        name, closed_list());
    }
  }
  return make_error(ErrorCode::kFormat,
                    "dtype '{}' is not a safetensors dtype (expected one of {}; names are "
                    "case-sensitive)",
                    printable(name), closed_list());
}

Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> bytes,
                                                   std::string_view file) {
  if (bytes.size() < 8) {
    return make_error(ErrorCode::kFormat,
                      "{}: file has {} bytes, fewer than the 8-byte header length field (empty or "
                      "truncated file?)",
                      file, bytes.size());
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kSafetensorsMaxHeaderBytes) {
    return make_error(
        ErrorCode::kFormat,
        "{}: header length {} exceeds the limit of {} bytes (corrupt length field, or "
        "not a safetensors file?)",
        file, n, kSafetensorsMaxHeaderBytes);
  }
  if (n > bytes.size() - 8) {
    return make_error(ErrorCode::kFormat,
                      "{}: header length {} runs past the end of the file ({} bytes; truncated "
                      "download?)",
                      file, n, bytes.size());
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  if (text.empty() || text[0] != '{') {
    return make_error(ErrorCode::kFormat,
                      "{}: header starts with '{}' but a safetensors header is a JSON object "
                      "starting with '{{' (not a safetensors file?)",
                      file, printable(text.substr(0, 8)));
  }
  QF_ASSIGN_OR_RETURN(nlohmann::json doc, io_detail::parse_json_strict(text, file));
  // Padding after the closing brace: spaces only, as the format specifies (parse_json_strict has
  // already refused NUL bytes, which nlohmann's lexer would take for the end of the text).
  const size_t close = text.find_last_not_of(' ');
  if (close == std::string_view::npos || text[close] != '}') {
    return make_error(ErrorCode::kFormat,
                      "{}: the {}-byte header does not end with '}}' followed only by space "
                      "padding (byte {} is '{}'; NUL-padded or corrupt header?)",
                      file, n, close == std::string_view::npos ? 0 : close,
                      printable(close == std::string_view::npos ? text : text.substr(close, 8)));
  }
  if (!doc.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: header is a JSON {}, expected an object", file,
                      io_detail::json_type_name(doc));
  }
  SafetensorsHeader header;
  header.header_bytes = n;
  header.data_offset = 8 + n;
  header.tensors.reserve(doc.size());
  for (const auto& [key, value] : doc.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        return make_error(ErrorCode::kFormat,
                          "{}: __metadata__ is a JSON {}, expected an object of strings", file,
                          io_detail::json_type_name(value));
      }
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return make_error(ErrorCode::kFormat,
                            "{}: __metadata__ entry '{}' is a JSON {}, expected a string", file,
                            printable(mk), io_detail::json_type_name(mv));
        }
        header.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    QF_ASSIGN_OR_RETURN(SafetensorsTensorInfo info, parse_tensor_entry(key, value, file));
    header.tensors.push_back(std::move(info));
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorsTensorInfo& a, const SafetensorsTensorInfo& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  // Tensors must tile the data section exactly: [0, e0), [e0, e1), ... up to the file end.
  const uint64_t data_bytes = bytes.size() - header.data_offset;
  uint64_t expected_begin = 0;
  const SafetensorsTensorInfo* previous = nullptr;
  for (const auto& t : header.tensors) {
    if (t.begin != expected_begin) {
      const std::string prev = previous ? fmt::format("the previous tensor '{}' ends at {}",
                                                      printable(previous->name), expected_begin)
                                        : std::string("the data section starts at 0");
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' data_offsets begin at {} but {} ({}; tensors must be "
                        "contiguous with no gaps or overlaps)",
                        file, printable(t.name), t.begin, prev,
                        t.begin > expected_begin ? "a gap" : "an overlap");
    }
    if (t.end > data_bytes) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' ends at data offset {} but the data section has {} bytes "
                        "(file {} bytes; truncated download?)",
                        file, printable(t.name), t.end, data_bytes, bytes.size());
    }
    expected_begin = t.end;
    previous = &t;
  }
  if (expected_begin != data_bytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: the tensors cover {} bytes of data but the file has {} data bytes after "
                      "the header ({} trailing bytes; expected the last tensor to end the file)",
                      file, expected_begin, data_bytes, data_bytes - expected_begin);
  }
  return header;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile mapped, MmapFile::open(path));
  SafetensorsFile out;
  out.path_ = path.string();
  out.file_ = std::make_shared<const MmapFile>(std::move(mapped));
  QF_ASSIGN_OR_RETURN(out.header_, parse_safetensors_header(out.file_->bytes(), out.path_));
  const auto& tensors = out.header_.tensors;
  out.by_name_.resize(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) out.by_name_[i] = static_cast<uint32_t>(i);
  std::sort(out.by_name_.begin(), out.by_name_.end(),
            [&](uint32_t a, uint32_t b) { return tensors[a].name < tensors[b].name; });
  return out;
}

const SafetensorsTensorInfo* SafetensorsFile::find(std::string_view name) const {
  // Binary search over the names (a linear scan per lookup made loading n tensors O(n^2)).
  const auto& tensors = header_.tensors;
  const auto it = std::lower_bound(
      by_name_.begin(), by_name_.end(), name,
      [&](uint32_t i, std::string_view n) { return std::string_view(tensors[i].name) < n; });
  if (it != by_name_.end() && tensors[*it].name == name) return &tensors[*it];
  return nullptr;
}

std::span<const std::byte> SafetensorsFile::tensor_bytes(const SafetensorsTensorInfo& info) const {
  return file_->bytes().subspan(header_.data_offset + info.begin, info.end - info.begin);
}

Result<TensorView> SafetensorsFile::view(const SafetensorsTensorInfo& info) const {
  return TensorView::from_bytes(tensor_bytes(info), info.dtype, info.shape);
}

Result<TensorView> SafetensorsFile::view(std::string_view name) const {
  const SafetensorsTensorInfo* info = find(name);
  if (info == nullptr) {
    return make_error(ErrorCode::kNotFound, "{}: no tensor named '{}' ({} tensors in the file)",
                      path_, printable(name, 200), header_.tensors.size());
  }
  return view(*info);
}

}  // namespace qforge
