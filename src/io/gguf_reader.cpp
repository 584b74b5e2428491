// GGUF v2/v3 reader. Hostile-input rules (after CVEs in other GGUF readers): every count and
// length is checked against its cap and against the bytes left in the file before anything is
// allocated; all size arithmetic is overflow-checked; array element types are checked before
// use; general.alignment must be a power of two; every tensor lies inside the data section.
#include <algorithm>
#include <cstring>

#include "io/io_util.h"
#include "qforge/core/mmap_file.h"
#include "qforge/io/gguf.h"

namespace qforge {
namespace {

using io_detail::ByteReader;
using io_detail::printable;

Result<std::string> read_string(ByteReader& r, const std::string& field) {
  QF_ASSIGN_OR_RETURN(uint64_t n, r.read<uint64_t>(field + " length"));
  if (n > kGgufMaxStringBytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} has length {} at offset {}, over the {} byte limit for GGUF strings "
                      "(corrupt file?)",
                      r.file(), field, n, r.pos() - 8, kGgufMaxStringBytes);
  }
  QF_ASSIGN_OR_RETURN(auto bytes, r.take(n, field));
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Result<GgufType> read_type(ByteReader& r, const std::string& field) {
  QF_ASSIGN_OR_RETURN(uint32_t t, r.read<uint32_t>(field));
  if (t > static_cast<uint32_t>(GgufType::FLOAT64)) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} = {} at offset {} is not a GGUF value type (expected 0..12)",
                      r.file(), field, t, r.pos() - 4);
  }
  return static_cast<GgufType>(t);
}

Status check_bools(std::span<const std::byte> bytes, ByteReader& r, const std::string& field) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    if (b > 1) {
      return make_error(ErrorCode::kFormat, "{}: {} holds bool byte {} (expected 0 or 1)", r.file(),
                        field, b);
    }
  }
  return ok_status();
}

Result<GgufValue> read_value(ByteReader& r, GgufType type, const std::string& field) {
  if (type == GgufType::STRING) {
    QF_ASSIGN_OR_RETURN(std::string s, read_string(r, field));
    return GgufValue::string(std::move(s));
  }
  if (type != GgufType::ARRAY) {
    QF_ASSIGN_OR_RETURN(auto bytes, r.take(gguf_scalar_size(type), field));
    if (type == GgufType::BOOL) QF_TRY(check_bools(bytes, r, field));
    std::vector<uint8_t> raw(bytes.size());
    std::memcpy(raw.data(), bytes.data(), bytes.size());
    GgufValue v = GgufValue::u8(0);
    switch (type) {
      case GgufType::UINT8:
        return GgufValue::u8(raw[0]);
      case GgufType::INT8:
        return GgufValue::i8(static_cast<int8_t>(raw[0]));
      case GgufType::BOOL:
        return GgufValue::boolean(raw[0] != 0);
      default:
        break;
    }
    uint64_t u = 0;
    std::memcpy(&u, raw.data(), raw.size());
    switch (type) {
      case GgufType::UINT16:
        return GgufValue::u16(static_cast<uint16_t>(u));
      case GgufType::INT16:
        return GgufValue::i16(static_cast<int16_t>(u));
      case GgufType::UINT32:
        return GgufValue::u32(static_cast<uint32_t>(u));
      case GgufType::INT32:
        return GgufValue::i32(static_cast<int32_t>(u));
      case GgufType::UINT64:
        return GgufValue::u64(u);
      case GgufType::INT64:
        return GgufValue::i64(static_cast<int64_t>(u));
      case GgufType::FLOAT32: {
        float f;
        std::memcpy(&f, raw.data(), 4);
        return GgufValue::f32(f);
      }
      case GgufType::FLOAT64: {
        double d;
        std::memcpy(&d, raw.data(), 8);
        return GgufValue::f64(d);
      }
      default:
        return v;
    }
  }
  QF_ASSIGN_OR_RETURN(GgufType elem, read_type(r, field + " element type"));
  if (elem == GgufType::ARRAY) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {} is an array of arrays (nested GGUF arrays are not supported)",
                      r.file(), field);
  }
  QF_ASSIGN_OR_RETURN(uint64_t n, r.read<uint64_t>(field + " element count"));
  // Smallest encoding of one element: a string is at least its 8-byte length.
  const uint64_t min_size = elem == GgufType::STRING ? 8 : gguf_scalar_size(elem);
  if (n > kGgufMaxArrayElements || n > r.remaining() / min_size) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} claims {} elements of {} but the limit is {} and only {} bytes "
                      "remain (corrupt count?)",
                      r.file(), field, n, gguf_type_name(elem), kGgufMaxArrayElements,
                      r.remaining());
  }
  if (elem == GgufType::STRING) {
    std::vector<std::string> strings;
    strings.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      QF_ASSIGN_OR_RETURN(std::string s, read_string(r, fmt::format("{}[{}]", field, i)));
      strings.push_back(std::move(s));
    }
    return GgufValue::string_array(std::move(strings));
  }
  QF_ASSIGN_OR_RETURN(auto bytes, r.take(n * min_size, field));
  if (elem == GgufType::BOOL) QF_TRY(check_bools(bytes, r, field));
  std::vector<uint8_t> raw(bytes.size());
  if (!raw.empty()) std::memcpy(raw.data(), bytes.data(), bytes.size());
  return GgufValue::numeric_array(elem, std::move(raw));
}

