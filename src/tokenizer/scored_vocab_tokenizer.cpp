// SPM-style BPE over a scored vocabulary (GGUF tokenizer.ggml.model "llama"): SentencePiece's
// bpe_model.cc as llama.cpp's llm_tokenizer_spm reimplements it. Spaces become "▁", a "▁" is
// prepended (add_space_prefix), characters merge by the score of the merged piece (highest
// first, leftmost on ties), and leftover characters fall back to <0xNN> byte pieces.
#include <algorithm>
#include <array>
#include <cmath>

#include "qforge/tokenizer/tokenizer_formats.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"

namespace qforge {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

class ScoredVocabTokenizer final : public tokenizer::VocabTokenizer {
 public:
  ScoredVocabTokenizer(std::string source, tokenizer::Vocab vocab, const ScoredVocab& options)
      : VocabTokenizer(std::move(vocab)),
        source_(std::move(source)),
        bos_id_(options.bos_id),
        eos_id_(options.eos_id),
        unk_id_(options.unk_id),
        add_space_prefix_(options.add_space_prefix),
        add_bos_(options.add_bos),
        add_eos_(options.add_eos) {
    const int32_t n = vocab_.size();
    mergeable_.assign(n, 0);
    byte_id_.fill(-1);
    for (int32_t id = 0; id < n; ++id) {
      const TokenType t = vocab_.type(id);
      mergeable_[id] =
          t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUnused;
      if (t == TokenType::kUserDefined) user_defined_.push_back(id);
      const int b = tokenizer::parse_byte_piece(vocab_.piece(id));
      if (b >= 0 && (t == TokenType::kByte || byte_id_[b] < 0)) byte_id_[b] = id;
    }
    split_words_ = tokenizer::pieces_allow_space_split(
        n, [&](int32_t id) { return vocab_.piece(id); },
        [&](int32_t id) { return mergeable_[id] != 0; }, kSpaceSymbol);
    // Longest user-defined pieces first, so matching is leftmost-longest; bucketed by first byte.
    std::sort(user_defined_.begin(), user_defined_.end(), [&](int32_t a, int32_t b) {
      return vocab_.piece(a).size() > vocab_.piece(b).size();
    });
    for (int32_t id : user_defined_) {
      if (!vocab_.piece(id).empty()) {
        user_defined_by_byte_[static_cast<unsigned char>(vocab_.piece(id)[0])].push_back(id);
      }
    }
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 2 + 2);
    if (add_bos && add_bos_ && bos_id_ >= 0) ids.push_back(bos_id_);
    // Split off user-defined pieces (llama.cpp always matches them, SentencePiece too).
    bool prev_special = true;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t match_at = text.size();
      int32_t match_id = -1;
      if (!user_defined_.empty()) {
        for (size_t p = pos; p < text.size() && match_id < 0; ++p) {
          for (int32_t id : user_defined_by_byte_[static_cast<unsigned char>(text[p])]) {
            const std::string_view piece = vocab_.piece(id);
            if (text.compare(p, piece.size(), piece) == 0) {
              match_at = p;
              match_id = id;
              break;
            }
          }
        }
      }
      if (match_at > pos) {
        QF_TRY(encode_fragment(text.substr(pos, match_at - pos), prev_special, ids));
        prev_special = false;
      }
      if (match_id < 0) break;
      ids.push_back(match_id);
      prev_special = true;
      pos = match_at + vocab_.piece(match_id).size();
    }
    if (add_bos && add_eos_ && eos_id_ >= 0) ids.push_back(eos_id_);
    return ids;
  }

  Result<std::string> decode_next(int32_t previous, int32_t id) const override {
    if (id < 0 || id >= vocab_.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: decode: id {} is outside the vocabulary [0, {})", source_, id,
                        vocab_.size());
    }
    const TokenType type = vocab_.type(id);
    if (type == TokenType::kControl) return std::string();
    if (type == TokenType::kUnknown) return std::string(" \xE2\x81\x87 ");  // " ⁇ "
    std::string_view piece = vocab_.piece(id);
    if (type == TokenType::kByte) {
      const int b = tokenizer::parse_byte_piece(piece);
      if (b >= 0) return std::string(1, static_cast<char>(b));
    }
    const bool first =
        previous < 0 || (previous < vocab_.size() && vocab_.type(previous) == TokenType::kControl);
    if (first && add_space_prefix_ && piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      piece.remove_prefix(kSpaceSymbol.size());
    }
    std::string out;
    out.reserve(piece.size());
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
        out.push_back(' ');
        pos += kSpaceSymbol.size();
      } else {
        out.push_back(piece[pos++]);
      }
    }
    return out;
  }

  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string kind() const override { return "gguf-llama"; }

 private:
  Status encode_fragment(std::string_view fragment, bool prev_special,
                         std::vector<int32_t>& ids) const {
    thread_local std::string text;
    text.clear();
    if (add_space_prefix_ && prev_special) text.append(kSpaceSymbol);
    for (char c : fragment) {
      if (c == ' ') {
        text.append(kSpaceSymbol);
      } else {
        text.push_back(c);
      }
    }
    if (text.size() > UINT32_MAX / 2) {
      return make_error(ErrorCode::kInvalidArgument, "{}: encode: text of {} bytes is too long",
                        source_, fragment.size());
    }
    thread_local std::vector<tokenizer::MatchRange> words;
    words.clear();
    // Word-by-word (cached) is exact when no piece has "▁" inside; invalid UTF-8 could make a
    // character straddle a cut, so it takes the whole-text path.
    if (split_words_ && tokenizer::utf8_find_invalid(text) == std::string_view::npos) {
      tokenizer::split_words(text, kSpaceSymbol, words);
    } else {
      words.push_back({0, static_cast<uint32_t>(text.size())});
    }
    for (const tokenizer::MatchRange& w : words) {
      const std::string_view word = std::string_view(text).substr(w.begin, w.end - w.begin);
      if (cache_.lookup(word, ids)) continue;
      const size_t first = ids.size();
      QF_TRY(encode_word(word, ids));
      cache_.insert(word, std::span<const int32_t>(ids).subspan(first));
    }
    return ok_status();
  }

  Status encode_word(std::string_view word, std::vector<int32_t>& ids) const {
    thread_local std::vector<tokenizer::TextSpan> spans;
    spans.clear();
    for (size_t pos = 0; pos < word.size();) {
      const size_t len = tokenizer::utf8_char_length(word, pos);
      spans.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + len)});
      pos += len;
    }
    tokenizer::bpe_merge_by_score(word, spans, vocab_, mergeable_);
    for (const tokenizer::TextSpan& s : spans) {
      const std::string_view piece = word.substr(s.begin, s.end - s.begin);
      const int32_t id = vocab_.find(piece);
      if (id >= 0 && mergeable_[id]) {
        ids.push_back(id);
        continue;
      }
      for (char c : piece) {
        const int32_t b = byte_id_[static_cast<unsigned char>(c)];
        if (b >= 0) {
          ids.push_back(b);
        } else if (unk_id_ >= 0) {
          ids.push_back(unk_id_);
          break;
        } else {
          return make_error(ErrorCode::kInvalidArgument,
                            "{}: encode: '{}' is not in the vocabulary, which has neither a "
                            "byte piece <0x{:02X}> nor an unknown token",
                            source_, piece, static_cast<unsigned char>(c));
        }
      }
    }
    return ok_status();
  }

  std::string source_;
  int32_t bos_id_, eos_id_, unk_id_;
  bool add_space_prefix_, add_bos_, add_eos_;
  std::vector<uint8_t> mergeable_;
  std::array<int32_t, 256> byte_id_{};
  std::vector<int32_t> user_defined_;
  std::array<std::vector<int32_t>, 256> user_defined_by_byte_;
  bool split_words_ = false;
  tokenizer::WordCache cache_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_scored_vocab_tokenizer(ScoredVocab v,
                                                               const std::string& source) {
  const size_t n = v.pieces.size();
  if (n == 0 || n > static_cast<size_t>(kMaxVocabSize)) {
    return make_error(ErrorCode::kFormat, "{}: vocabulary has {} tokens, expected 1..{}", source, n,
                      kMaxVocabSize);
  }
  if (v.scores.size() != n || v.types.size() != n) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} tokens but {} scores and {} token types (all three arrays must have "
                      "the same length)",
                      source, n, v.scores.size(), v.types.size());
  }
  const auto size = static_cast<int32_t>(n);
  for (const auto& [name, id] :
       {std::pair<const char*, int32_t>{"bos", v.bos_id}, {"eos", v.eos_id}, {"unk", v.unk_id}}) {
    if (id < -1 || id >= size) {
      return make_error(ErrorCode::kFormat, "{}: {} token id {} is outside [0, {})", source, name,
                        id, size);
    }
  }
  uint64_t total_bytes = 0;
  for (const std::string& p : v.pieces) total_bytes += p.size();
  if (total_bytes > kMaxTokenizerFileBytes) {
    return make_error(ErrorCode::kFormat, "{}: the pieces hold {} bytes, more than the {} allowed",
                      source, total_bytes, kMaxTokenizerFileBytes);
  }
  tokenizer::Vocab vocab;
  vocab.resize(size);
  for (int32_t id = 0; id < size; ++id) {
    const std::string& p = v.pieces[id];
    if (p.size() > static_cast<size_t>(kMaxPieceBytes)) {
      return make_error(ErrorCode::kFormat, "{}: token {} has {} bytes, more than {}", source, id,
                        p.size(), kMaxPieceBytes);
    }
    const auto t = static_cast<int>(v.types[id]);
    if (t < 1 || t > 6) {
      return make_error(ErrorCode::kFormat, "{}: token {} has type {}, expected 1..6", source, id,
                        t);
    }
    if (!std::isfinite(v.scores[id])) {
      return make_error(ErrorCode::kFormat, "{}: token {} has score {}, expected a finite number",
                        source, id, v.scores[id]);
    }
    vocab.set(id, p, v.types[id], v.scores[id]);
  }
  vocab.build_index();
  return std::unique_ptr<Tokenizer>(new ScoredVocabTokenizer(source, std::move(vocab), v));
}

}  // namespace qforge
