// Test helper: rewrites the NormalizerSpec.precompiled_charsmap of a SentencePiece ModelProto
// (protobuf wire format by hand), so hostile charsmaps can be planted in a real .model file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qforge::testing_tok {

inline bool read_varint(std::string_view d, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < d.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(d[pos++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

struct ProtoPiece {
  uint32_t number;
  uint32_t wire;
  std::string_view raw;    // the whole field (key + payload)
  std::string_view bytes;  // wire type 2 payload
};

// Calls f(field) for each top-level field of `d`; false on malformed input.
template <typename F>
bool for_each_field(std::string_view d, F&& f) {
  size_t pos = 0;
  while (pos < d.size()) {
    const size_t start = pos;
    uint64_t key = 0;
    if (!read_varint(d, pos, key)) return false;
    ProtoPiece p{static_cast<uint32_t>(key >> 3), static_cast<uint32_t>(key & 7), {}, {}};
    uint64_t v = 0;
    switch (p.wire) {
      case 0:
        if (!read_varint(d, pos, v)) return false;
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2:
        if (!read_varint(d, pos, v) || v > d.size() - pos) return false;
        p.bytes = d.substr(pos, v);
        pos += v;
        break;
      default:
        return false;
    }
    if (pos > d.size()) return false;
    p.raw = d.substr(start, pos - start);
    f(p);
  }
  return true;
}

inline std::string length_field(uint32_t number, std::string_view payload) {
  std::string out;
  put_varint(out, (uint64_t{number} << 3) | 2);
  put_varint(out, payload.size());
  out.append(payload);
  return out;
}

// The normalizer_spec.precompiled_charsmap of `model`, if any.
inline std::optional<std::string> get_charsmap(std::string_view model) {
  std::optional<std::string> found;
  for_each_field(model, [&](const ProtoPiece& top) {
    if (top.number != 3 || top.wire != 2) return;
    for_each_field(top.bytes, [&](const ProtoPiece& f) {
      if (f.number == 2 && f.wire == 2) found = std::string(f.bytes);
    });
  });
  return found;
}

// `model` with normalizer_spec (field `spec_field`: 3, or 5 for denormalizer_spec) holding
// `charsmap` as its precompiled_charsmap (the spec is added if missing).
inline std::string with_charsmap(std::string_view model, std::string_view charsmap,
                                 uint32_t spec_field = 3) {
  std::string out;
  bool done = false;
  for_each_field(model, [&](const ProtoPiece& top) {
    if (top.number != spec_field || top.wire != 2) {
      out.append(top.raw);
      return;
    }
    std::string spec;
    for_each_field(top.bytes, [&](const ProtoPiece& f) {
      if (!(f.number == 2 && f.wire == 2)) spec.append(f.raw);
    });
    spec += length_field(2, charsmap);
    out += length_field(spec_field, spec);
    done = true;
  });
  if (!done) out += length_field(spec_field, length_field(2, charsmap));
  return out;
}

}  // namespace qforge::testing_tok
