// engine_file_writer.h: scratch data file, 64-byte alignment, checksums, header assembly.
#include "engine/engine_file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "engine/engine_checksum.h"
#include "qforge/core/mmap_file.h"
#include "qforge/io/safetensors.h"

namespace qforge::engine_detail {
namespace {

std::string os_error(int err) {
  return std::strerror(err);
}

std::atomic<int> g_scratch_sequence{0};

}  // namespace

std::string canonical_header(const std::map<std::string, std::string>& metadata,
                             const std::vector<HeaderTensor>& tensors) {
  std::string s;
  for (const auto& [key, value] : metadata) {
    if (key == kHeaderChecksumKey) continue;
    s += fmt::format("m {} {}\n{}\n", key.size(), value.size(), key);
    s += value;
    s += '\n';
  }
  for (const auto& t : tensors) {
    s += fmt::format("t {} {} {} {} [{}]\n", t.name, t.dtype, t.begin, t.end,
                     fmt::join(t.shape, ","));
  }
  return s;
}

Result<EngineFileWriter> EngineFileWriter::create(const std::filesystem::path& output) {
  EngineFileWriter w;
  w.output_ = output;
  w.scratch_ = output;
  w.scratch_ += fmt::format(".data.{}.{}", ::getpid(), g_scratch_sequence++);
  w.fd_ = ::open(w.scratch_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w.fd_ < 0) {
    return make_error(ErrorCode::kIo, "engine: cannot create scratch file {}: {}",
                      w.scratch_.string(), os_error(errno));
  }
  return w;
}

EngineFileWriter::EngineFileWriter(EngineFileWriter&& o) noexcept
    : output_(std::move(o.output_)),
      scratch_(std::move(o.scratch_)),
      fd_(o.fd_),
      data_bytes_(o.data_bytes_),
      pads_(o.pads_),
      entries_(std::move(o.entries_)),
      index_(std::move(o.index_)),
      metadata_(std::move(o.metadata_)) {
  o.fd_ = -1;
  o.scratch_.clear();
}

EngineFileWriter::~EngineFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!scratch_.empty()) ::unlink(scratch_.c_str());
}

Status EngineFileWriter::append_raw(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, std::min<size_t>(left, size_t{1} << 26));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIo, "engine: writing {}: {} (disk full?)", scratch_.string(),
                        os_error(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  data_bytes_ += bytes.size();
  return ok_status();
}

Status EngineFileWriter::add(const std::string& name, DType dtype, const Shape& shape,
                             std::span<const std::byte> bytes) {
  if (index_.count(name) != 0) {
    return make_error(ErrorCode::kInternal, "engine: tensor '{}' added twice", name);
  }
  QF_ASSIGN_OR_RETURN(uint64_t expected, dtype_storage_bytes(dtype, shape.numel()));
  if (expected != bytes.size()) {
    return make_error(ErrorCode::kInternal, "engine: tensor '{}' has {} bytes; its shape needs {}",
                      name, bytes.size(), expected);
  }
  Entry e{name, dtype, shape, data_bytes_, data_bytes_ + bytes.size(), checksum64_parallel(bytes)};
  QF_TRY(append_raw(bytes));
  index_[name] = entries_.size();
  entries_.push_back(std::move(e));
  const uint64_t rem = data_bytes_ % kEngineAlignment;
  if (rem != 0) {
    const uint64_t pad = kEngineAlignment - rem;
    std::vector<std::byte> zeros(pad);
    const std::string pad_name = fmt::format("{}{}", kPadPrefix, pads_++);
    Entry p{pad_name,    DType::U8,         Shape{static_cast<int64_t>(pad)},
            data_bytes_, data_bytes_ + pad, checksum64(zeros)};
    QF_TRY(append_raw(zeros));
    index_[pad_name] = entries_.size();
    entries_.push_back(std::move(p));
  }
  return ok_status();
}

Result<uint64_t> EngineFileWriter::commit() {
  nlohmann::json checksums = nlohmann::json::object();
  std::vector<HeaderTensor> tensors;
  for (const Entry& e : entries_) {
    if (e.name.rfind(kPadPrefix, 0) != 0) checksums[e.name] = checksum_hex(e.checksum);
    QF_ASSIGN_OR_RETURN(std::string_view dt, safetensors_dtype_name(e.dtype));
    tensors.push_back({e.name, std::string(dt),
                       std::vector<int64_t>(e.shape.dims().begin(), e.shape.dims().end()), e.begin,
                       e.end});
  }
  metadata_[kChecksumsKey] = checksums.dump();
  metadata_.erase(kHeaderChecksumKey);
  metadata_[kHeaderChecksumKey] = checksum_hex(
      checksum64(std::as_bytes(std::span<const char>(canonical_header(metadata_, tensors)))));

  // The header JSON (metadata first, tensors in offset order), padded with spaces so that the
  // data section starts at a multiple of kEngineAlignment.
  nlohmann::ordered_json header;
  header["__metadata__"] = nlohmann::ordered_json(metadata_);
  for (const HeaderTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string json = header.dump();
  const uint64_t total = 8 + json.size();
  json.append(static_cast<size_t>((kEngineAlignment - total % kEngineAlignment) % kEngineAlignment),
              ' ');
  uint8_t len[8];
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i, n >>= 8) len[i] = static_cast<uint8_t>(n & 0xff);

  QF_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::create(output_));
  QF_TRY(out.write(std::as_bytes(std::span<const uint8_t>(len, 8))));
  QF_TRY(out.write(json));
  std::vector<std::byte> buf(size_t{8} << 20);
  for (uint64_t off = 0; off < data_bytes_;) {
    const ssize_t got = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      out.abandon();
      return make_error(ErrorCode::kIo, "engine: reading back {}: {}", scratch_.string(),
                        got < 0 ? os_error(errno) : std::string("unexpected end of file"));
    }
    QF_TRY(out.write(std::span<const std::byte>(buf.data(), static_cast<size_t>(got))));
    off += static_cast<uint64_t>(got);
  }
  const uint64_t bytes = out.bytes_written();
  QF_TRY(out.commit());
  return bytes;
}

}  // namespace qforge::engine_detail
