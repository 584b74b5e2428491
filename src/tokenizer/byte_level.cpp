// GPT-2 byte <-> unicode map (see byte_level.h).
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace qforge::tokenizer {

const ByteLevelMap& ByteLevelMap::get() {
  static const ByteLevelMap map;
  return map;
}

ByteLevelMap::ByteLevelMap() {
  inverse_.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    code_points_[b] = printable ? static_cast<uint32_t>(b) : next++;
  }
  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8_append(s, code_points_[b]);
    utf8_len_[b] = static_cast<uint8_t>(s.size());
    for (size_t k = 0; k < s.size(); ++k) utf8_[b][k] = s[k];
    inverse_[code_points_[b]] = static_cast<int16_t>(b);
  }
}

void ByteLevelMap::encode(std::string_view bytes, std::string& out) const {
  for (char c : bytes) out.append(utf8(static_cast<uint8_t>(c)));
}

void ByteLevelMap::decode(std::string_view chars, std::string& out) const {
  size_t pos = 0;
  while (pos < chars.size()) {
    const size_t start = pos;
    const uint32_t cp = utf8_decode(chars, pos);
    const int b = byte_of(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(chars.substr(start, pos - start));
    }
  }
}

}  // namespace qforge::tokenizer
