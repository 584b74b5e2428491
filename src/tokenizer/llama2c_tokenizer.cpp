// llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
// bytes. Encoding is run.c's encode(): a dummy " " prefix, one token per UTF-8 character (bytes
// + 3 when the character is not a piece), then repeatedly merge the adjacent pair whose
// concatenated pieces form the highest-scoring piece (leftmost on ties) — here with a heap
// instead of run.c's full rescan per merge, which gives the same merges in the same order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "qforge/tokenizer/tokenizer_formats.h"
#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"

namespace qforge {
namespace {

constexpr int32_t kLlama2cBos = 1;
constexpr int32_t kLlama2cEos = 2;
constexpr int32_t kLlama2cByteOffset = 3;  // <0x00> is id 3 in the SentencePiece export

class Llama2cTokenizer final : public tokenizer::VocabTokenizer {
 public:
  Llama2cTokenizer(std::string source, tokenizer::Vocab vocab)
      : VocabTokenizer(std::move(vocab)), source_(std::move(source)) {
    space_id_ = vocab_.find(" ");
    const int32_t n = vocab_.size();
    // Words can be encoded one at a time (and cached) when no piece has a space after another
    // character and no piece extends the BOS piece (so BOS never merges).
    const std::string_view bos = vocab_.piece(kLlama2cBos);
    bool bos_alone = true;
    for (int32_t id = 0; id < n; ++id) {
      if (id != kLlama2cBos && vocab_.piece(id).substr(0, bos.size()) == bos) bos_alone = false;
    }
    split_words_ =
        space_id_ >= 0 && bos_alone &&
        tokenizer::pieces_allow_space_split(
            n, [&](int32_t id) { return vocab_.piece(id); }, [](int32_t) { return true; }, " ");
    for (int32_t id = 0; id < n; ++id) {
      if (id == 0) vocab_.set_type(id, TokenType::kUnknown);
      if (id == kLlama2cBos || id == kLlama2cEos) vocab_.set_type(id, TokenType::kControl);
      const int b = tokenizer::parse_byte_piece(vocab_.piece(id));
      if (b >= 0 && id == b + kLlama2cByteOffset) vocab_.set_type(id, TokenType::kByte);
    }
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const override;
  // One character token per UTF-8 character of `text` (bytes + 3 when not a piece), appended.
  Status char_tokens(std::string_view text, std::vector<int32_t>& tokens) const;
  // run.c's merge loop over `tokens`, in place.
  void merge(std::vector<int32_t>& tokens) const;

  Result<std::string> decode_next(int32_t previous, int32_t id) const override {
    if (id < 0 || id >= vocab_.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: decode: id {} is outside the vocabulary [0, {})", source_, id,
                        vocab_.size());
    }
    if (id == kLlama2cBos || id == kLlama2cEos) return std::string();
    std::string_view piece = vocab_.piece(id);
    // run.c decode(): after BOS the leading space of the piece is dropped.
    if (previous == kLlama2cBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    if (vocab_.type(id) == TokenType::kByte) {
      return std::string(1, static_cast<char>(tokenizer::parse_byte_piece(piece)));
    }
    return std::string(piece);
  }

  int32_t bos_id() const override { return kLlama2cBos; }
  int32_t eos_id() const override { return kLlama2cEos; }
  std::string kind() const override { return "llama2c"; }

 private:
  std::string source_;
  int32_t space_id_ = -1;
  bool split_words_ = false;
  tokenizer::WordCache cache_;
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
};

struct Candidate {
  float score;
  int32_t left;
  int32_t left_id;
  int32_t right_id;
  int32_t merged_id;
  bool operator<(const Candidate& o) const {
    return score != o.score ? score < o.score : left > o.left;
  }
};

Status Llama2cTokenizer::char_tokens(std::string_view text, std::vector<int32_t>& tokens) const {
  // run.c groups a byte with up to 3 following continuation bytes (10xxxxxx) into one lookup.
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) start = i;
    const size_t len = i + 1 - start;
    if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 &&
        len < 4) {
      continue;
    }
    const int32_t id = vocab_.find(text.substr(start, len));
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (size_t k = start; k <= i; ++k) {
        const int32_t byte_id = static_cast<unsigned char>(text[k]) + kLlama2cByteOffset;
        if (byte_id >= vocab_.size()) {
          return make_error(ErrorCode::kInvalidArgument,
                            "{}: encode: byte 0x{:02X} has no piece and the vocabulary of {} "
                            "tokens has no byte-fallback id {}",
                            source_, static_cast<unsigned char>(text[k]), vocab_.size(), byte_id);
        }
        tokens.push_back(byte_id);
      }
    }
    start = i + 1;
  }
  return ok_status();
}

