// Streaming writer of the engine container: a safetensors file whose data section starts at a
// 64-byte boundary and whose every tensor starts on one (filler tensors "qforge.pad.N" close the
// gaps, since safetensors allows none), with a checksum of each tensor and of the header in the
// metadata. Tensors are appended one at a time to a scratch file beside the output (peak memory:
// the tensor being added); commit() writes the header, copies the scratch data after it through
// AtomicFileWriter and renames the result into place. Nothing is left behind on error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/core/tensor.h"

namespace qforge::engine_detail {

inline constexpr uint64_t kEngineAlignment = 64;
inline constexpr const char* kPadPrefix = "qforge.pad.";
inline constexpr const char* kChecksumsKey = "qforge.checksums";
inline constexpr const char* kHeaderChecksumKey = "qforge.header_checksum";

class EngineFileWriter {
 public:
  static Result<EngineFileWriter> create(const std::filesystem::path& output);
  EngineFileWriter(EngineFileWriter&& other) noexcept;
  EngineFileWriter& operator=(EngineFileWriter&&) = delete;
  EngineFileWriter(const EngineFileWriter&) = delete;
  ~EngineFileWriter();

  // Appends one tensor (bytes = numel x dtype size). Names must be unique.
  Status add(const std::string& name, DType dtype, const Shape& shape,
             std::span<const std::byte> bytes);
  void set_metadata(const std::string& key, std::string value) {
    metadata_[key] = std::move(value);
  }
  uint64_t data_bytes() const { return data_bytes_; }
  // Writes the file; returns its size.
  Result<uint64_t> commit();

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
    uint64_t checksum;
  };
  EngineFileWriter() = default;
  Status append_raw(std::span<const std::byte> bytes);

  std::filesystem::path output_;
  std::filesystem::path scratch_;
  int fd_ = -1;
  uint64_t data_bytes_ = 0;
  int pads_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The string the header checksum covers: every metadata entry but the header checksum itself
// (sorted by key) and every tensor's name, dtype, shape and offsets (in offset order).
struct HeaderTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};
std::string canonical_header(const std::map<std::string, std::string>& metadata,
                             const std::vector<HeaderTensor>& tensors);

}  // namespace qforge::engine_detail
