// export_tokenizer_json(): a SentencePiece-like vocabulary (pieces with scores) as a Hugging Face
// tokenizer.json. Merges follow transformers' SentencePieceExtractor: every split of a piece into
// two pieces, ordered by the merged piece's score (then by the ids of the halves). The byte-level
// style re-spells the pieces through the GPT-2 byte map and adds the merges that build multi-byte
// characters from bytes first.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>

#include "qforge/tokenizer/tokenizer_formats.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace qforge {
namespace {

using OJson = nlohmann::ordered_json;
// The vocabulary object: a std::map-backed json (ordered_json looks keys up linearly, which is
// quadratic for 100k pieces); pieces come out sorted, ids are explicit anyway.
using VocabJson = nlohmann::json;
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

struct Entry {
  std::string piece;  // SentencePiece spelling ("▁the")
  TokenType type;
  float score;
};

struct MergeCandidate {
  std::string left, right;
  float score;
  int32_t left_id, right_id;
};

bool mergeable(TokenType t) {
  return t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUnused;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    if (s.compare(pos, from.size(), from) == 0) {
      out.append(to);
      pos += from.size();
    } else {
      out.push_back(s[pos++]);
    }
  }
  return out;
}

// Pieces in SentencePiece spelling: llama2.c files store spaces as ' ' and <s>/</s> as "\n<s>\n".
std::vector<Entry> read_entries(const Tokenizer& t) {
  std::vector<Entry> entries(t.vocab_size());
  const bool llama2c = t.kind() == "llama2c";
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    Entry& e = entries[id];
    e.piece = t.piece(id);
    e.type = t.token_type(id);
    e.score = t.token_score(id);
    if (llama2c) {
      if (id == t.bos_id()) e.piece = "<s>";
      if (id == t.eos_id()) e.piece = "</s>";
      if (e.type == TokenType::kNormal) e.piece = replace_all(e.piece, " ", kSpaceSymbol);
    }
  }
  return entries;
}

// SentencePieceExtractor: all (left, right) splits of mergeable pieces into mergeable pieces.
std::vector<MergeCandidate> spm_merges(const std::vector<Entry>& entries,
                                       const std::unordered_map<std::string, int32_t>& ids) {
  std::vector<MergeCandidate> merges;
  for (int32_t id = 0; id < static_cast<int32_t>(entries.size()); ++id) {
    const Entry& e = entries[id];
    if (!mergeable(e.type)) continue;
    std::vector<MergeCandidate> local;
    for (size_t cut = tokenizer::utf8_char_length(e.piece, 0); cut < e.piece.size();
         cut += tokenizer::utf8_char_length(e.piece, cut)) {
      auto l = ids.find(e.piece.substr(0, cut));
      auto r = ids.find(e.piece.substr(cut));
      if (l == ids.end() || r == ids.end()) continue;
      if (!mergeable(entries[l->second].type) || !mergeable(entries[r->second].type)) continue;
      local.push_back({l->first, r->first, e.score, l->second, r->second});
    }
    std::sort(local.begin(), local.end(), [](const MergeCandidate& a, const MergeCandidate& b) {
      return std::tie(a.left_id, a.right_id) < std::tie(b.left_id, b.right_id);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(
      merges.begin(), merges.end(),
      [](const MergeCandidate& a, const MergeCandidate& b) { return a.score > b.score; });
  return merges;
}

OJson special_token_json(int32_t id, const std::string& content, bool special) {
  return OJson{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
               {"rstrip", false}, {"normalized", false}, {"special", special}};
}

OJson template_json(int32_t bos_id, const std::string& bos) {
  OJson single = OJson::array();
  OJson specials = OJson::object();
  if (bos_id >= 0) {
    single.push_back({{"SpecialToken", {{"id", bos}, {"type_id", 0}}}});
    specials[bos] = {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}};
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  OJson pair = single;
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", specials}};
}

OJson replace_json(std::string_view from, std::string_view to, bool regex = false) {
  return {{"type", "Replace"},
          {"pattern", {{regex ? "Regex" : "String", std::string(from)}}},
          {"content", std::string(to)}};
}

Result<std::string> export_spm(const Tokenizer& t, const std::vector<Entry>& entries,
                               bool add_dummy_prefix, bool remove_extra_whitespaces) {
  std::unordered_map<std::string, int32_t> ids;
  VocabJson vocab = VocabJson::object();
  OJson added = OJson::array();
  std::string unk;
  bool has_bytes = false;
  for (int32_t id = 0; id < static_cast<int32_t>(entries.size()); ++id) {
    const Entry& e = entries[id];
    if (!ids.emplace(e.piece, id).second) continue;  // duplicate spelling: the first id wins
    vocab[e.piece] = id;
    if (e.type == TokenType::kUnknown && unk.empty()) unk = e.piece;
    if (e.type == TokenType::kControl || e.type == TokenType::kUnknown) {
      added.push_back(special_token_json(id, e.piece, true));
    } else if (e.type == TokenType::kUserDefined) {
      added.push_back(special_token_json(id, e.piece, false));
    }
    has_bytes |= e.type == TokenType::kByte;
  }
  OJson merges = OJson::array();
  for (const MergeCandidate& m : spm_merges(entries, ids)) merges.push_back({m.left, m.right});

  OJson normalizers = OJson::array();
  if (remove_extra_whitespaces) {
    normalizers.push_back(replace_json("^ +| +$", "", true));
    normalizers.push_back(replace_json(" {2,}", " ", true));
  }
  if (add_dummy_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpaceSymbol}});
  normalizers.push_back(replace_json(" ", kSpaceSymbol));
  OJson decoders = OJson::array({replace_json(kSpaceSymbol, " ")});
  if (has_bytes) decoders.push_back({{"type", "ByteFallback"}});
  decoders.push_back({{"type", "Fuse"}});
  if (add_dummy_prefix) {
    decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  const int32_t bos = t.bos_id();
  OJson root = {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", added},
                {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
                {"pre_tokenizer", nullptr},
                {"post_processor", template_json(bos, bos >= 0 ? entries[bos].piece : "")},
                {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", unk.empty() ? OJson(nullptr) : OJson(unk)},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", has_bytes},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merges}}}};
  return root.dump(1);
}

