// safetensors writer. Layout rules copied from the reference library's prepare()/serialize()
// (huggingface/safetensors, safetensors/src/tensor.rs): sort by Dtype descending (its enum order
// below) then by name, pack data_offsets from 0, compact JSON with "__metadata__" first, pad the
// header with spaces to a multiple of 8 so the data section (and every F32/F64 tensor written
// first) is 8-byte aligned.
#include <algorithm>
#include <cstring>

#include "io/io_util.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

// Position of a dtype in the reference library's `enum Dtype` (BOOL, F4, F6_E2M3, F6_E3M2, U8,
// I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64), which
// derives Ord; prepare() sorts by it descending.
int reference_rank(DType dtype) {
  switch (dtype) {
    case DType::BOOL:
      return 0;
    case DType::U8:
      return 4;
    case DType::I8:
      return 5;
    case DType::F8_E5M2:
      return 6;
    case DType::F8_E4M3FN:
      return 7;
    case DType::E8M0:
      return 8;
    case DType::I16:
      return 9;
    case DType::F16:
      return 11;
    case DType::BF16:
      return 12;
    case DType::I32:
      return 13;
    case DType::F32:
      return 15;
    case DType::F64:
      return 17;
    case DType::I64:
      return 18;
    default:
      return -1;  // not writable; rejected by add()
  }
}

// serde_json's string escaping, which nlohmann's dump() matches for valid UTF-8: ", \ and control
// characters escaped (\b \f \n \r \t, others \u00xx), everything else verbatim.
Result<std::string> json_string(const std::string& s, std::string_view what) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      "SafetensorsWriter: {} '{}' is not valid UTF-8 ({})", what,
                      io_detail::printable(s), e.what());
  }
}

}  // namespace

Status SafetensorsWriter::check_new(const std::string& name, DType dtype, const Shape& shape,
                                    size_t n) const {
  if (name == "__metadata__") {
    return make_error(ErrorCode::kInvalidArgument,
                      "SafetensorsWriter: '__metadata__' is reserved and cannot name a tensor");
  }
  QF_TRY(json_string(name, "tensor name"));
  if (names_.count(name) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "SafetensorsWriter: tensor '{}' was added twice (names must be unique)",
                      name);
  }
  QF_TRY(safetensors_dtype_name(dtype));
  QF_ASSIGN_OR_RETURN(uint64_t need, dtype_storage_bytes(dtype, shape.numel()));
  if (need != n) {
    return make_error(ErrorCode::kInvalidArgument,
                      "SafetensorsWriter: tensor '{}' {}{} needs {} bytes but {} were given", name,
                      dtype, shape, need, n);
  }
  return ok_status();
}

Status SafetensorsWriter::add(std::string name, DType dtype, const Shape& shape,
                              std::span<const std::byte> bytes) {
  QF_TRY(check_new(name, dtype, shape, bytes.size()));
  auto owned = std::make_shared<std::vector<std::byte>>(bytes.begin(), bytes.end());
  std::span<const std::byte> view(owned->data(), owned->size());
  names_.insert(name);
  entries_.push_back({std::move(name), dtype, shape, view, std::move(owned)});
  return ok_status();
}

Status SafetensorsWriter::add(std::string name, const TensorView& view) {
  if (view.is_contiguous()) return add(std::move(name), view.dtype(), view.shape(), view.bytes());
  QF_ASSIGN_OR_RETURN(Tensor copy, Tensor::copy_of(view));
  return add(std::move(name), copy.dtype(), copy.shape(), copy.view().bytes());
}

Status SafetensorsWriter::add_borrowed(std::string name, DType dtype, const Shape& shape,
                                       std::span<const std::byte> bytes) {
  QF_TRY(check_new(name, dtype, shape, bytes.size()));
  names_.insert(name);
  entries_.push_back({std::move(name), dtype, shape, bytes, nullptr});
  return ok_status();
}

std::vector<const SafetensorsWriter::Entry*> SafetensorsWriter::ordered() const {
  std::vector<const Entry*> out;
  for (const auto& e : entries_) out.push_back(&e);
  std::sort(out.begin(), out.end(), [](const Entry* a, const Entry* b) {
    const int ra = reference_rank(a->dtype);
    const int rb = reference_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;  // std::string < is bytewise, as Rust's
  });
  return out;
}

Result<std::string> SafetensorsWriter::header_json() const {
  std::string json = "{";
  bool first = true;
  if (!metadata_.empty()) {
    // The reference keeps metadata in a HashMap (unspecified order); qforge sorts the keys.
    json += "\"__metadata__\":{";
    bool first_meta = true;
    for (const auto& [k, v] : metadata_) {
      QF_ASSIGN_OR_RETURN(std::string key, json_string(k, "metadata key"));
      QF_ASSIGN_OR_RETURN(std::string value, json_string(v, "metadata value"));
      if (!first_meta) json += ',';
      json += key;
      json += ':';
      json += value;
      first_meta = false;
    }
    json += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const Entry* e : ordered()) {
    QF_ASSIGN_OR_RETURN(std::string name, json_string(e->name, "tensor name"));
    QF_ASSIGN_OR_RETURN(std::string_view dtype, safetensors_dtype_name(e->dtype));
    std::string shape;
    for (int64_t d : e->shape) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    json += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                        first ? "" : ",", name, dtype, shape, offset, offset + e->bytes.size());
    offset += e->bytes.size();
    first = false;
  }
  json += "}";
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kSafetensorsMaxHeaderBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "SafetensorsWriter: header of {} bytes exceeds the format's {} byte limit "
                      "(too many tensors for one file; shard the checkpoint)",
                      json.size(), kSafetensorsMaxHeaderBytes);
  }
  return json;
}

Result<std::vector<std::byte>> SafetensorsWriter::serialize() const {
  QF_ASSIGN_OR_RETURN(std::string header, header_json());
  std::vector<std::byte> out(8);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  const auto* h = reinterpret_cast<const std::byte*>(header.data());
  out.insert(out.end(), h, h + header.size());
  for (const Entry* e : ordered()) out.insert(out.end(), e->bytes.begin(), e->bytes.end());
  return out;
}

Status SafetensorsWriter::write(const std::filesystem::path& path) const {
  QF_ASSIGN_OR_RETURN(std::string header, header_json());
  QF_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::create(path));
  const uint64_t n = header.size();
  std::byte length[8];
  std::memcpy(length, &n, 8);
  // On any failure `out` is destroyed uncommitted, which removes the temp file.
  QF_TRY(out.write(std::span<const std::byte>(length, 8))
             .context(fmt::format("writing {}", path.string())));
  QF_TRY(out.write(std::string_view(header)).context(fmt::format("writing {}", path.string())));
  for (const Entry* e : ordered()) {
    QF_TRY(out.write(e->bytes).context(
        fmt::format("writing tensor '{}' to {}", e->name, path.string())));
  }
  return out.commit();
}

}  // namespace qforge
