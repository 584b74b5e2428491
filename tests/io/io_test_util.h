// Shared helpers for the checkpoint I/O tests: where the shared real models live, scratch
// directories, and little-endian byte builders for hand-made (often hostile) files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace qforge::testing_io {

// ../shared next to the source tree, or $QFORGE_SHARED_DIR.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("QFORGE_SHARED_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared";
}

inline std::filesystem::path models_dir() {
  return shared_dir() / "models";
}

#define QF_REQUIRE_SHARED()                                                                \
  do {                                                                                     \
    if (!std::filesystem::exists(::qforge::testing_io::models_dir())) {                    \
      GTEST_SKIP() << "shared models not found at " << ::qforge::testing_io::models_dir(); \
    }                                                                                      \
  } while (0)

// A fresh directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("qforge_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Little-endian byte builder.
class Bytes {
 public:
  template <typename T>
  Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    data_.insert(data_.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& i32(int32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& f32(float v) { return put(v); }
  Bytes& str(std::string_view s) {
    data_.insert(data_.end(), s.begin(), s.end());
    return *this;
  }
  // GGUF string: u64 length + bytes.
  Bytes& gstr(std::string_view s) {
    u64(s.size());
    return str(s);
  }
  Bytes& zeros(size_t n) {
    data_.resize(data_.size() + n, 0);
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    data_.resize((data_.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }
  size_t size() const { return data_.size(); }
  const std::vector<uint8_t>& data() const { return data_; }
  std::vector<uint8_t>& data() { return data_; }

 private:
  std::vector<uint8_t> data_;
};

inline void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

inline std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A safetensors file from a header JSON string (unpadded) and a data section.
inline std::vector<uint8_t> safetensors_bytes(std::string_view header, size_t data_bytes) {
  Bytes b;
  b.u64(header.size()).str(header).zeros(data_bytes);
  return b.data();
}

}  // namespace qforge::testing_io
