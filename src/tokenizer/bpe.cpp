// BPE merge loops by rank (Hugging Face) and by score (SentencePiece / llama.cpp); see bpe.h.
#include "tokenizer/bpe.h"

#include <algorithm>

namespace qforge::tokenizer {
namespace {

struct RankSymbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct RankCandidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std heap is a max-heap: "less" means lower priority = higher rank, then higher pos.
  bool operator<(const RankCandidate& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

struct ScoreSymbol {
  uint32_t begin;
  uint32_t end;
  int32_t prev;
  int32_t next;
  bool frozen;
};

struct ScoreCandidate {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
  bool operator<(const ScoreCandidate& o) const {
    return score != o.score ? score < o.score : left > o.left;
  }
};

}  // namespace

void bpe_merge_by_rank(std::vector<int32_t>& ids, const MergeTable& merges) {
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  thread_local std::vector<RankSymbol> symbols;
  thread_local std::vector<RankCandidate> heap;
  symbols.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) symbols[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const BpeMerge* m = merges.find(ids[i], ids[i + 1]))
      heap.push_back({m->rank, i, m->new_id});
  }
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const RankCandidate top = heap.back();
    heap.pop_back();
    RankSymbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    RankSymbol& right = symbols[left.next];
    // A stale entry: one side changed since it was queued.
    const BpeMerge* current = merges.find(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const BpeMerge* m = merges.find(symbols[left.prev].id, left.id)) {
        heap.push_back({m->rank, left.prev, m->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
    if (left.next >= 0) {
      if (const BpeMerge* m = merges.find(left.id, symbols[left.next].id)) {
        heap.push_back({m->rank, top.pos, m->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  ids.clear();
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

void bpe_merge_by_score(std::string_view text, std::vector<TextSpan>& spans, const Vocab& vocab,
                        const std::vector<uint8_t>& mergeable, const std::vector<uint8_t>* frozen) {
  const int32_t n = static_cast<int32_t>(spans.size());
  if (n < 2) return;
  thread_local std::vector<ScoreSymbol> symbols;
  thread_local std::vector<ScoreCandidate> heap;
  symbols.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {spans[i].begin, spans[i].end, i - 1, i + 1 < n ? i + 1 : -1,
                  frozen != nullptr && (*frozen)[i] != 0};
  }
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || symbols[l].frozen || symbols[r].frozen) return;
    const std::string_view piece = text.substr(symbols[l].begin, symbols[r].end - symbols[l].begin);
    const int32_t id = vocab.find(piece);
    if (id < 0 || !mergeable[id]) return;
    heap.push_back({vocab.score(id), l, r, static_cast<uint32_t>(piece.size())});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i, i + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const ScoreCandidate top = heap.back();
    heap.pop_back();
    ScoreSymbol& left = symbols[top.left];
    ScoreSymbol& right = symbols[top.right];
    if (left.begin == left.end || right.begin == right.end || left.next != top.right ||
        right.end - left.begin != top.size) {
      continue;
    }
    left.end = right.end;
    right.begin = right.end;  // dead
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }
  spans.clear();
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    spans.push_back({symbols[i].begin, symbols[i].end});
}

}  // namespace qforge::tokenizer
