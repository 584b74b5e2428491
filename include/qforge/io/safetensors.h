// safetensors (github.com/huggingface/safetensors): an 8-byte little-endian header length N, an
// N-byte JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {str: str}}, then the tensor bytes. Reader (zero-copy mmap views, strict validation of hostile
// files) and writer (byte layout identical to the reference library's serialize()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/tensor.h"

namespace qforge {

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  // data_offsets: [begin, end) relative to the first byte after the header.
  uint64_t begin = 0;
  uint64_t end = 0;
};

// The safetensors dtype spelling for a qforge dtype ("BF16", "F8_E4M3", ...), or an error for
// dtypes the format cannot hold (F8_E4M3FNUZ, I4, ...).
Result<std::string_view> safetensors_dtype_name(DType dtype);
// The closed list of dtypes qforge reads: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 F8_E8M0 I64 I32 I16
// I8 U8 BOOL. Other names are an error naming the tensor and the dtype.
Result<DType> parse_safetensors_dtype(std::string_view name);

// A parsed header: tensors sorted by data offset, the free-form metadata, and where the data
// section starts (8 + header length).
struct SafetensorsHeader {
  std::vector<SafetensorsTensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t header_bytes = 0;  // N, the JSON length including padding
  uint64_t data_offset = 0;   // 8 + N
};

// Parses and validates the header of a complete file held in `bytes` (so that offsets can be
// checked against the real size): N <= 100,000,000 and inside the file, JSON starting with '{',
// nesting depth bounded, no duplicate names, dtype from the closed list, <= 8 non-negative dims,
// byte size == numel x dtype size (overflow-checked), tensors contiguous from offset 0 with no
// gaps or overlaps, and the last tensor ending exactly at the end of the file. `file` names the
// file in every error.
Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> bytes,
                                                   std::string_view file);

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`.
  static Result<SafetensorsFile> open(const std::filesystem::path& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  uint64_t header_bytes() const { return header_.header_bytes; }
  uint64_t data_offset() const { return header_.data_offset; }
  uint64_t file_bytes() const { return file_->size(); }

  const SafetensorsTensorInfo* find(std::string_view name) const;
  // Zero-copy read-only view into the mmap; keep keep_alive() while using it.
  Result<TensorView> view(std::string_view name) const;
  Result<TensorView> view(const SafetensorsTensorInfo& info) const;
  std::span<const std::byte> tensor_bytes(const SafetensorsTensorInfo& info) const;
  std::shared_ptr<const void> keep_alive() const { return file_; }

 private:
  std::shared_ptr<const MmapFile> file_;
  SafetensorsHeader header_;
  std::string path_;
  std::vector<uint32_t> by_name_;  // indices of header_.tensors sorted by name (find: log n)
};

// Collects tensors and metadata and writes them in the reference library's layout: tensors
// sorted by dtype (descending, in the reference's Dtype order: F64/I64 ... BF16/F16 ... I8/U8,
// BOOL) then by name, data_offsets packed from 0, compact JSON with "__metadata__" first and each
// entry as {"dtype","shape","data_offsets"}, the header padded with spaces to a multiple of 8.
class SafetensorsWriter {
 public:
  // Copies `bytes` (exactly numel x dtype size) into the writer.
  Status add(std::string name, DType dtype, const Shape& shape, std::span<const std::byte> bytes);
  // Copies a view's elements (strided views are gathered).
  Status add(std::string name, const TensorView& view);
  // Records `bytes` without copying: they must stay valid until write()/serialize() returns.
  Status add_borrowed(std::string name, DType dtype, const Shape& shape,
                      std::span<const std::byte> bytes);
  void set_metadata(std::string key, std::string value) {
    metadata_[std::move(key)] = std::move(value);
  }

  size_t size() const { return entries_.size(); }
  // The header JSON (with padding) the file will get.
  Result<std::string> header_json() const;
  // The whole file in memory.
  Result<std::vector<std::byte>> serialize() const;
  // Writes through AtomicFileWriter: `path` holds the old contents or the whole new file.
  Status write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::span<const std::byte> bytes;
    std::shared_ptr<std::vector<std::byte>> owned;  // null for borrowed bytes
  };
  Status check_new(const std::string& name, DType dtype, const Shape& shape, size_t n) const;
  std::vector<const Entry*> ordered() const;

  std::vector<Entry> entries_;
  std::set<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace qforge
