// Reading untrusted text inputs (evaluation datasets, calibration text, tokenize --file) whole:
// the path must be a regular file (a FIFO, /dev/zero or a directory is refused without blocking),
// at most a size limit (an 8 GiB sparse file is refused before anything is allocated), and, where
// the caller asks, valid UTF-8 without NUL bytes (an ELF binary is not a text corpus).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

// 1 GiB: far above a real evaluation or calibration text (wiki.test.raw is 1.3 MB), far below
// what would exhaust memory.
inline constexpr uint64_t kMaxTextInputBytes = uint64_t{1} << 30;

// Reads `path` whole. `what` names the option in errors ("--dataset"). Errors: kNotFound (missing),
// kInvalidArgument (not a regular file; larger than max_bytes), kIo.
Result<std::string> read_text_input(const std::filesystem::path& path, std::string_view what,
                                    uint64_t max_bytes = kMaxTextInputBytes);

// Fails (kInvalidArgument) unless `text` is valid UTF-8 (no overlong forms, no surrogates, nothing
// above U+10FFFF) with no NUL byte; the error names `source`, the byte offset and the bytes.
Status check_utf8_text(std::string_view text, std::string_view source);

}  // namespace qforge
