// Unicode normalization (NFC/NFD/NFKC/NFKD) and lowercasing for tokenizer.json normalizers,
// through ICU's UTF-8 APIs. ASCII-only text is returned unchanged without calling ICU.
#pragma once

#include <string>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge::tokenizer {

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };

// Appends the normalized form of `in` (valid UTF-8) to `out`.
Status unicode_normalize(UnicodeForm form, std::string_view in, std::string& out);
// Appends the lowercase of `in` (valid UTF-8, root locale) to `out`.
Status unicode_lowercase(std::string_view in, std::string& out);

}  // namespace qforge::tokenizer