// Reads a T whose field name is only formatted when the read fails: a GGUF may hold a million
// tensor infos, and formatting "tensor '<name>' ne[1]" for every field was most of their cost.
template <typename T, typename Field>
Result<T> read_lazy(ByteReader& r, const Field& field) {
  if (r.remaining() < sizeof(T)) return r.read<T>(field());
  T v;
  std::memcpy(&v, r.take(sizeof(T), "").value().data(), sizeof(T));
  return v;
}

Status parse_tensor_info(ByteReader& r, uint64_t index, GgufTensorInfo* info) {
  // The name: read directly when its length and bytes are in range; otherwise back to its start
  // and through read_string, whose errors name the field.
  const uint64_t name_at = r.pos();
  bool have_name = false;
  if (r.remaining() >= 8) {
    const uint64_t n = read_lazy<uint64_t>(r, [] { return std::string(); }).value();
    if (n <= kGgufMaxStringBytes && n <= r.remaining()) {
      const auto bytes = r.take(n, "").value();
      info->name.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      have_name = true;
    }
  }
  if (!have_name) {
    QF_TRY(r.seek(name_at, "tensor name"));
    QF_ASSIGN_OR_RETURN(info->name, read_string(r, fmt::format("tensor #{} name", index)));
  }
  const auto where = [&] { return fmt::format("tensor '{}'", printable(info->name)); };
  QF_ASSIGN_OR_RETURN(uint32_t n_dims, read_lazy<uint32_t>(r, [&] { return where() + " n_dims"; }));
  if (n_dims > kGgufMaxDims) {
    return make_error(ErrorCode::kFormat, "{}: {} has n_dims = {} (expected at most {})", r.file(),
                      where(), n_dims, kGgufMaxDims);
  }
  int64_t numel = 1;
  int64_t extent = 1;  // product of max(ne, 1): Shape's invariant, so shape() cannot fail
  info->ne.reserve(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    QF_ASSIGN_OR_RETURN(
        uint64_t ne, read_lazy<uint64_t>(r, [&] { return fmt::format("{} ne[{}]", where(), d); }));
    if (ne > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(extent, std::max<int64_t>(static_cast<int64_t>(ne), 1), &extent)) {
      return make_error(ErrorCode::kFormat,
                        "{}: {} ne[{}] = {} makes the element count overflow 64 bits (corrupt "
                        "shape?)",
                        r.file(), where(), d, ne);
    }
    numel *= static_cast<int64_t>(ne);  // <= extent, cannot overflow
    info->ne.push_back(static_cast<int64_t>(ne));
  }
  QF_ASSIGN_OR_RETURN(info->type, read_lazy<uint32_t>(r, [&] { return where() + " type"; }));
  const GgmlTypeInfo* type = gguf_tensor_type_info(info->type);
  if (type == nullptr) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} has ggml type {} which is unknown or removed (expected e.g. 0 f32, 1 "
                      "f16, 2 q4_0, 3 q4_1, 8 q8_0, 30 bf16)",
                      r.file(), where(), info->type);
  }
  const int64_t row = info->ne.empty() ? 1 : info->ne[0];
  if (row % type->block_size != 0) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} of type {} has rows of {} elements, not a multiple of the block "
                      "size {}",
                      r.file(), where(), type->name, row, type->block_size);
  }
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel / type->block_size), type->type_size,
                             &info->nbytes)) {
    return make_error(ErrorCode::kFormat, "{}: {} byte size overflows 64 bits", r.file(), where());
  }
  QF_ASSIGN_OR_RETURN(info->offset, read_lazy<uint64_t>(r, [&] { return where() + " offset"; }));
  return ok_status();
}

}  // namespace

