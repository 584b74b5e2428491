// tokenizer.json pipeline steps: normalizers (Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase,
// Strip) and pre-tokenizers (Split with its five delimiter behaviours, ByteLevel, Metaspace),
// following the semantics of Hugging Face tokenizers (normalizer/, pre_tokenizers/).
#include <algorithm>
#include <string>
#include <utility>

#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/unicode_normalize.h"
#include "tokenizer/utf8.h"

namespace qforge::tokenizer {
namespace {

// GPT-2's pre-tokenization regex, which the ByteLevel pre-tokenizer applies when use_regex.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const Pattern* gpt2_pattern() {
  static const Result<Pattern> pattern = Pattern::regex(kGpt2Regex);
  return pattern.ok() ? &pattern.value() : nullptr;
}

// Unicode White_Space (the property Rust's char::is_whitespace tests).
bool is_unicode_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string_view strip_whitespace(std::string_view s, bool left, bool right) {
  if (left) {
    size_t pos = 0;
    while (pos < s.size()) {
      size_t next = pos;
      if (!is_unicode_whitespace(utf8_decode(s, next))) break;
      pos = next;
    }
    s.remove_prefix(pos);
  }
  if (right) {
    while (!s.empty()) {
      size_t start = s.size() - 1;
      while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t pos = start;
      if (!is_unicode_whitespace(utf8_decode(s, pos))) break;
      s.remove_suffix(s.size() - start);
    }
  }
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

}  // namespace

void split_by_matches(const std::vector<MatchRange>& matches, uint32_t size, uint32_t base,
                      SplitBehavior behavior, bool invert, std::vector<MatchRange>& out) {
  struct Part {
    MatchRange range;
    bool is_match;
  };
  thread_local std::vector<Part> parts;
  thread_local std::vector<Part> merged;
  parts.clear();
  merged.clear();
  uint32_t prev = 0;
  for (const MatchRange& m : matches) {
    if (m.begin > prev) parts.push_back({{prev, m.begin}, invert});
    parts.push_back({m, !invert});
    prev = m.end;
  }
  if (prev < size) parts.push_back({{prev, size}, invert});

  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& p : parts) {
        if (!p.is_match) merged.push_back(p);
      }
      break;
    case SplitBehavior::kIsolated:
      merged = parts;
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !merged.empty()) {
          merged.back().range.end = p.range.end;
        } else {
          merged.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool next_match = false;
      for (size_t i = parts.size(); i-- > 0;) {
        const Part& p = parts[i];
        if (p.is_match && !next_match && !merged.empty()) {
          merged.back().range.begin = p.range.begin;
        } else {
          merged.push_back(p);
        }
        next_match = p.is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (size_t i = 0; i < parts.size(); ++i) {
        const Part& p = parts[i];
        if (i > 0 && p.is_match == previous_match) {
          merged.back().range.end = p.range.end;
        } else {
          merged.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
    }
  }
  for (const Part& p : merged) {
    if (p.range.end > p.range.begin) out.push_back({p.range.begin + base, p.range.end + base});
  }
}

Status apply_normalizers(const std::vector<NormalizerStep>& steps, std::string_view text,
                         std::string& out) {
  thread_local std::string a, b;
  a.assign(text);
  // Every step's output is bounded, not only the chain's: real normalizers grow text by a few
  // times at most (" " -> "\xE2\x96\x81" triples spaces; NFKD of U+FDFA gives 18 characters),
  // while chained Replace steps ("a" -> 1024 x "a") would multiply it without bound.
  const size_t limit =
      std::min<size_t>(text.size(), kMaxNormalizerInputBytes) * kMaxNormalizerGrowth + 4096;
  size_t index = 0;
  for (const NormalizerStep& step : steps) {
    b.clear();
    switch (step.kind) {
      case NormalizerStep::Kind::kPrepend:
        if (!a.empty()) b.append(step.text);
        b.append(a);
        break;
      case NormalizerStep::Kind::kReplace:
        QF_TRY(step.pattern->replace_all(a, step.text, b, limit)
                   .context(fmt::format("normalizer step {}", index)));
        break;
      case NormalizerStep::Kind::kNfc:
        QF_TRY(unicode_normalize(UnicodeForm::kNFC, a, b));
        break;
      case NormalizerStep::Kind::kNfd:
        QF_TRY(unicode_normalize(UnicodeForm::kNFD, a, b));
        break;
      case NormalizerStep::Kind::kNfkc:
        QF_TRY(unicode_normalize(UnicodeForm::kNFKC, a, b));
        break;
      case NormalizerStep::Kind::kNfkd:
        QF_TRY(unicode_normalize(UnicodeForm::kNFKD, a, b));
        break;
      case NormalizerStep::Kind::kLowercase:
        QF_TRY(unicode_lowercase(a, b));
        break;
      case NormalizerStep::Kind::kStrip:
        b.append(strip_whitespace(a, step.strip_left, step.strip_right));
        break;
    }
    if (b.size() > limit) {
      return make_error(ErrorCode::kFormat,
                        "normalizer step {} grows {} input bytes to {} bytes, past the limit of "
                        "{} ({}x the input; hostile tokenizer.json?)",
                        index, text.size(), b.size(), limit, kMaxNormalizerGrowth);
    }
    std::swap(a, b);
    ++index;
  }
  out.append(a);
  return ok_status();
}

Status apply_pre_tokenizer(const PreTokenizerStep& step, const PreTokens& in, PreTokens& out) {
  out.pieces.clear();
  out.text.clear();
  out.piece0_at_origin = false;
  thread_local std::vector<MatchRange> matches;
  switch (step.kind) {
    case PreTokenizerStep::Kind::kSplit: {
      out.text = in.text;
      for (const MatchRange& piece : in.pieces) {
        const std::string_view s =
            std::string_view(in.text).substr(piece.begin, piece.end - piece.begin);
        matches.clear();
        QF_TRY(step.pattern->find_all(s, matches));
        split_by_matches(matches, static_cast<uint32_t>(s.size()), piece.begin, step.behavior,
                         step.invert, out.pieces);
      }
      out.piece0_at_origin = in.piece0_at_origin && !out.pieces.empty() && !in.pieces.empty() &&
                             out.pieces[0].begin == in.pieces[0].begin;
      return ok_status();
    }
    case PreTokenizerStep::Kind::kByteLevel: {
      const Pattern* gpt2 = gpt2_pattern();
      if (gpt2 == nullptr) return make_error(ErrorCode::kInternal, "GPT-2 regex did not compile");
      // Build the (prefixed) pieces, then split each with the GPT-2 regex. The byte -> char map is
      // applied at the model input (HfTokenizer), which sees the raw bytes of each pre-token.
      for (size_t i = 0; i < in.pieces.size(); ++i) {
        const MatchRange& piece = in.pieces[i];
        std::string_view s = std::string_view(in.text).substr(piece.begin, piece.end - piece.begin);
        const auto begin = static_cast<uint32_t>(out.text.size());
        if (step.add_prefix_space && !starts_with(s, " ")) out.text.push_back(' ');
        out.text.append(s);
        const auto end = static_cast<uint32_t>(out.text.size());
        if (!step.use_regex) {
          out.pieces.push_back({begin, end});
          continue;
        }
        matches.clear();
        QF_TRY(gpt2->find_all(std::string_view(out.text).substr(begin, end - begin), matches));
        split_by_matches(matches, end - begin, begin, SplitBehavior::kIsolated, false, out.pieces);
      }
      out.piece0_at_origin = in.piece0_at_origin;
      return ok_status();
    }
    case PreTokenizerStep::Kind::kMetaspace: {
      for (size_t i = 0; i < in.pieces.size(); ++i) {
        const MatchRange& piece = in.pieces[i];
        std::string_view s = std::string_view(in.text).substr(piece.begin, piece.end - piece.begin);
        const auto begin = static_cast<uint32_t>(out.text.size());
        const bool at_origin = i == 0 && in.piece0_at_origin;
        const bool prepend = step.prepend_scheme == PrependScheme::kAlways ||
                             (step.prepend_scheme == PrependScheme::kFirst && at_origin);
        // The prefix check looks at the text after spaces became the replacement.
        const bool starts_replaced =
            starts_with(s, step.replacement) || (step.replacement != " " && starts_with(s, " "));
        if (prepend && !starts_replaced) out.text.append(step.replacement);
        for (char c : s) {
          if (c == ' ') {
            out.text.append(step.replacement);
          } else {
            out.text.push_back(c);
          }
        }
        const auto end = static_cast<uint32_t>(out.text.size());
        if (!step.split) {
          out.pieces.push_back({begin, end});
          continue;
        }
        matches.clear();
        QF_TRY(
            step.pattern->find_all(std::string_view(out.text).substr(begin, end - begin), matches));
        split_by_matches(matches, end - begin, begin, SplitBehavior::kMergedWithNext, false,
                         out.pieces);
      }
      out.piece0_at_origin = in.piece0_at_origin;
      return ok_status();
    }
  }
  return ok_status();
}

}  // namespace qforge::tokenizer
