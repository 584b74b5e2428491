// WordCache and the exact word split for BPE (see word_cache.h).
#include "tokenizer/word_cache.h"

namespace qforge::tokenizer {

bool WordCache::lookup(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = map_.find(word);
  if (it == map_.end()) return false;
  const auto [offset, count] = it->second;
  out.insert(out.end(), ids_.begin() + offset, ids_.begin() + offset + count);
  return true;
}

void WordCache::insert(std::string_view word, std::span<const int32_t> ids) const {
  if (word.size() > kMaxWordBytes) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (map_.size() >= kMaxEntries) {
    map_.clear();
    ids_.clear();
  }
  const auto offset = static_cast<uint32_t>(ids_.size());
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  map_.emplace(std::string(word), std::make_pair(offset, static_cast<uint32_t>(ids.size())));
}

bool pieces_allow_space_split(int32_t n, const std::function<std::string_view(int32_t)>& piece,
                              const std::function<bool(int32_t)>& consider,
                              std::string_view space) {
  for (int32_t id = 0; id < n; ++id) {
    if (!consider(id)) continue;
    std::string_view p = piece(id);
    while (p.substr(0, space.size()) == space) p.remove_prefix(space.size());
    if (p.find(space) != std::string_view::npos) return false;
  }
  return true;
}

void split_words(std::string_view text, std::string_view space, std::vector<MatchRange>& out) {
  size_t start = 0;
  size_t pos = text.find(space);
  while (pos != std::string_view::npos) {
    // Cut before this space unless the text right before it is also a space.
    const bool after_space =
        pos >= space.size() && text.substr(pos - space.size(), space.size()) == space;
    if (pos > start && !after_space) {
      out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(pos)});
      start = pos;
    }
    pos = text.find(space, pos + space.size());
  }
  if (start < text.size()) {
    out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(text.size())});
  }
}

}  // namespace qforge::tokenizer
