// Untrusted text inputs (text_file.h).
#include "qforge/core/text_file.h"

#include <fmt/format.h>

#include "qforge/core/mmap_file.h"

namespace qforge {

Result<std::string> read_text_input(const std::filesystem::path& path, std::string_view what,
                                    uint64_t max_bytes) {
  // MmapFile::open never blocks (O_NONBLOCK) and refuses anything but a regular file.
  auto file = MmapFile::open(path);
  if (!file.ok()) {
    return make_error(file.error().code(), "{}: {}", what, file.error().message());
  }
  if (file->size() > max_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} '{}' has {} bytes, more than the {} byte limit for a text input (split "
                      "it, or pass a smaller file)",
                      what, path.string(), file->size(), max_bytes);
  }
  return std::string(reinterpret_cast<const char*>(file->data()), file->size());
}

Status check_utf8_text(std::string_view text, std::string_view source) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  const auto fail = [&](const char* why) -> Status {
    std::string bytes;
    for (size_t k = i; k < n && k < i + 4; ++k)
      bytes += fmt::format("{}{:02x}", k > i ? " " : "", p[k]);
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: not UTF-8 text: {} at byte {} (bytes {}); a binary or a file in another "
                      "encoding? convert it to UTF-8 text first",
                      source, why, i, bytes);
  };
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0) return fail("a NUL byte");
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return fail("an invalid leading byte");
    }
    if (n - i < static_cast<size_t>(len)) return fail("a truncated sequence");
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return fail("a missing continuation byte");
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min) return fail("an overlong encoding");
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail("an invalid code point");
    i += static_cast<size_t>(len);
  }
  return ok_status();
}

}  // namespace qforge
