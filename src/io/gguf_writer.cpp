// GGUF v3 writer: header, metadata in insertion order, tensor infos, then tensor data with each
// tensor starting (and the data section padded) at a multiple of the alignment, as ggml's
// gguf_write_to_buf lays it out.
#include <cstring>

#include "qforge/core/mmap_file.h"
#include "qforge/io/gguf.h"

namespace qforge {
namespace {

class Buffer {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_bytes(const void* data, size_t n) {
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    put_bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment);
  }
  size_t size() const { return out_.size(); }
  std::vector<std::byte>& bytes() { return out_; }

 private:
  std::vector<std::byte> out_;
};

void put_value(Buffer& b, const GgufValue& v) {
  if (v.type() == GgufType::STRING) {
    b.put_string(*v.as_string());
  } else if (v.is_array()) {
    b.put<uint32_t>(static_cast<uint32_t>(v.array_type()));
    b.put<uint64_t>(v.array_size());
    if (const auto* strings = v.as_string_array()) {
      for (const auto& s : *strings) b.put_string(s);
    } else {
      b.put_bytes(v.raw_array_bytes().data(), v.raw_array_bytes().size());
    }
  } else {
    b.put_bytes(v.raw_scalar_bytes().data(), v.raw_scalar_bytes().size());
  }
}

}  // namespace

Status GgufWriter::set(std::string key, GgufValue value) {
  if (key == "general.alignment") {
    const auto a = value.as_uint();
    if (value.type() != GgufType::UINT32 || !a || *a != alignment_) {
      return make_error(ErrorCode::kInvalidArgument,
                        "GgufWriter: general.alignment must be a uint32 equal to the writer's "
                        "alignment {} (got {}); pass the alignment to the constructor",
                        alignment_, value.to_string());
    }
  }
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return ok_status();
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
  return ok_status();
}

Status GgufWriter::add_tensor(std::string name, uint32_t type, const Shape& shape,
                              std::span<const std::byte> bytes) {
  const GgmlTypeInfo* info = gguf_tensor_type_info(type);
  if (info == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "GgufWriter: unknown ggml type {} for '{}'",
                      type, name);
  }
  if (shape.ndim() > static_cast<int>(kGgufMaxDims)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GgufWriter: tensor '{}' {} has more than {} dims", name, shape,
                      kGgufMaxDims);
  }
  const int64_t row = shape.ndim() == 0 ? 1 : shape[shape.ndim() - 1];
  if (row % info->block_size != 0 ||
      bytes.size() != static_cast<uint64_t>(shape.numel() / info->block_size) * info->type_size) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GgufWriter: tensor '{}' {} of type {} needs rows divisible by {} and {} "
                      "bytes; got {} bytes",
                      name, shape, info->name, info->block_size,
                      shape.numel() / info->block_size * info->type_size, bytes.size());
  }
  for (const auto& t : tensors_) {
    if (t.name == name) {
      return make_error(ErrorCode::kInvalidArgument, "GgufWriter: tensor '{}' added twice", name);
    }
  }
  tensors_.push_back({std::move(name), type, shape, {bytes.begin(), bytes.end()}});
  return ok_status();
}

Result<std::vector<std::byte>> GgufWriter::serialize() const {
  bool has_alignment = false;
  for (const auto& [k, v] : kv_) has_alignment = has_alignment || k == "general.alignment";
  const bool add_alignment = !has_alignment && alignment_ != kGgufDefaultAlignment;
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > UINT32_MAX) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GgufWriter: alignment {} is not a power of two that fits uint32",
                      alignment_);
  }
  Buffer b;
  b.put<uint32_t>(kGgufMagic);
  b.put<uint32_t>(3);
  b.put<uint64_t>(tensors_.size());
  b.put<uint64_t>(kv_.size() + (add_alignment ? 1 : 0));
  if (add_alignment) {
    b.put_string("general.alignment");
    b.put<uint32_t>(static_cast<uint32_t>(GgufType::UINT32));
    b.put<uint32_t>(static_cast<uint32_t>(alignment_));
  }
  for (const auto& [k, v] : kv_) {
    b.put_string(k);
    b.put<uint32_t>(static_cast<uint32_t>(v.type()));
    put_value(b, v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    b.put_string(t.name);
    b.put<uint32_t>(static_cast<uint32_t>(t.shape.ndim()));
    for (int d = t.shape.ndim() - 1; d >= 0; --d) b.put<uint64_t>(t.shape[d]);
    b.put<uint32_t>(t.type);
    b.put<uint64_t>(offset);
    offset += (t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  b.pad_to(alignment_);
  for (const auto& t : tensors_) {
    b.put_bytes(t.bytes.data(), t.bytes.size());
    b.pad_to(alignment_);
  }
  return std::move(b.bytes());
}

Status GgufWriter::write(const std::filesystem::path& path) const {
  QF_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, serialize());
  return write_file_atomic(path, bytes);
}

}  // namespace qforge
