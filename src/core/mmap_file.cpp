// POSIX implementation of MmapFile (open/fstat/mmap/madvise) and AtomicFileWriter
// (write temp, fsync, rename, fsync directory).
#include "qforge/core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace qforge {
namespace {

std::string os_error(int err) {
  return std::strerror(err);
}

ErrorCode code_for_errno(int err) {
  return err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
}

const char* hint_for_errno(int err) {
  switch (err) {
    case ENOENT:
      return "check the path";
    case EACCES:
    case EPERM:
      return "check the file permissions";
    case ENOSPC:
    case EDQUOT:
      return "free some disk space";
    case EMFILE:
    case ENFILE:
      return "too many open files; raise `ulimit -n`";
    default:
      return "see the OS error";
  }
}

// Best effort: makes a completed rename durable. Some filesystems refuse fsync on directories;
// the rename itself has already happened, so there is nothing to undo.
void fsync_directory(const std::filesystem::path& file) {
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// An atomic write replaces `path` by a rename: refuse when it is anything but a regular file (a
// rename over /dev/null as root would replace the device node with a regular file).
Status check_rename_target(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    "AtomicFileWriter: '{}' exists and is {}; only regular files are replaced "
                    "(remove it or choose another path)",
                    path.string(), file_kind(st.st_mode));
}

uint64_t next_temp_sequence() {
  static std::atomic<uint64_t> sequence{0};
  return sequence.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// ---- MmapFile ----

Result<MmapFile> MmapFile::open(const std::filesystem::path& path) {
  // O_NONBLOCK: open() of a FIFO with no writer would block forever; with it the open returns at
  // once and fstat below rejects the FIFO. (No effect on regular files or on mmap.)
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return make_error(code_for_errno(err), "mmap_file: cannot open '{}': {} ({})", path.string(),
                      os_error(err), hint_for_errno(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, "mmap_file: cannot stat '{}': {}", path.string(),
                      os_error(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, "mmap_file: '{}' is {}, not a regular file{}",
                      path.string(), file_kind(st.st_mode),
                      S_ISDIR(st.st_mode) ? " (pass a file inside it)" : "");
  }
  MmapFile file;
  file.path_ = path;
  file.size_ = static_cast<uint64_t>(st.st_size);
  if (file.size_ == 0) {
    ::close(fd);  // mmap of length 0 fails with EINVAL; an empty file needs no mapping
    return file;
  }
  void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (addr == MAP_FAILED) {
    return make_error(ErrorCode::kIo, "mmap_file: cannot map '{}' ({} bytes): {} ({})",
                      path.string(), file.size_, os_error(err), hint_for_errno(err));
  }
  file.data_ = static_cast<std::byte*>(addr);
  return file;
}

MmapFile::MmapFile(MmapFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

MmapFile& MmapFile::operator=(MmapFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

MmapFile::~MmapFile() {
  reset();
}

void MmapFile::reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Result<std::span<const std::byte>> MmapFile::range(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return make_error(ErrorCode::kFormat,
                      "mmap_file: '{}': bytes [{}, {}+{}) lie beyond the end of the file ({} "
                      "bytes; truncated or corrupt file?)",
                      path_.string(), offset, offset, length, size_);
  }
  return std::span<const std::byte>(data_ + offset, static_cast<size_t>(length));
}

Status MmapFile::advise_sequential() const {
  if (data_ == nullptr) return ok_status();
  if (::madvise(data_, size_, MADV_SEQUENTIAL) != 0) {
    return make_error(ErrorCode::kIo, "mmap_file: madvise(SEQUENTIAL) on '{}' failed: {}",
                      path_.string(), os_error(errno));
  }
  return ok_status();
}

Status MmapFile::advise_willneed(uint64_t offset, uint64_t length) const {
  if (data_ == nullptr || offset >= size_) return ok_status();
  length = std::min(length, size_ - offset);
  // madvise needs a page-aligned start; round the start down (the map itself is page-aligned).
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  if (::madvise(data_ + start, length + (offset - start), MADV_WILLNEED) != 0) {
    return make_error(ErrorCode::kIo, "mmap_file: madvise(WILLNEED) on '{}' failed: {}",
                      path_.string(), os_error(errno));
  }
  return ok_status();
}

// ---- atomic writes ----

Status write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  QF_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::create(path));
  QF_TRY(writer.write(bytes));
  return writer.commit();
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  return write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

// create() names its temp files "<path><kTempInfix><pid>.<n>"; remove_stale_temps() parses it.
constexpr std::string_view kTempInfix = ".tmp.";

Result<AtomicFileWriter> AtomicFileWriter::create(const std::filesystem::path& path) {
  if (path.empty() || !path.has_filename()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "AtomicFileWriter: '{}' does not name a file (expected a path like "
                      "out/model.safetensors)",
                      path.string());
  }
  QF_TRY(check_rename_target(path));
  AtomicFileWriter writer;
  writer.path_ = path;
  writer.temp_path_ = path;
  writer.temp_path_ += fmt::format("{}{}.{}", kTempInfix, ::getpid(), next_temp_sequence());
  // A stale temp of a crashed run (same pid, same sequence) is removed first; O_EXCL|O_NOFOLLOW
  // then never writes through a link or into a FIFO planted under the temp name.
  ::unlink(writer.temp_path_.c_str());
  writer.fd_ =
      ::open(writer.temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (writer.fd_ < 0) {
    const int err = errno;
    std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
    return make_error(code_for_errno(err),
                      "AtomicFileWriter: cannot create '{}': {} (does the directory '{}' exist "
                      "and is it writable?)",
                      writer.temp_path_.string(), os_error(err), dir);
  }
  return writer;
}

namespace {
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
// "<name>.tmp.<pid>.<n>" with a non-empty <name>, as create() names its temp files.
bool is_temp_name(std::string_view name) {
  const size_t last = name.rfind('.');
  if (last == std::string_view::npos || !all_digits(name.substr(last + 1))) return false;
  const std::string_view head = name.substr(0, last);
  const size_t pid_dot = head.rfind('.');
  if (pid_dot == std::string_view::npos || !all_digits(head.substr(pid_dot + 1))) return false;
  // head[pid_dot] is the infix's final '.'; a non-empty <name> precedes the infix.
  const size_t infix = pid_dot + 1;
  return infix > kTempInfix.size() &&
         head.substr(infix - kTempInfix.size(), kTempInfix.size()) == kTempInfix;
}
}  // namespace

size_t AtomicFileWriter::remove_stale_temps(const std::filesystem::path& dir) {
  size_t removed = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || !is_temp_name(it->path().filename().string())) continue;
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      bytes_written_(other.bytes_written_),
      committed_(other.committed_),
      path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)) {
  other.temp_path_.clear();
}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    abandon();
    fd_ = std::exchange(other.fd_, -1);
    bytes_written_ = other.bytes_written_;
    committed_ = other.committed_;
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    other.temp_path_.clear();
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() {
  abandon();
}

void AtomicFileWriter::abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!committed_ && !temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

Status AtomicFileWriter::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "AtomicFileWriter: write to '{}' after commit, abandon or a failed write",
                      path_.string());
  }
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    // Linux writes at most ~2 GiB per call; loop on short writes and EINTR.
    const ssize_t n = ::write(fd_, p, std::min<size_t>(left, size_t{1} << 30));
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      std::string temp = temp_path_.string();
      abandon();  // a failed write must never be committed
      return make_error(ErrorCode::kIo,
                        "AtomicFileWriter: writing '{}' failed after {} bytes: {} ({})", temp,
                        bytes_written_, os_error(err), hint_for_errno(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
    bytes_written_ += static_cast<uint64_t>(n);
  }
  return ok_status();
}

