// Stop strings over streamed text (internal to src/runtime): text is emitted once no stop string
// can still start inside it; a stop string cuts the text before its first occurrence.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qforge::runtime_internal {

// Text is emitted once no stop string can still start inside it.
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {}
  // Appends `piece`; returns the text that is now safe to emit; sets *stopped when a stop string
  // appeared (the text before it is returned, the rest dropped).
  std::string feed(std::string_view piece, bool* stopped) {
    pending_ += piece;
    size_t cut = std::string::npos;
    for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
    if (cut != std::string::npos) {
      *stopped = true;
      std::string out = pending_.substr(0, cut);
      pending_.clear();
      return out;
    }
    // Hold back the longest suffix that is a proper prefix of a stop string.
    size_t hold = 0;
    for (const std::string& s : stops_) {
      for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
        if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
          hold = len;
          break;
        }
      }
    }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }
  std::string flush() { return std::exchange(pending_, std::string()); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace qforge::runtime_internal
