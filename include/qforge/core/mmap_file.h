// MmapFile: a read-only memory map of a whole file (move-only, unmapped on destruction), and
// crash-safe writes: write_file_atomic / AtomicFileWriter write "<path>.tmp.<pid>.<n>" in the
// same directory, fsync it and rename it over <path>, so <path> is never seen half-written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

class MmapFile {
 public:
  // Maps `path` read-only (MAP_PRIVATE). An empty file is valid: size() == 0, no mapping.
  // Errors: kNotFound if the file does not exist, kIo for other failures (message names the path
  // and the OS error), kInvalidArgument for a directory or other non-regular file.
  static Result<MmapFile> open(const std::filesystem::path& path);

  MmapFile() = default;
  MmapFile(MmapFile&& other) noexcept;
  MmapFile& operator=(MmapFile&& other) noexcept;
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;
  ~MmapFile();

  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, static_cast<size_t>(size_)}; }
  const std::filesystem::path& path() const { return path_; }

  // bytes [offset, offset + length), or an error naming the file when the range does not fit
  // (a header that points past the end of a truncated download).
  Result<std::span<const std::byte>> range(uint64_t offset, uint64_t length) const;

  // madvise hints. Failures are reported but harmless: the map still works without them.
  Status advise_sequential() const;
  Status advise_willneed(uint64_t offset = 0, uint64_t length = UINT64_MAX) const;

 private:
  void reset();

  std::byte* data_ = nullptr;  // nullptr for an empty file
  uint64_t size_ = 0;
  std::filesystem::path path_;
};

// Writes a file so that `path` holds either its old contents or all of `bytes`, never a prefix.
Status write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes);
Status write_file_atomic(const std::filesystem::path& path, std::string_view text);

// Drops the resident pages wholly inside [data, data + bytes) of a read-only file mapping
// (madvise MADV_DONTNEED): they stop counting in the RSS and are re-read from the file if
// touched again. Used to walk a model larger than memory one block at a time. Best effort.
void release_mapped_pages(const void* data, uint64_t bytes);

// Streams a file into "<path>.tmp.<pid>.<n>" (same directory, so the rename is atomic);
// commit() fsyncs it, renames it to `path` and fsyncs the directory. If the writer is destroyed
// or abandon()ed before commit(), the temp file is removed and `path` is untouched. The <n>
// suffix keeps two writers in one process apart; a stale temp of a crashed run is overwritten.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::filesystem::path& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Status write(std::span<const std::byte> bytes);
  Status write(std::string_view text);
  Status commit();
  // Removes the temp file now; `path` is untouched. Safe to call more than once.
  void abandon();
  // Removes the temp files a killed writer left in `dir` (regular files named
  // "<name>.tmp.<pid>.<n>"); returns how many. A directory that is published as a whole (a
  // resumed quantize run) calls this so a SIGKILL mid-write leaves no stray file in the output.
  static size_t remove_stale_temps(const std::filesystem::path& dir);

  uint64_t bytes_written() const { return bytes_written_; }
  bool committed() const { return committed_; }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter() = default;

  int fd_ = -1;
  uint64_t bytes_written_ = 0;
  bool committed_ = false;
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
};

}  // namespace qforge