Status AtomicFileWriter::write(std::string_view text) {
  return write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "AtomicFileWriter: nothing to commit for '{}' (already committed, "
                      "abandoned, or an earlier write failed)",
                      path_.string());
  }
  const std::string temp = temp_path_.string();
  if (Status target = check_rename_target(path_); !target.ok()) {
    abandon();  // something not ours appeared at the path while writing
    return target;
  }
  if (::fsync(fd_) != 0) {
    const int err = errno;
    abandon();
    return make_error(ErrorCode::kIo, "AtomicFileWriter: fsync of '{}' failed: {} ({})", temp,
                      os_error(err), hint_for_errno(err));
  }
  const int close_result = ::close(fd_);
  fd_ = -1;
  if (close_result != 0) {
    const int err = errno;
    abandon();
    return make_error(ErrorCode::kIo, "AtomicFileWriter: closing '{}' failed: {}", temp,
                      os_error(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    abandon();
    return make_error(ErrorCode::kIo, "AtomicFileWriter: renaming '{}' to '{}' failed: {} ({})",
                      temp, path_.string(), os_error(err), hint_for_errno(err));
  }
  committed_ = true;
  fsync_directory(path_);
  return ok_status();
}

void release_mapped_pages(const void* data, uint64_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + bytes) / page * page;
  if (last > first) {
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
}

}  // namespace qforge
