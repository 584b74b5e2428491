// engine_checksum.h: a four-lane multiply-rotate hash (the construction of xxHash64-like
// hashes: each lane absorbs 8 bytes as acc = rotl(acc + w * P2, 31) * P1), written here from the
// idea, with qforge's own lane seeds.
#include "engine/engine_checksum.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "qforge/core/parallel.h"

namespace qforge::engine_detail {
namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kP3 = 0x165667B19E3779F9ull;
constexpr int64_t kPiece = int64_t{4} << 20;

inline uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}
inline uint64_t load64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t round(uint64_t acc, uint64_t w) {
  return rotl(acc + w * kP2, 31) * kP1;
}

uint64_t avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

}  // namespace

uint64_t checksum64(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  const size_t n = bytes.size();
  uint64_t a = kP1 + kP2, b = kP2, c = 0, d = 0 - kP1;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = round(a, load64(p + i));
    b = round(b, load64(p + i + 8));
    c = round(c, load64(p + i + 16));
    d = round(d, load64(p + i + 24));
  }
  uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + static_cast<uint64_t>(n);
  for (; i + 8 <= n; i += 8) h = rotl(h ^ round(0, load64(p + i)), 27) * kP1 + kP3;
  for (; i < n; ++i) h = rotl(h ^ (static_cast<uint64_t>(p[i]) * kP3), 11) * kP1;
  return avalanche(h);
}

uint64_t checksum64_parallel(std::span<const std::byte> bytes) {
  const auto n = static_cast<int64_t>(bytes.size());
  if (n <= kPiece) return checksum64(bytes);
  const int64_t pieces = (n + kPiece - 1) / kPiece;
  std::vector<uint64_t> sums(static_cast<size_t>(pieces));
  parallel_for(0, pieces, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t begin = k * kPiece;
      const int64_t len = std::min(kPiece, n - begin);
      sums[static_cast<size_t>(k)] =
          checksum64(bytes.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)));
    }
  });
  return checksum64(std::as_bytes(std::span<const uint64_t>(sums)));
}

std::string checksum_hex(uint64_t value) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) s[static_cast<size_t>(i)] = kDigits[value & 15];
  return s;
}

bool parse_checksum_hex(const std::string& text, uint64_t* value) {
  if (text.size() != 16) return false;
  uint64_t v = 0;
  for (char ch : text) {
    int digit;
    if (ch >= '0' && ch <= '9') {
      digit = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      digit = ch - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  *value = v;
  return true;
}

}  // namespace qforge::engine_detail
