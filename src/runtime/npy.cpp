// .npy v1.0 reader and float32 writer (include/qforge/runtime/npy.h).
#include "qforge/runtime/npy.h"

#include <bit>
#include <cstring>
#include <regex>

#include "qforge/core/mmap_file.h"

namespace qforge {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;

std::string shape_tuple(std::span<const int64_t> shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    s += (shape.size() == 1 || i + 1 < shape.size()) ? "," : "";
    if (i + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

}  // namespace

std::string npy_header(const std::string& descr, std::span<const int64_t> shape) {
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = kMagicBytes + 4 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicBytes);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>((dict.size() >> 8) & 0xFF);
  return out + dict;
}

Status write_npy_f32(const std::filesystem::path& path, std::span<const int64_t> shape,
                     std::span<const float> data) {
  static_assert(std::endian::native == std::endian::little, ".npy '<f4' is little-endian");
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel != static_cast<int64_t>(data.size())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "write_npy_f32 '{}': shape holds {} elements but {} were given",
                      path.string(), numel, data.size());
  }
  QF_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::create(path));
  QF_TRY(writer.write(npy_header("<f4", shape)));
  QF_TRY(writer.write(std::as_bytes(data)));
  return writer.commit();
}

Result<NpyArray> read_npy(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path));
  const auto bytes = file.bytes();
  const std::string name = path.string();
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0) {
    return make_error(ErrorCode::kFormat, "{}: not a .npy file (no \\x93NUMPY magic)", name);
  }
  const auto major = static_cast<uint8_t>(bytes[6]);
  if (major != 1) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: .npy format version {}.x; only 1.0 is read (save with numpy "
                      "defaults)",
                      name, major);
  }
  const size_t header_len = static_cast<size_t>(bytes[8]) | (static_cast<size_t>(bytes[9]) << 8);
  if (10 + header_len > bytes.size()) {
    return make_error(ErrorCode::kFormat, "{}: header length {} runs past the end ({} bytes)", name,
                      header_len, bytes.size());
  }
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 10, header_len);
  std::smatch m;
  NpyArray out;
  if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'"))) {
    return make_error(ErrorCode::kFormat, "{}: header has no 'descr': {}", name, header);
  }
  out.descr = m[1];
  if (std::regex_search(header, std::regex("'fortran_order'\\s*:\\s*True"))) {
    return make_error(ErrorCode::kUnsupported, "{}: Fortran-order arrays are not read", name);
  }
  if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)"))) {
    return make_error(ErrorCode::kFormat, "{}: header has no 'shape': {}", name, header);
  }
  const std::string dims = m[1];
  int64_t numel = 1;
  const std::regex number("[0-9]+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    out.shape.push_back(std::stoll(it->str()));
    numel *= out.shape.back();
  }
  size_t elem = 0;
  if (out.descr == "<f4" || out.descr == "<i4") {
    elem = 4;
  } else if (out.descr == "<f8" || out.descr == "<i8") {
    elem = 8;
  } else if (out.descr == "|u1") {
    elem = 1;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: dtype '{}' is not read (expected <f4, <f8, <i4, <i8 or |u1)", name,
                      out.descr);
  }
  const size_t data_bytes = static_cast<size_t>(numel) * elem;
  if (10 + header_len + data_bytes > bytes.size()) {
    return make_error(ErrorCode::kFormat, "{}: shape {} needs {} data bytes but the file has {}",
                      name, dims, data_bytes, bytes.size() - 10 - header_len);
  }
  const auto* p = reinterpret_cast<const char*>(bytes.data()) + 10 + header_len;
  out.values.resize(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) {
    const char* e = p + i * elem;
    if (out.descr == "<f4") {
      float v;
      std::memcpy(&v, e, 4);
      out.values[i] = v;
    } else if (out.descr == "<f8") {
      std::memcpy(&out.values[i], e, 8);
    } else if (out.descr == "<i4") {
      int32_t v;
      std::memcpy(&v, e, 4);
      out.values[i] = v;
    } else if (out.descr == "<i8") {
      int64_t v;
      std::memcpy(&v, e, 8);
      out.values[i] = static_cast<double>(v);
    } else {
      out.values[i] = static_cast<uint8_t>(*e);
    }
  }
  return out;
}

}  // namespace qforge
