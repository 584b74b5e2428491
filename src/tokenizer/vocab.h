// Vocabulary storage shared by every tokenizer: id -> piece bytes (one arena), piece -> id
// (open-addressing hash index over the arena), per-id type and score; and the BPE merge table
// (pair of ids -> rank and merged id) that the Hugging Face BPE model uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/tokenizer/tokenizer.h"

namespace qforge::tokenizer {

class Vocab {
 public:
  // Sets the number of ids; every id starts absent (a hole) with type kNormal and score 0.
  void resize(int32_t n);
  // Stores the piece of `id` (< size()). Call build_index() once all pieces are set.
  void set(int32_t id, std::string_view piece, TokenType type = TokenType::kNormal,
           float score = 0.0f);
  void set_type(int32_t id, TokenType type) { types_[id] = type; }
  // Builds the piece -> id index. When two ids share a piece the lower id wins.
  void build_index();

  int32_t size() const { return static_cast<int32_t>(types_.size()); }
  bool present(int32_t id) const { return id >= 0 && id < size() && present_[id]; }
  std::string_view piece(int32_t id) const {
    return {arena_.data() + begin_[id], static_cast<size_t>(end_[id] - begin_[id])};
  }
  TokenType type(int32_t id) const { return types_[id]; }
  float score(int32_t id) const { return scores_[id]; }
  // -1 when the piece is not in the vocabulary.
  int32_t find(std::string_view piece) const;

 private:
  std::string arena_;
  std::vector<uint32_t> begin_, end_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::vector<uint8_t> present_;
  std::vector<int32_t> slots_;  // ids, -1 = empty; size is a power of two
  std::vector<uint32_t> slot_hash_;
  uint64_t mask_ = 0;
};

struct BpeMerge {
  int32_t rank;
  int32_t new_id;
};

// (left id, right id) -> BpeMerge, open addressing on a 64-bit key.
class MergeTable {
 public:
  void reserve(size_t n);
  // Returns false when the pair is already present (the first rank is kept).
  bool insert(int32_t left, int32_t right, BpeMerge merge);
  const BpeMerge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = make_key(left, right);
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == kEmpty) return nullptr;
      if (s.key == key) return &s.merge;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    BpeMerge merge;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t make_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  void grow();

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t size_ = 0;
};

// Parses "<0xNN>" (exactly six characters, hex digits in either case) into a byte value, else -1.
int parse_byte_piece(std::string_view piece);

// A tokenizer whose pieces, types and scores live in one Vocab (llama2c, GGUF "llama"): the
// per-id accessors of the Tokenizer interface, answered from it (ids outside the vocabulary
// give the empty piece, kNormal, 0).
class VocabTokenizer : public Tokenizer {
 public:
  std::string piece(int32_t id) const override {
    return in_range(id) ? std::string(vocab_.piece(id)) : std::string();
  }
  int32_t vocab_size() const override { return vocab_.size(); }
  TokenType token_type(int32_t id) const override {
    return in_range(id) ? vocab_.type(id) : TokenType::kNormal;
  }
  float token_score(int32_t id) const override { return in_range(id) ? vocab_.score(id) : 0.0f; }
  int32_t token_id(std::string_view piece) const override { return vocab_.find(piece); }

 protected:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  bool in_range(int32_t id) const { return id >= 0 && id < vocab_.size(); }

  Vocab vocab_;
};

}  // namespace qforge::tokenizer
