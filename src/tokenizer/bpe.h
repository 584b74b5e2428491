// The two BPE merge loops, both a linked list of symbols plus a binary heap of candidate pairs
// (O(n log n) per word instead of rescanning all pairs after every merge):
//  - by rank: Hugging Face tokenizers' BPE model (lowest merge rank first, leftmost on ties);
//  - by score: SentencePiece bpe_model.cc / llama.cpp llm_tokenizer_spm (the adjacent pair whose
//    concatenation is a vocabulary piece with the highest score first, leftmost on ties).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace qforge::tokenizer {

// Merges `ids` (the initial symbols of one word) in place.
void bpe_merge_by_rank(std::vector<int32_t>& ids, const MergeTable& merges);

// A symbol of the by-score loop: bytes [begin, end) of the word.
struct TextSpan {
  uint32_t begin;
  uint32_t end;
};

// Merges `spans` (initially one per character, in order, covering `text`) in place. A pair may
// merge when text[left.begin, right.end) is a piece whose id has mergeable[id] != 0; the pair
// with the highest score wins, the leftmost on ties. Spans marked frozen (user-defined pieces)
// never merge: pass frozen = nullptr when there are none.
void bpe_merge_by_score(std::string_view text, std::vector<TextSpan>& spans, const Vocab& vocab,
                        const std::vector<uint8_t>& mergeable,
                        const std::vector<uint8_t>* frozen = nullptr);

}  // namespace qforge::tokenizer
