// HfTokenizer encode/decode: added tokens are matched first (leftmost-longest, never split),
// each remaining segment is normalized, pre-tokenized and BPE-merged (pre-token results cached),
// then the post-processor template adds BOS/EOS. Decoding runs the decoder chain per token.
#include <algorithm>
#include <cstring>

#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/utf8.h"

namespace qforge::tokenizer {
namespace {

bool is_word_char(uint32_t cp) {
  // Approximates Rust's char::is_alphanumeric plus '_': ASCII alnum, and any non-ASCII letter.
  return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
         cp == '_' || cp >= 0x80;
}

bool is_space_byte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

HfTokenizer::HfTokenizer(HfTokenizerConfig config) : config_(std::move(config)) {}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::create(HfTokenizerConfig config) {
  std::unique_ptr<HfTokenizer> t(new HfTokenizer(std::move(config)));
  const HfTokenizerConfig& c = t->config_;
  bool byte_level = false;
  bool spm_like = c.byte_fallback;
  for (size_t i = 0; i < c.pre_tokenizers.size(); ++i) {
    const PreTokenizerStep& step = c.pre_tokenizers[i];
    if (step.kind == PreTokenizerStep::Kind::kByteLevel) {
      if (i + 1 != c.pre_tokenizers.size()) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: pre_tokenizer: ByteLevel must be the last pre-tokenizer (found at "
                          "position {} of {})",
                          c.source, i, c.pre_tokenizers.size());
      }
      byte_level = true;
      // A ByteLevel without prefix space or regex only maps bytes: done at the model input.
      if (!step.add_prefix_space && !step.use_regex) continue;
    }
    if (step.kind == PreTokenizerStep::Kind::kMetaspace) spm_like = true;
    t->steps_before_model_.push_back(step);
  }
  for (const DecoderStep& d : c.decoders) byte_level |= d.kind == DecoderStep::Kind::kByteLevel;
  for (const NormalizerStep& n : c.normalizers) {
    spm_like |= n.kind == NormalizerStep::Kind::kPrepend;
  }
  t->byte_level_model_input_ = byte_level && !c.pre_tokenizers.empty() &&
                               c.pre_tokenizers.back().kind == PreTokenizerStep::Kind::kByteLevel;
  t->kind_ = byte_level ? "hf-bpe-bytelevel" : spm_like ? "hf-bpe-sentencepiece" : "hf-bpe";

  const ByteLevelMap& map = ByteLevelMap::get();
  for (int b = 0; b < 256; ++b) {
    t->byte_symbol_[b] = c.vocab.find(map.utf8(static_cast<uint8_t>(b)));
    t->byte_fallback_id_[b] = c.vocab.find(fmt::format("<0x{:02X}>", b));
  }
  for (size_t i = 0; i < c.added_tokens.size(); ++i) {
    const std::string& content = c.added_tokens[i].content;
    if (content.empty()) continue;
    t->added_by_first_byte_[static_cast<unsigned char>(content[0])].push_back(
        static_cast<uint32_t>(i));
  }
  for (auto& list : t->added_by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](uint32_t a, uint32_t b) {
      return c.added_tokens[a].content.size() > c.added_tokens[b].content.size();
    });
  }
  t->prepare_decoding();
  t->token_types_.assign(c.vocab.size(), TokenType::kNormal);
  for (int32_t id = 0; id < c.vocab.size(); ++id) {
    if (id == c.unk_id) t->token_types_[id] = TokenType::kUnknown;
    if (c.byte_fallback && c.vocab.present(id) && parse_byte_piece(c.vocab.piece(id)) >= 0) {
      t->token_types_[id] = TokenType::kByte;
    }
  }
  for (const AddedToken& a : c.added_tokens) {
    t->token_types_[a.id] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  if (spm_like && !byte_level) {
    std::string space = "\xE2\x96\x81";
    for (const PreTokenizerStep& step : c.pre_tokenizers) {
      if (step.kind == PreTokenizerStep::Kind::kMetaspace) space = step.replacement;
    }
    std::vector<uint8_t> added(c.vocab.size(), 0);
    for (const AddedToken& a : c.added_tokens) added[a.id] = 1;
    if (pieces_allow_space_split(
            c.vocab.size(), [&](int32_t id) { return c.vocab.piece(id); },
            [&](int32_t id) { return c.vocab.present(id) && !added[id]; }, space)) {
      t->split_space_ = space;
    }
  }
  return t;
}