Shape GgufTensorInfo::shape() const {
  std::vector<int64_t> dims(ne.rbegin(), ne.rend());
  return Shape::from(dims).value();
}

Result<GgufFile> GgufFile::parse(std::span<const std::byte> bytes, std::string file,
                                 std::shared_ptr<const void> keep_alive) {
  GgufFile g;
  g.file_ = std::move(file);
  g.bytes_ = bytes;
  g.keep_alive_ = std::move(keep_alive);
  ByteReader r(bytes, g.file_);
  QF_ASSIGN_OR_RETURN(uint32_t magic, r.read<uint32_t>("magic"));
  if (magic != kGgufMagic) {
    return make_error(ErrorCode::kFormat, "{}: magic is '{}', expected 'GGUF' (not a GGUF file?)",
                      g.file_, printable({reinterpret_cast<const char*>(bytes.data()), 4}));
  }
  QF_ASSIGN_OR_RETURN(g.version_, r.read<uint32_t>("version"));
  if (g.version_ != 2 && g.version_ != 3) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: GGUF version {} is not supported (expected 2 or 3{})", g.file_,
                      g.version_,
                      g.version_ == 1       ? "; v1 used 32-bit counts, re-convert the model"
                      : g.version_ > 0xffff ? "; a big-endian GGUF file?"
                                            : "");
  }
  QF_ASSIGN_OR_RETURN(uint64_t n_tensors, r.read<uint64_t>("tensor_count"));
  QF_ASSIGN_OR_RETURN(uint64_t n_kv, r.read<uint64_t>("metadata_kv_count"));
  // A tensor info takes at least 24 bytes (name length, n_dims, type, offset), a key/value at
  // least 13 (key length, type, one byte of value).
  if (n_tensors > kGgufMaxTensors || n_tensors > r.remaining() / 24) {
    return make_error(ErrorCode::kFormat,
                      "{}: tensor_count = {} exceeds the limit {} or what the {} remaining bytes "
                      "can hold (corrupt header?)",
                      g.file_, n_tensors, kGgufMaxTensors, r.remaining());
  }
  if (n_kv > kGgufMaxKeyValues || n_kv > r.remaining() / 13) {
    return make_error(ErrorCode::kFormat,
                      "{}: metadata_kv_count = {} exceeds the limit {} or what the {} remaining "
                      "bytes can hold (corrupt header?)",
                      g.file_, n_kv, kGgufMaxKeyValues, r.remaining());
  }
  g.kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    QF_ASSIGN_OR_RETURN(std::string key, read_string(r, fmt::format("metadata key #{}", i)));
    const std::string field = fmt::format("metadata '{}'", printable(key));
    if (g.kv_index_.count(key) != 0) {
      return make_error(ErrorCode::kFormat, "{}: {} appears twice (keys must be unique)", g.file_,
                        field);
    }
    QF_ASSIGN_OR_RETURN(GgufType type, read_type(r, field + " type"));
    QF_ASSIGN_OR_RETURN(GgufValue value, read_value(r, type, field));
    g.kv_index_.emplace(key, g.kv_.size());
    g.kv_.emplace_back(std::move(key), std::move(value));
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    const auto v = a->as_uint();
    if (a->type() != GgufType::UINT32 || !v || *v == 0 || (*v & (*v - 1)) != 0) {
      return make_error(ErrorCode::kFormat,
                        "{}: general.alignment = {} ({}) is invalid (expected a uint32 power of "
                        "two, e.g. 32)",
                        g.file_, a->to_string(), gguf_type_name(a->type()));
    }
    g.alignment_ = *v;
  }
  g.tensors_.reserve(n_tensors);
  g.tensor_index_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    QF_TRY(parse_tensor_info(r, i, &info));
    if (g.tensor_index_.count(info.name) != 0) {
      return make_error(ErrorCode::kFormat, "{}: tensor '{}' appears twice (names must be unique)",
                        g.file_, printable(info.name));
    }
    if (info.offset % g.alignment_ != 0) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' offset {} is not a multiple of the alignment {}", g.file_,
                        printable(info.name), info.offset, g.alignment_);
    }
    g.tensor_index_.emplace(info.name, g.tensors_.size());
    g.tensors_.push_back(std::move(info));
  }
  // The data section starts at the next multiple of the alignment.
  g.data_offset_ = (r.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  if (g.tensors_.empty()) return g;
  if (g.data_offset_ > bytes.size()) {
    return make_error(ErrorCode::kFormat,
                      "{}: the data section would start at {} but the file has {} bytes "
                      "(truncated?)",
                      g.file_, g.data_offset_, bytes.size());
  }
  const uint64_t data_bytes = bytes.size() - g.data_offset_;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : g.tensors_) {
    if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' ({} bytes at data offset {}) ends past the data section "
                        "of {} bytes (truncated download?)",
                        g.file_, printable(t.name), t.nbytes, t.offset, data_bytes);
    }
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap in the data section",
                        g.file_, printable(prev->name), prev->offset, prev->offset + prev->nbytes,
                        printable(by_offset[i]->name), by_offset[i]->offset,
                        by_offset[i]->offset + by_offset[i]->nbytes);
    }
  }
  return g;
}