void Llama2cTokenizer::merge(std::vector<int32_t>& tokens) const {
  const auto n = static_cast<int32_t>(tokens.size());
  if (n < 2) return;
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  thread_local std::string joined;
  symbols.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) symbols[i] = {tokens[i], i - 1, i + 1 < n ? i + 1 : -1};
  auto try_add = [&](int32_t l) {
    if (l < 0 || symbols[l].next < 0) return;
    const Symbol& a = symbols[l];
    const Symbol& b = symbols[a.next];
    joined.assign(vocab_.piece(a.id));
    joined.append(vocab_.piece(b.id));
    const int32_t id = vocab_.find(joined);
    // run.c starts from best_score = -1e10 and only takes strictly greater scores.
    if (id < 0 || !(vocab_.score(id) > -1e10f)) return;
    heap.push_back({vocab_.score(id), l, a.id, b.id, id});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.left];
    if (left.id != top.left_id || left.next < 0 || symbols[left.next].id != top.right_id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.merged_id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.left;
    try_add(left.prev);
    try_add(top.left);
  }
  tokens.clear();
  for (int32_t i = 0; i >= 0; i = symbols[i].next) tokens.push_back(symbols[i].id);
}

Result<std::vector<int32_t>> Llama2cTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> tokens;
  tokens.reserve(text.size() / 2 + 2);
  if (split_words_) {
    if (add_bos) tokens.push_back(kLlama2cBos);
    if (text.empty()) return tokens;
    // The dummy prefix is the piece " ": the same as a leading space character.
    std::string prefixed = " ";
    prefixed.append(text);
    thread_local std::vector<tokenizer::MatchRange> words;
    thread_local std::vector<int32_t> word_tokens;
    words.clear();
    tokenizer::split_words(prefixed, " ", words);
    for (const tokenizer::MatchRange& w : words) {
      const std::string_view word = std::string_view(prefixed).substr(w.begin, w.end - w.begin);
      if (cache_.lookup(word, tokens)) continue;
      word_tokens.clear();
      QF_TRY(char_tokens(word, word_tokens));
      merge(word_tokens);
      cache_.insert(word, word_tokens);
      tokens.insert(tokens.end(), word_tokens.begin(), word_tokens.end());
    }
    return tokens;
  }
  // run.c literally: BOS, dummy prefix and all characters in one merge loop.
  if (add_bos) tokens.push_back(kLlama2cBos);
  if (!text.empty()) {
    if (space_id_ >= 0) {
      tokens.push_back(space_id_);
    } else if (kLlama2cByteOffset + ' ' < vocab_.size()) {
      tokens.push_back(kLlama2cByteOffset + ' ');  // run.c would push -1 here
    }
  }
  QF_TRY(char_tokens(text, tokens));
  merge(tokens);
  return tokens;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_llama2c_tokenizer(std::span<const std::byte> bytes,
                                                           const std::string& source,
                                                           int64_t vocab_size_hint) {
  auto read_i32 = [&](size_t at) {
    int32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  if (bytes.size() > kMaxTokenizerFileBytes) {
    return make_error(ErrorCode::kFormat, "{}: {} bytes is larger than the {} byte limit", source,
                      bytes.size(), kMaxTokenizerFileBytes);
  }
  if (bytes.size() < 4) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} bytes is too short for a llama2.c tokenizer (int32 "
                      "max_token_length, then tokens)",
                      source, bytes.size());
  }
  if (vocab_size_hint < 0 || vocab_size_hint > kMaxVocabSize) {
    return make_error(ErrorCode::kInvalidArgument, "{}: vocab_size_hint {} is outside [0, {}]",
                      source, vocab_size_hint, kMaxVocabSize);
  }
  const int32_t max_token_length = read_i32(0);
  if (max_token_length <= 0 || max_token_length > kMaxPieceBytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: field max_token_length is {}, expected 1..{} (not a llama2.c "
                      "tokenizer.bin?)",
                      source, max_token_length, kMaxPieceBytes);
  }
  // Each token takes at least 8 bytes: the count the file can hold bounds every allocation.
  const uint64_t max_tokens = (bytes.size() - 4) / 8;
  if (vocab_size_hint > 0 && static_cast<uint64_t>(vocab_size_hint) > max_tokens) {
    return make_error(ErrorCode::kFormat,
                      "{}: the model's vocab_size {} needs at least {} bytes but the file has {} "
                      "(truncated, or the tokenizer of another model?)",
                      source, vocab_size_hint, 4 + 8 * vocab_size_hint, bytes.size());
  }
  std::vector<std::pair<size_t, size_t>> spans;  // piece [offset, length)
  std::vector<float> scores;
  size_t pos = 4;
  while (pos < bytes.size() &&
         (vocab_size_hint == 0 || static_cast<int64_t>(spans.size()) < vocab_size_hint)) {
    const size_t id = spans.size();
    if (static_cast<int64_t>(id) >= kMaxVocabSize) {
      return make_error(ErrorCode::kFormat, "{}: more than {} tokens", source, kMaxVocabSize);
    }
    if (bytes.size() - pos < 8) {
      return make_error(ErrorCode::kFormat,
                        "{}: token {} at byte {}: needs 8 bytes for score and length, {} left "
                        "(truncated file?)",
                        source, id, pos, bytes.size() - pos);
    }
    float score;
    std::memcpy(&score, bytes.data() + pos, 4);
    const int32_t len = read_i32(pos + 4);
    pos += 8;
    if (!std::isfinite(score)) {
      return make_error(ErrorCode::kFormat,
                        "{}: token {}: field score is {}, expected a finite "
                        "number",
                        source, id, score);
    }
    if (len < 0 || len > max_token_length || static_cast<size_t>(len) > bytes.size() - pos) {
      return make_error(ErrorCode::kFormat,
                        "{}: token {} at byte {}: field length is {}, expected 0..{} "
                        "(max_token_length) and at most the {} bytes left",
                        source, id, pos - 4, len, max_token_length, bytes.size() - pos);
    }
    spans.emplace_back(pos, static_cast<size_t>(len));
    scores.push_back(score);
    pos += len;
  }
  if (vocab_size_hint > 0 && static_cast<int64_t>(spans.size()) < vocab_size_hint) {
    return make_error(ErrorCode::kFormat, "{}: has {} tokens, the model's vocab_size is {}", source,
                      spans.size(), vocab_size_hint);
  }
  if (pos != bytes.size()) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} bytes left after token {} (the model's vocab_size {} is smaller "
                      "than the tokenizer's?)",
                      source, bytes.size() - pos, spans.size(), vocab_size_hint);
  }
  if (spans.size() < 3) {
    return make_error(ErrorCode::kFormat,
                      "{}: has {} tokens; llama2.c needs at least <unk>, <s>, </s> (ids 0..2)",
                      source, spans.size());
  }
  tokenizer::Vocab vocab;
  vocab.resize(static_cast<int32_t>(spans.size()));
  const auto* base = reinterpret_cast<const char*>(bytes.data());
  for (size_t id = 0; id < spans.size(); ++id) {
    vocab.set(static_cast<int32_t>(id), std::string_view(base + spans[id].first, spans[id].second),
              TokenType::kNormal, scores[id]);
  }
  vocab.build_index();
  return std::unique_ptr<Tokenizer>(new Llama2cTokenizer(source, std::move(vocab)));
}

}  // namespace qforge