void HfTokenizer::prepare_decoding() {
  const HfTokenizerConfig& c = config_;
  const int32_t n = c.vocab.size();
  token_skipped_.assign(n, 0);
  for (const AddedToken& a : c.added_tokens) {
    if (a.special) token_skipped_[a.id] = 1;
  }
  join_with_space_ = !c.has_decoder;
  bool fused = false;
  for (const DecoderStep& d : c.decoders) {
    if (d.kind == DecoderStep::Kind::kFuse || d.kind == DecoderStep::Kind::kByteLevel) fused = true;
    if (d.kind == DecoderStep::Kind::kStrip && fused) {
      strip_char_ = d.text;
      strip_start_ = d.strip_start;
    }
    if (d.kind == DecoderStep::Kind::kMetaspace && d.prepend_scheme != PrependScheme::kNever) {
      metaspace_first_ = d.text;
    }
  }
  token_text_.assign(n, std::string());
  const ByteLevelMap& map = ByteLevelMap::get();
  std::string a, b;
  for (int32_t id = 0; id < n; ++id) {
    if (!c.vocab.present(id) || token_skipped_[id]) continue;
    a.assign(c.vocab.piece(id));
    const size_t limit = a.size() * kMaxNormalizerGrowth + 4096;  // for the whole chain
    for (const DecoderStep& d : c.decoders) {
      b.clear();
      switch (d.kind) {
        case DecoderStep::Kind::kReplace:
          // Bounded like the normalizers: a decoder Replace chain cannot blow a piece up.
          if (!d.pattern->replace_all(a, d.text, b, limit).ok()) {
            b = a;
          }
          break;
        case DecoderStep::Kind::kByteFallback: {
          const int byte = parse_byte_piece(a);
          if (byte >= 0) {
            b.push_back(static_cast<char>(byte));
          } else {
            b = a;
          }
          break;
        }
        case DecoderStep::Kind::kFuse:
          b = a;
          break;
        case DecoderStep::Kind::kStrip:
          b = a;
          if (!fused) {
            // Strip before any Fuse applies to every token.
            for (int k = 0; k < d.strip_start && b.compare(0, d.text.size(), d.text) == 0; ++k) {
              b.erase(0, d.text.size());
            }
          }
          break;
        case DecoderStep::Kind::kByteLevel: {
          // As HF: a token whose characters are all in the byte map becomes those bytes; any
          // other token (e.g. a non-byte-level added token) is kept as it is.
          bool all_mapped = true;
          for (size_t pos = 0; pos < a.size() && all_mapped;) {
            all_mapped = map.byte_of(utf8_decode(a, pos)) >= 0;
          }
          if (all_mapped) {
            map.decode(a, b);
          } else {
            b = a;
          }
          break;
        }
        case DecoderStep::Kind::kMetaspace: {
          size_t pos = 0;
          while (pos < a.size()) {
            if (a.compare(pos, d.text.size(), d.text) == 0) {
              b.push_back(' ');
              pos += d.text.size();
            } else {
              b.push_back(a[pos++]);
            }
          }
          break;
        }
      }
      std::swap(a, b);
    }
    token_text_[id] = a;
  }
}

std::string HfTokenizer::piece(int32_t id) const {
  if (!config_.vocab.present(id)) return {};
  return std::string(config_.vocab.piece(id));
}

TokenType HfTokenizer::token_type(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(token_types_.size()) ? token_types_[id]
                                                                   : TokenType::kNormal;
}

