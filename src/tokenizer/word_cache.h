// Speed-ups shared by the BPE tokenizers, both exact:
//  - WordCache: word -> ids, so repeated words skip the merge loop (thread-safe, bounded);
//  - split_words: cut a long text before every `space` that follows another character. BPE
//    never merges across such a cut when no vocabulary piece has `space` after another character
//    (true of SentencePiece vocabularies trained with split_by_whitespace, e.g. Llama-2):
//    any merge across it would create such a piece. pieces_allow_space_split() checks that.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/pretokenize_regex.h"

namespace qforge::tokenizer {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 256;
  static constexpr size_t kMaxEntries = 1 << 18;

  // Appends the cached ids of `word` to `out`; false when absent.
  bool lookup(std::string_view word, std::vector<int32_t>& out) const;
  void insert(std::string_view word, std::span<const int32_t> ids) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, Hash, std::equal_to<>>
      map_;
  mutable std::vector<int32_t> ids_;
};

// True when no piece (for which `consider` is true) contains `space` after a character other
// than `space`, so split_words() is exact.
bool pieces_allow_space_split(int32_t n, const std::function<std::string_view(int32_t)>& piece,
                              const std::function<bool(int32_t)>& consider, std::string_view space);

// Appends the ranges of `text` cut before each `space` that follows a character other than
// `space` (runs of spaces stay together with the word after them).
void split_words(std::string_view text, std::string_view space, std::vector<MatchRange>& out);

}  // namespace qforge::tokenizer