Result<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile mapped, MmapFile::open(path));
  auto shared = std::make_shared<const MmapFile>(std::move(mapped));
  return parse(shared->bytes(), path.string(), shared);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

Result<const GgufValue*> require(const GgufFile& g, std::string_view key) {
  const GgufValue* v = g.find(key);
  if (v == nullptr) {
    return make_error(ErrorCode::kNotFound, "{}: metadata key '{}' is missing", g.path(), key);
  }
  return v;
}

Error mismatch(const GgufFile& g, std::string_view key, const GgufValue& v, const char* expected) {
  const std::string type = v.is_array() ? fmt::format("array of {}", gguf_type_name(v.array_type()))
                                        : gguf_type_name(v.type());
  return make_error(ErrorCode::kFormat, "{}: metadata '{}' = {} has type {}, expected {}", g.path(),
                    key, v.to_string(), type, expected);
}

}  // namespace

Result<std::string> GgufFile::get_string(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (const std::string* s = v->as_string()) return *s;
  return mismatch(*this, key, *v, "string");
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto i = v->as_int()) return *i;
  return mismatch(*this, key, *v, "an integer");
}

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto u = v->as_uint()) return *u;
  return mismatch(*this, key, *v, "a non-negative integer");
}

Result<double> GgufFile::get_float(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto f = v->as_float()) return *f;
  return mismatch(*this, key, *v, "a number");
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto b = v->as_bool()) return *b;
  return mismatch(*this, key, *v, "bool");
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (const auto* a = v->as_string_array()) return *a;
  return mismatch(*this, key, *v, "an array of strings");
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto a = v->as_f32_array()) return std::move(*a);
  return mismatch(*this, key, *v, "an array of float32");
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  QF_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (auto a = v->as_int_array()) return std::move(*a);
  return mismatch(*this, key, *v, "an array of integers");
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return bytes_.subspan(data_offset_ + info.offset, info.nbytes);
}

Result<TensorView> GgufFile::tensor_view(const GgufTensorInfo& info) const {
  DType dtype;
  switch (static_cast<GgmlType>(info.type)) {
    case GgmlType::F32:
      dtype = DType::F32;
      break;
    case GgmlType::F16:
      dtype = DType::F16;
      break;
    case GgmlType::BF16:
      dtype = DType::BF16;
      break;
    default:
      return make_error(ErrorCode::kUnsupported,
                        "{}: tensor '{}' has type {}; only f32/f16/bf16 tensors can be viewed "
                        "without conversion (use tensor_to_f32)",
                        file_, info.name, gguf_tensor_type_info(info.type)->name);
  }
  return TensorView::from_bytes(tensor_bytes(info), dtype, info.shape());
}

Result<Tensor> GgufFile::tensor_to_f32(const GgufTensorInfo& info) const {
  QF_ASSIGN_OR_RETURN(Tensor out, Tensor::empty(DType::F32, info.shape()));
  QF_TRY(gguf_dequantize(info.type, tensor_bytes(info),
                         {out.data_as<float>(), static_cast<size_t>(out.numel())})
             .context(fmt::format("{}: tensor '{}'", file_, info.name)));
  return out;
}

}  // namespace qforge
