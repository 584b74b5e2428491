// GPT-2's byte <-> unicode map (openai/gpt-2 encoder.py bytes_to_unicode): printable Latin-1
// bytes map to themselves, the other 68 bytes to U+0100.. in order, so every byte sequence is
// spelled with visible characters (space -> "Ġ", newline -> "Ċ").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace qforge::tokenizer {

class ByteLevelMap {
 public:
  static const ByteLevelMap& get();

  // The code point byte b is spelled with, and its UTF-8 encoding.
  uint32_t code_point(uint8_t b) const { return code_points_[b]; }
  std::string_view utf8(uint8_t b) const { return {utf8_[b].data(), utf8_len_[b]}; }
  // Appends the byte-level spelling of raw bytes.
  void encode(std::string_view bytes, std::string& out) const;
  // The byte a code point spells, or -1 when it is not one of the 256.
  int byte_of(uint32_t cp) const { return cp < 324 ? inverse_[cp] : -1; }
  // Appends the bytes a byte-level string spells; characters outside the map are kept as-is.
  void decode(std::string_view chars, std::string& out) const;

 private:
  ByteLevelMap();
  std::array<uint32_t, 256> code_points_{};
  std::array<std::array<char, 2>, 256> utf8_{};
  std::array<uint8_t, 256> utf8_len_{};
  std::array<int16_t, 324> inverse_{};
};

}  // namespace qforge::tokenizer