Result<std::string> export_byte_level(const Tokenizer& t, const std::vector<Entry>& entries) {
  const tokenizer::ByteLevelMap& map = tokenizer::ByteLevelMap::get();
  std::vector<std::string> pieces;  // new id -> byte-level piece
  std::unordered_map<std::string, int32_t> new_ids;
  OJson added = OJson::array();
  auto add = [&](const std::string& piece) -> int32_t {
    auto [it, inserted] = new_ids.emplace(piece, static_cast<int32_t>(pieces.size()));
    if (inserted) pieces.push_back(piece);
    return it->second;
  };
  int32_t bos = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(entries.size()); ++id) {
    const Entry& e = entries[id];
    if (e.type != TokenType::kControl && e.type != TokenType::kUnknown) continue;
    const int32_t nid = add(e.piece);
    if (id == t.bos_id()) bos = nid;
    added.push_back(special_token_json(nid, e.piece, true));
  }
  for (int b = 0; b < 256; ++b) add(std::string(map.utf8(static_cast<uint8_t>(b))));
  // Byte-level spelling of each SentencePiece piece (▁ is a space byte).
  auto spell = [&](std::string_view spm) {
    std::string out;
    map.encode(replace_all(spm, kSpaceSymbol, " "), out);
    return out;
  };
  // Multi-byte characters are built from their bytes first (ranks before every other merge).
  OJson merges = OJson::array();
  std::vector<std::pair<std::string, std::string>> char_merges;
  std::unordered_map<std::string, int32_t> spm_ids;
  for (int32_t id = 0; id < static_cast<int32_t>(entries.size()); ++id) {
    const Entry& e = entries[id];
    if (!mergeable(e.type)) continue;
    spm_ids.emplace(e.piece, id);
    const std::string raw = replace_all(e.piece, kSpaceSymbol, " ");
    for (size_t pos = 0; pos < raw.size();) {
      const size_t len = tokenizer::utf8_char_length(raw, pos);
      std::string prefix(map.utf8(static_cast<uint8_t>(raw[pos])));
      for (size_t k = 1; k < len; ++k) {
        std::string next(map.utf8(static_cast<uint8_t>(raw[pos + k])));
        if (new_ids.find(prefix + next) == new_ids.end()) char_merges.emplace_back(prefix, next);
        prefix += next;
        add(prefix);
      }
      pos += len;
    }
  }
  for (const auto& [l, r] : char_merges) merges.push_back({l, r});
  for (int32_t id = 0; id < static_cast<int32_t>(entries.size()); ++id) {
    if (mergeable(entries[id].type)) add(spell(entries[id].piece));
  }
  for (const MergeCandidate& m : spm_merges(entries, spm_ids)) {
    std::string l = spell(m.left), r = spell(m.right);
    if (new_ids.count(l + r)) merges.push_back({std::move(l), std::move(r)});
  }
  VocabJson vocab = VocabJson::object();
  for (size_t id = 0; id < pieces.size(); ++id) vocab[pieces[id]] = id;
  OJson root = {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", added},
                {"normalizer", nullptr},
                {"pre_tokenizer",
                 {{"type", "ByteLevel"},
                  {"add_prefix_space", false},
                  {"trim_offsets", true},
                  {"use_regex", true}}},
                {"post_processor", template_json(bos, bos >= 0 ? pieces[bos] : "")},
                {"decoder",
                 {{"type", "ByteLevel"},
                  {"add_prefix_space", true},
                  {"trim_offsets", true},
                  {"use_regex", true}}},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merges}}}};
  return root.dump(1);
}

}  // namespace

Result<std::string> export_tokenizer_json(const Tokenizer& tokenizer, TokenizerJsonStyle style) {
  const std::string kind = tokenizer.kind();
  if (kind != "sentencepiece" && kind != "llama2c" && kind != "gguf-llama") {
    return make_error(ErrorCode::kUnsupported,
                      "export_tokenizer_json: a '{}' tokenizer has no piece scores to order merges "
                      "by (needs sentencepiece, llama2c or gguf-llama)",
                      kind);
  }
  const std::vector<Entry> entries = read_entries(tokenizer);
  // Normalizer options, observed: a dummy prefix shows as a leading space piece; collapsed
  // spaces as "a  b" decoding to "a b".
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> a, tokenizer.encode("a", false));
  const bool add_dummy_prefix =
      !a.empty() && (entries[a[0]].piece.compare(0, kSpaceSymbol.size(), kSpaceSymbol) == 0);
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> ab, tokenizer.encode("a  b", false));
  QF_ASSIGN_OR_RETURN(std::string ab_text, tokenizer.decode(ab));
  const bool remove_extra_whitespaces = ab_text == "a b";
  if (style == TokenizerJsonStyle::kByteLevelBpe) return export_byte_level(tokenizer, entries);
  return export_spm(tokenizer, entries, add_dummy_prefix, remove_extra_whitespaces);
}

}  // namespace qforge