bool HfTokenizer::find_added_token(std::string_view text, size_t from, size_t& begin, size_t& end,
                                   size_t& index) const {
  if (config_.added_tokens.empty()) return false;
  for (size_t p = from; p < text.size(); ++p) {
    const auto& candidates = added_by_first_byte_[static_cast<unsigned char>(text[p])];
    for (uint32_t i : candidates) {
      const AddedToken& a = config_.added_tokens[i];
      if (text.compare(p, a.content.size(), a.content) != 0) continue;
      size_t b = p, e = p + a.content.size();
      if (a.single_word) {
        if (b > 0) {
          size_t q = b - 1;
          while (q > 0 && (static_cast<unsigned char>(text[q]) & 0xC0) == 0x80) --q;
          size_t qq = q;
          if (is_word_char(utf8_decode(text, qq))) continue;
        }
        if (e < text.size()) {
          size_t q = e;
          if (is_word_char(utf8_decode(text, q))) continue;
        }
      }
      if (a.lstrip) {
        while (b > from && is_space_byte(text[b - 1])) --b;
      }
      if (a.rstrip) {
        while (e < text.size() && is_space_byte(text[e])) ++e;
      }
      begin = b;
      end = e;
      index = i;
      return true;
    }
  }
  return false;
}

Result<std::vector<int32_t>> HfTokenizer::encode(std::string_view text, bool add_bos) const {
  const size_t bad = utf8_find_invalid(text);
  if (bad != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: encode: text is not valid UTF-8 at byte {} (value 0x{:02X}); "
                      "tokenizer.json tokenizers take UTF-8 text",
                      config_.source, bad, static_cast<unsigned char>(text[bad]));
  }
  if (text.size() > UINT32_MAX / 4) {
    return make_error(ErrorCode::kInvalidArgument, "{}: encode: text of {} bytes is too long",
                      config_.source, text.size());
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_bos)
    ids.insert(ids.end(), config_.template_prefix.begin(), config_.template_prefix.end());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t begin = 0, end = 0, index = 0;
    const bool found = find_added_token(text, pos, begin, end, index);
    const size_t segment_end = found ? begin : text.size();
    if (segment_end > pos) {
      QF_TRY(encode_segment(text.substr(pos, segment_end - pos), pos == 0, ids));
    }
    if (!found) break;
    ids.push_back(config_.added_tokens[index].id);
    pos = end;
  }
  if (add_bos)
    ids.insert(ids.end(), config_.template_suffix.begin(), config_.template_suffix.end());
  return ids;
}

Status HfTokenizer::encode_segment(std::string_view segment, bool at_origin,
                                   std::vector<int32_t>& ids) const {
  thread_local std::string normalized;
  thread_local PreTokens a, b;
  std::string_view text = segment;
  if (!config_.normalizers.empty()) {
    normalized.clear();
    QF_TRY(apply_normalizers(config_.normalizers, segment, normalized));
    text = normalized;
  }
  if (text.empty()) return ok_status();
  if (text.size() > UINT32_MAX / 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: encode: a text segment normalizes to {} bytes, more than the {} a "
                      "segment may have",
                      config_.source, text.size(), UINT32_MAX / 2);
  }
  a.text.assign(text);
  a.pieces.assign(1, MatchRange{0, static_cast<uint32_t>(text.size())});
  a.piece0_at_origin = at_origin;
  for (const PreTokenizerStep& step : steps_before_model_) {
    QF_TRY(apply_pre_tokenizer(step, a, b));
    std::swap(a, b);
  }
  for (const MatchRange& p : a.pieces) {
    QF_TRY(encode_word(std::string_view(a.text).substr(p.begin, p.end - p.begin), ids));
  }
  return ok_status();
}

Status HfTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return ok_status();
  if (word.size() > WordCache::kMaxWordBytes && !split_space_.empty()) {
    thread_local std::vector<MatchRange> parts;
    parts.clear();
    split_words(word, split_space_, parts);
    if (parts.size() > 1) {
      // `parts` is reused by the nested calls: copy the ranges out first.
      const std::vector<MatchRange> ranges = parts;
      for (const MatchRange& r : ranges) {
        QF_TRY(encode_word(word.substr(r.begin, r.end - r.begin), ids));
      }
      return ok_status();
    }
  }
  if (cache_.lookup(word, ids)) return ok_status();
  const size_t first = ids.size();
  QF_TRY(encode_word_uncached(word, ids));
  cache_.insert(word, std::span<const int32_t>(ids).subspan(first));
  return ok_status();
}

