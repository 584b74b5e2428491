// safetensors reader: header parsing and validation (the rules of the reference library's
// Metadata::validate plus a closed dtype list, bounded JSON depth and duplicate-key rejection),
// and zero-copy tensor views into a memory-mapped file.
#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// The fields of a tensor entry in its plain form: {"dtype": "X", "shape": [n, ...],
// "data_offsets": [b, e]} with unsigned integers, each field once, nothing else.
struct PlainEntry {
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
};

// The tensor a plain entry describes when it is valid; nullopt for anything parse_tensor_entry
// would refuse (the caller then runs it for its exact message).
std::optional<SafetensorsTensorInfo> valid_plain_entry(const std::string& name,
                                                       const PlainEntry& e) {
  if (!e.has_dtype || !e.has_shape || !e.has_offsets) return std::nullopt;
  auto dtype = parse_safetensors_dtype(e.dtype);
  if (!dtype.ok() || e.shape.size() > static_cast<size_t>(kMaxDims) || e.offsets.size() != 2) {
    return std::nullopt;
  }
  std::array<int64_t, kMaxDims> dims{};
  for (size_t i = 0; i < e.shape.size(); ++i) {
    if (e.shape[i] > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    dims[i] = static_cast<int64_t>(e.shape[i]);
  }
  auto shape = Shape::from({dims.data(), e.shape.size()});
  if (!shape.ok() || e.offsets[0] > e.offsets[1]) return std::nullopt;
  auto nbytes = dtype_storage_bytes(*dtype, shape->numel());
  if (!nbytes.ok() || e.offsets[1] - e.offsets[0] != *nbytes) return std::nullopt;
  SafetensorsTensorInfo info;
  info.name = name;
  info.dtype = *dtype;
  info.shape = *shape;
  info.begin = e.offsets[0];
  info.end = e.offsets[1];
  return info;
}

// Streams the header's top-level members without building its DOM (10^6 tensors as one
// nlohmann object cost ~5 s, mostly allocation of a million-node map). A tensor entry in the
// plain form is read field by field into a reused PlainEntry and handed to on_plain; any other
// member (__metadata__, extra or repeated fields, signed or float numbers, wrong types) is
// rebuilt as a DOM of its own by a StrictDomBuilder (replaying what the plain reading had
// consumed) and handed to on_member, so its validation and messages are parse_tensor_entry's.
// Top-level duplicate names are left to the caller (it sorts the names anyway).
class TopLevelMembers final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;
  using OnMember = std::function<Status(const std::string& key, const json& value)>;
  using OnPlain = std::function<Status(const std::string& key, const PlainEntry& entry)>;

  TopLevelMembers(OnPlain on_plain, OnMember on_member)
      : on_plain_(std::move(on_plain)), on_member_(std::move(on_member)) {}

  bool null() override {
    return event([](auto& b) { return b.null(); }, 0);
  }
  bool boolean(bool v) override {
    return event([v](auto& b) { return b.boolean(v); }, 0);
  }
  bool number_integer(number_integer_t v) override {
    return event([v](auto& b) { return b.number_integer(v); }, 0);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (plain_ && array_ != Field::kNone) {
      (array_ == Field::kShape ? entry_.shape : entry_.offsets).push_back(v);
      return true;
    }
    return event([v](auto& b) { return b.number_unsigned(v); }, 0);
  }
  bool number_float(number_float_t v, const string_t& t) override {
    return event([&](auto& b) { return b.number_float(v, t); }, 0);
  }
  bool string(string_t& v) override {
    if (plain_ && pending_ == Field::kDtype) {
      entry_.dtype = std::move(v);
      seen_[index(Field::kDtype)] = true;
      pending_ = Field::kNone;
      return true;
    }
    return event([&](auto& b) { return b.string(v); }, 0);
  }
  bool binary(binary_t& v) override {
    return event([&](auto& b) { return b.binary(v); }, 0);
  }
  bool start_object(std::size_t n) override {
    if (!in_root_) return in_root_ = true;  // the header object itself
    if (depth_ == 0 && key_ != "__metadata__") {
      plain_ = true;
      depth_ = 1;
      pending_ = array_ = Field::kNone;
      seen_ = {};
      entry_.shape.clear();
      entry_.offsets.clear();
      return true;
    }
    return event([n](auto& b) { return b.start_object(n); }, +1);
  }
  bool end_object() override {
    if (depth_ == 0) return true;  // the header object ends
    if (plain_ && pending_ == Field::kNone && array_ == Field::kNone) {
      plain_ = false;
      depth_ = 0;
      entry_.has_dtype = seen_[index(Field::kDtype)];
      entry_.has_shape = seen_[index(Field::kShape)];
      entry_.has_offsets = seen_[index(Field::kOffsets)];
      return done(on_plain_(key_, entry_));
    }
    return event([](auto& b) { return b.end_object(); }, -1);
  }
  bool start_array(std::size_t n) override {
    if (plain_ && (pending_ == Field::kShape || pending_ == Field::kOffsets)) {
      array_ = pending_;
      pending_ = Field::kNone;
      depth_ = 2;
      return true;
    }
    return event([n](auto& b) { return b.start_array(n); }, +1);
  }
  bool end_array() override {
    if (plain_ && array_ != Field::kNone) {
      seen_[index(array_)] = true;
      array_ = Field::kNone;
      depth_ = 1;
      return true;
    }
    return event([](auto& b) { return b.end_array(); }, -1);
  }
  bool key(string_t& k) override {
    if (depth_ == 0) {
      key_ = std::move(k);
      return true;
    }
    if (plain_ && pending_ == Field::kNone && array_ == Field::kNone) {
      const Field f = field_of(k);
      if (f != Field::kNone && !seen_[index(f)]) {
        pending_ = f;
        return true;
      }
    }
    if (plain_) leave_plain();
    return value_->key(k);
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) override {
    syntax_error_ = e.what();
    return false;
  }

  // What stopped the parse: a member's own error, a duplicate key inside a member, or syntax.
  const std::optional<Error>& member_error() const { return member_error_; }
  const std::string& duplicate() const { return duplicate_; }
  const std::string& syntax_error() const { return syntax_error_; }

 private:
  enum class Field { kNone, kDtype, kShape, kOffsets };
  static constexpr const char* kFieldNames[] = {"", "dtype", "shape", "data_offsets"};
  static size_t index(Field f) { return static_cast<size_t>(f); }
  static Field field_of(const std::string& k) {
    for (size_t i = 1; i < 4; ++i) {
      if (k == kFieldNames[i]) return static_cast<Field>(i);
    }
    return Field::kNone;
  }

  // The plain reading cannot go on: hand what it consumed to a fresh DOM builder as the events
  // it stood for, then continue there.
  void leave_plain() {
    value_.emplace();
    value_->start_object(3);
    const auto array_of = [this](Field f) -> std::vector<uint64_t>& {
      return f == Field::kShape ? entry_.shape : entry_.offsets;
    };
    // The complete fields first, then the one being read: its key (its value comes next), or
    // its key and the array so far.
    for (Field f : {Field::kDtype, Field::kShape, Field::kOffsets}) {
      if (!seen_[index(f)]) continue;
      std::string name = kFieldNames[index(f)];
      value_->key(name);
      if (f == Field::kDtype) {
        value_->string(entry_.dtype);
        continue;
      }
      value_->start_array(array_of(f).size());
      for (uint64_t x : array_of(f)) value_->number_unsigned(x);
      value_->end_array();
    }
    const Field open = pending_ != Field::kNone ? pending_ : array_;
    if (open != Field::kNone) {
      std::string name = kFieldNames[index(open)];
      value_->key(name);
    }
    if (array_ != Field::kNone) {
      value_->start_array(array_of(array_).size());
      for (uint64_t x : array_of(array_)) value_->number_unsigned(x);
    }
    depth_ = array_ != Field::kNone ? 2 : 1;
    plain_ = false;
    pending_ = array_ = Field::kNone;
  }

  // Feeds one event to the member being built as a DOM (started by the first event after its
  // key); `nesting` is +1 for a container opening, -1 for one closing. When the member's value
  // is complete it goes to on_member_.
  template <class Event>
  bool event(const Event& e, int nesting) {
    if (plain_) leave_plain();
    if (depth_ == 0) value_.emplace();
    if (!e(*value_)) {
      duplicate_ = value_->duplicate();
      return false;
    }
    depth_ += nesting;
    if (depth_ > 0) return true;
    Status st = on_member_(key_, value_->root());
    value_.reset();
    return done(std::move(st));
  }

  bool done(Status st) {
    if (st.ok()) return true;
    member_error_ = std::move(st).error();
    return false;
  }

  OnPlain on_plain_;
  OnMember on_member_;
  bool in_root_ = false;
  int depth_ = 0;  // nesting inside the current member's value
  std::string key_;
  // The plain reading of a tensor entry: on while every event fits the plain form.
  bool plain_ = false;
  Field pending_ = Field::kNone;  // a field's key read, its value not yet
  Field array_ = Field::kNone;    // inside this field's array
  std::array<bool, 4> seen_{};
  PlainEntry entry_;
  std::optional<io_detail::StrictDomBuilder> value_;
  std::optional<Error> member_error_;
  std::string duplicate_;
  std::string syntax_error_;
};

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
  QF_TRY(io_detail::check_json_text(text, file));
  SafetensorsHeader header;
  header.header_bytes = n;
  header.data_offset = 8 + n;
  // An entry takes at least ~50 bytes of header ({"a":{"dtype":"U8","shape":[],...}}), so this
  // bounds the tensor count and the vector never reallocates (a million moves of ~100 bytes).
  header.tensors.reserve(n / 48 + 1);
  bool seen_metadata = false;
  const auto on_plain = [&](const std::string& key, const PlainEntry& e) -> Status {
    if (auto info = valid_plain_entry(key, e)) {
      header.tensors.push_back(std::move(*info));
      return ok_status();
    }
    // Invalid: the DOM form of the same entry, for parse_tensor_entry's message.
    nlohmann::json dom = nlohmann::json::object();
    if (e.has_dtype) dom["dtype"] = e.dtype;
    if (e.has_shape) dom["shape"] = e.shape;
    if (e.has_offsets) dom["data_offsets"] = e.offsets;
    QF_ASSIGN_OR_RETURN(SafetensorsTensorInfo info, parse_tensor_entry(key, dom, file));
    header.tensors.push_back(std::move(info));  // not reached: valid_plain_entry agrees
    return ok_status();
  };
  TopLevelMembers members(
      on_plain, [&](const std::string& key, const nlohmann::json& value) -> Status {
        if (key != "__metadata__") {
          QF_ASSIGN_OR_RETURN(SafetensorsTensorInfo info, parse_tensor_entry(key, value, file));
          header.tensors.push_back(std::move(info));
          return ok_status();
        }
        if (seen_metadata) return io_detail::duplicate_key_error(file, key);
        seen_metadata = true;
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
        return ok_status();
      });
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &members);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kFormat, "{}: malformed JSON: {}", file, e.what());
  }
  if (members.member_error()) return *members.member_error();
  if (!members.duplicate().empty())
    return io_detail::duplicate_key_error(file, members.duplicate());
  if (!parsed) {
    return make_error(ErrorCode::kFormat, "{}: malformed JSON: {}", file,
                      members.syntax_error().empty() ? "parse stopped" : members.syntax_error());
  }
  // Padding after the closing brace: spaces only, as the format specifies (check_json_text has
  // refused NUL bytes, which nlohmann's lexer would take for the end of the text).
  const size_t close = text.find_last_not_of(' ');
  if (close == std::string_view::npos || text[close] != '}') {
    return make_error(ErrorCode::kFormat,
                      "{}: the {}-byte header does not end with '}}' followed only by space "
                      "padding (byte {} is '{}'; NUL-padded or corrupt header?)",
                      file, n, close == std::string_view::npos ? 0 : close,
                      printable(close == std::string_view::npos ? text : text.substr(close, 8)));
  }
  {
    // Duplicate tensor names (the streaming parse keeps no map of them): sorted by hash, so
    // the sort compares integers and only equal hashes compare names.
    std::vector<std::pair<size_t, uint32_t>> hashed(header.tensors.size());
    for (size_t i = 0; i < hashed.size(); ++i) {
      hashed[i] = {std::hash<std::string_view>{}(header.tensors[i].name), static_cast<uint32_t>(i)};
    }
    std::sort(hashed.begin(), hashed.end());
    for (size_t i = 0; i < hashed.size();) {
      size_t j = i + 1;
      while (j < hashed.size() && hashed[j].first == hashed[i].first) ++j;
      for (size_t a = i; a < j; ++a) {
        for (size_t b = a + 1; b < j; ++b) {
          const std::string& name = header.tensors[hashed[a].second].name;
          if (name == header.tensors[hashed[b].second].name) {
            return io_detail::duplicate_key_error(file, name);
          }
        }
      }
      i = j;
    }
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
