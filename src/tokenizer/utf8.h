// UTF-8 helpers shared by the tokenizers: sequence length from a lead byte, strict validation
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), and encoding a code point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qforge::tokenizer {

// Length of the UTF-8 sequence that starts with `lead` (1 for ASCII and for stray bytes).
inline size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Length of the character at text[pos], clamped to the bytes left (never 0 when pos < size).
inline size_t utf8_char_length(std::string_view text, size_t pos) {
  size_t n = utf8_sequence_length(static_cast<unsigned char>(text[pos]));
  return n <= text.size() - pos ? n : text.size() - pos;
}

// Byte offset of the first invalid UTF-8 sequence, or std::string_view::npos when valid.
size_t utf8_find_invalid(std::string_view text);

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF).
void utf8_append(std::string& out, uint32_t cp);

// Decodes the (valid) character at text[pos]; advances pos.
uint32_t utf8_decode(std::string_view text, size_t& pos);

}  // namespace qforge::tokenizer