Status HfTokenizer::encode_word_uncached(std::string_view word, std::vector<int32_t>& ids) const {
  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  const Vocab& vocab = config_.vocab;
  int32_t whole = -1;
  if (config_.ignore_merges) {
    thread_local std::string mapped;
    std::string_view model_word = word;
    if (byte_level_model_input_) {
      mapped.clear();
      ByteLevelMap::get().encode(word, mapped);
      model_word = mapped;
    }
    whole = vocab.find(model_word);
  }
  if (whole >= 0) {
    symbols.push_back(whole);
  } else {
    // HF BPE::merge_word: one symbol per character; a character missing from the vocabulary
    // becomes its <0xNN> pieces (byte_fallback), else <unk> (fused when fuse_unk), else nothing.
    bool pending_unk = false;
    auto add_char = [&](std::string_view ch, int32_t id) {
      if (id >= 0) {
        if (pending_unk) symbols.push_back(config_.unk_id);
        pending_unk = false;
        symbols.push_back(id);
        return;
      }
      if (config_.byte_fallback) {
        bool all = true;
        for (char c : ch) all &= byte_fallback_id_[static_cast<unsigned char>(c)] >= 0;
        if (all) {
          if (pending_unk) symbols.push_back(config_.unk_id);
          pending_unk = false;
          for (char c : ch) symbols.push_back(byte_fallback_id_[static_cast<unsigned char>(c)]);
          return;
        }
      }
      if (config_.unk_id < 0) return;  // HF drops characters it cannot represent
      if (pending_unk && !config_.fuse_unk) symbols.push_back(config_.unk_id);
      pending_unk = true;
    };
    if (byte_level_model_input_) {
      const ByteLevelMap& map = ByteLevelMap::get();
      for (char c : word) {
        const auto b = static_cast<uint8_t>(c);
        add_char(map.utf8(b), byte_symbol_[b]);
      }
    } else {
      for (size_t pos = 0; pos < word.size();) {
        const size_t len = utf8_char_length(word, pos);
        const std::string_view ch = word.substr(pos, len);
        pos += len;
        add_char(ch, vocab.find(ch));
      }
    }
    if (pending_unk) symbols.push_back(config_.unk_id);
    bpe_merge_by_rank(symbols, config_.merges);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  return ok_status();
}

Result<std::string> HfTokenizer::decode_next(int32_t previous, int32_t id) const {
  if (!config_.vocab.present(id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: decode: id {} is not a token (vocabulary has ids 0..{})", config_.source,
                      id, config_.vocab.size() - 1);
  }
  if (token_skipped_[id]) return std::string();
  const bool first = previous < 0 || (config_.vocab.present(previous) && token_skipped_[previous]);
  if (!first) {
    if (join_with_space_) return " " + token_text_[id];
    return token_text_[id];
  }
  std::string text = token_text_[id];
  if (!metaspace_first_.empty()) {
    // HF's Metaspace decoder drops every replacement character of the first token; token_text_
    // has them as spaces already, so recompute from the piece.
    text.clear();
    std::string_view piece = config_.vocab.piece(id);
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, metaspace_first_.size(), metaspace_first_) == 0) {
        pos += metaspace_first_.size();
      } else {
        text.push_back(piece[pos++]);
      }
    }
  }
  for (int k = 0; k < strip_start_ && !strip_char_.empty() &&
                  text.compare(0, strip_char_.size(), strip_char_) == 0;
       ++k) {
    text.erase(0, strip_char_.size());
  }
  return text;
}

Result<std::vector<std::string>> HfTokenizer::pre_tokenize(std::string_view text) const {
  std::string normalized;
  QF_TRY(apply_normalizers(config_.normalizers, text, normalized));
  PreTokens a, b;
  a.text = normalized;
  if (!a.text.empty()) a.pieces.push_back({0, static_cast<uint32_t>(a.text.size())});
  a.piece0_at_origin = true;
  for (const PreTokenizerStep& step : steps_before_model_) {
    QF_TRY(apply_pre_tokenizer(step, a, b));
    std::swap(a, b);
  }
  std::vector<std::string> out;
  for (const MatchRange& p : a.pieces) out.push_back(a.text.substr(p.begin, p.end - p.begin));
  return out;
}

}  // namespace qforge::tokenizer
