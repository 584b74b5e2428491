// Shared helpers for the tokenizer tests: where the shared models/data and the hand-made
// fixtures live, file I/O, scratch directories, and loading a tokenizer or failing the test.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/tokenizer/tokenizer.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge::testing_tok {

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
inline std::filesystem::path data_dir() {
  return shared_dir() / "data";
}
inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(QFORGE_SOURCE_DIR) / "tests" / "tokenizer" / "fixtures" / name;
}

#define QF_TOK_REQUIRE_SHARED()                                                             \
  do {                                                                                      \
    if (!std::filesystem::exists(::qforge::testing_tok::models_dir())) {                    \
      GTEST_SKIP() << "shared models not found at " << ::qforge::testing_tok::models_dir(); \
    }                                                                                       \
  } while (0)

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("qforge_tok_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
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

inline std::unique_ptr<Tokenizer> load_or_die(const std::filesystem::path& path) {
  auto t = load_tokenizer(path.string());
  if (!t.ok()) {
    ADD_FAILURE() << "loading " << path << ": " << t.error().to_string();
    return nullptr;
  }
  return std::move(t).value();
}

inline std::vector<int32_t> encode_or_die(const Tokenizer& t, std::string_view text, bool bos) {
  auto ids = t.encode(text, bos);
  if (!ids.ok()) {
    ADD_FAILURE() << "encode: " << ids.error().to_string();
    return {};
  }
  return std::move(ids).value();
}

inline std::string decode_or_die(const Tokenizer& t, const std::vector<int32_t>& ids) {
  auto text = t.decode(ids);
  if (!text.ok()) {
    ADD_FAILURE() << "decode: " << text.error().to_string();
    return {};
  }
  return std::move(text).value();
}

// decode_next over a sequence, which must equal decode() of it.
inline std::string decode_streaming(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::string out;
  int32_t previous = -1;
  for (int32_t id : ids) {
    auto piece = t.decode_next(previous, id);
    if (!piece.ok()) {
      ADD_FAILURE() << "decode_next: " << piece.error().to_string();
      return {};
    }
    out += *piece;
    previous = id;
  }
  return out;
}

// TinyStories stories (split on lines "<|endoftext|>", whitespace-trimmed).
inline std::vector<std::string> tinystories(size_t count) {
  const std::string text =
      read_file(data_dir() / "tinystories" / "tinystories_valid_first1000.txt");
  std::vector<std::string> stories;
  std::string current;
  std::istringstream in(text);
  std::string line;
  auto flush = [&] {
    const size_t b = current.find_first_not_of(" \t\r\n");
    const size_t e = current.find_last_not_of(" \t\r\n");
    stories.push_back(b == std::string::npos ? std::string() : current.substr(b, e - b + 1));
    current.clear();
  };
  while (std::getline(in, line) && stories.size() < count) {
    if (line == "<|endoftext|>") {
      flush();
    } else {
      current += line;
      current += '\n';
    }
  }
  return stories;
}

// The first `max_bytes` of a text file, cut at a line end.
inline std::vector<std::string> text_lines(const std::filesystem::path& path, size_t max_bytes) {
  const std::string text = read_file(path);
  std::vector<std::string> lines;
  size_t total = 0, pos = 0;
  while (pos < text.size() && total < max_bytes) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    total += end - pos + 1;
    pos = end + 1;
  }
  return lines;
}

}  // namespace qforge::testing_tok
