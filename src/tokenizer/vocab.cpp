// Vocabulary arena + hash index and the BPE merge table (see vocab.h).
#include "tokenizer/vocab.h"

#include <bit>
#include <functional>

namespace qforge::tokenizer {
namespace {

uint32_t hash_piece(std::string_view s) {
  // FNV-1a: pieces are short, and this keeps the index independent of the standard library.
  uint32_t h = 2166136261u;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

}  // namespace

void Vocab::resize(int32_t n) {
  begin_.assign(n, 0);
  end_.assign(n, 0);
  types_.assign(n, TokenType::kNormal);
  scores_.assign(n, 0.0f);
  present_.assign(n, 0);
}

void Vocab::set(int32_t id, std::string_view piece, TokenType type, float score) {
  begin_[id] = static_cast<uint32_t>(arena_.size());
  arena_.append(piece);
  end_[id] = static_cast<uint32_t>(arena_.size());
  types_[id] = type;
  scores_[id] = score;
  present_[id] = 1;
}

void Vocab::build_index() {
  const size_t n = types_.size();
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, n * 2));
  slots_.assign(capacity, -1);
  slot_hash_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (size_t id = 0; id < n; ++id) {
    if (!present_[id]) continue;
    const std::string_view p = piece(static_cast<int32_t>(id));
    const uint32_t h = hash_piece(p);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] < 0) {
        slots_[i] = static_cast<int32_t>(id);
        slot_hash_[i] = h;
        break;
      }
      if (slot_hash_[i] == h && piece(slots_[i]) == p) break;  // duplicate: lower id wins
    }
  }
}

int32_t Vocab::find(std::string_view p) const {
  if (slots_.empty()) return -1;
  const uint32_t h = hash_piece(p);
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const int32_t id = slots_[i];
    if (id < 0) return -1;
    if (slot_hash_[i] == h && piece(id) == p) return id;
  }
}

void MergeTable::reserve(size_t n) {
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, n * 2));
  if (capacity <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{kEmpty, {0, 0}});
  mask_ = capacity - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) {
      insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.merge);
    }
  }
}

void MergeTable::grow() {
  reserve(std::max<size_t>(16, size_ * 2));
}

bool MergeTable::insert(int32_t left, int32_t right, BpeMerge merge) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = make_key(left, right);
  for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == kEmpty) {
      s.key = key;
      s.merge = merge;
      ++size_;
      return true;
    }
    if (s.key == key) return false;
  }
}

int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece[0] != '<' || piece[1] != '0' || piece[2] != 'x' ||
      piece[5] != '>') {
    return -1;
  }
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

}  // namespace qforge::tokenizer
