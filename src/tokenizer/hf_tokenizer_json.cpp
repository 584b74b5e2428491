// tokenizer.json -> HfTokenizerConfig: every count, id and piece is checked before use (ids in
// range, merges naming vocabulary pieces, nesting depth, sizes), and every error names the file
// and the field. Component coverage: see docs/TOKENIZERS.md.
#include <algorithm>
#include <unordered_map>

#include "qforge/core/log.h"
#include "qforge/tokenizer/tokenizer_formats.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/json_util.h"

namespace qforge {
namespace {

using tokenizer::AddedToken;
using tokenizer::DecoderStep;
using tokenizer::HfTokenizerConfig;
using tokenizer::Json;
using tokenizer::JsonReader;
using tokenizer::NormalizerStep;
using tokenizer::Pattern;
using tokenizer::PrependScheme;
using tokenizer::PreTokenizerStep;
using tokenizer::SplitBehavior;

constexpr int64_t kMaxMerges = 1 << 24;
constexpr int64_t kMaxAddedTokens = 1 << 20;
constexpr int kMaxSequenceSteps = 64;

// {"String": "..."} or {"Regex": "..."}.
Result<Pattern> read_pattern(const JsonReader& r, const Json& obj, const std::string& path) {
  const Json* p = r.member(obj, "pattern");
  if (p == nullptr || !p->is_object()) {
    return r.error(path + ".pattern",
                   "is missing or not an object (expected {\"String\": ...} "
                   "or {\"Regex\": ...})");
  }
  if (const Json* s = r.member(*p, "String")) {
    if (!s->is_string()) return r.error(path + ".pattern.String", "is not a string");
    auto pattern = Pattern::literal(s->get<std::string>());
    if (!pattern.ok()) return r.error(path + ".pattern.String", pattern.error().message());
    return pattern;
  }
  if (const Json* s = r.member(*p, "Regex")) {
    if (!s->is_string()) return r.error(path + ".pattern.Regex", "is not a string");
    auto pattern = Pattern::regex(s->get<std::string>());
    if (!pattern.ok()) return r.error(path + ".pattern.Regex", pattern.error().message());
    return pattern;
  }
  return r.error(path + ".pattern", "has neither \"String\" nor \"Regex\"");
}

Result<std::string> read_type(const JsonReader& r, const Json& obj, const std::string& path) {
  QF_TRY(r.expect(obj, Json::value_t::object, path));
  return r.string(obj, "type", path + ".type", true, 64);
}

// Visits `obj`, flattening {"type": "Sequence", <list_key>: [...]}.
template <typename Fn>
Status for_each_step(const JsonReader& r, const Json& obj, const std::string& path,
                     const char* list_key, Fn&& fn, int depth = 0) {
  QF_ASSIGN_OR_RETURN(std::string type, read_type(r, obj, path));
  if (type != "Sequence") return fn(obj, type, path);
  if (depth > 4) return r.error(path, "nests Sequence more than 4 levels deep");
  const Json* list = r.member(obj, list_key);
  if (list == nullptr || !list->is_array()) {
    return r.error(path + "." + list_key, "is missing or not an array");
  }
  if (list->size() > kMaxSequenceSteps) {
    return r.error(path + "." + list_key,
                   fmt::format("has {} steps, more than {}", list->size(), kMaxSequenceSteps));
  }
  for (size_t i = 0; i < list->size(); ++i) {
    QF_TRY(for_each_step(r, (*list)[i], fmt::format("{}.{}[{}]", path, list_key, i), list_key, fn,
                         depth + 1));
  }
  return ok_status();
}

Result<PrependScheme> read_prepend_scheme(const JsonReader& r, const Json& obj,
                                          const std::string& path) {
  if (r.member(obj, "prepend_scheme") == nullptr) {
    QF_ASSIGN_OR_RETURN(bool add,
                        r.boolean(obj, "add_prefix_space", path + ".add_prefix_space", true));
    return add ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  QF_ASSIGN_OR_RETURN(std::string s,
                      r.string(obj, "prepend_scheme", path + ".prepend_scheme", true, 16));
  if (s == "always") return PrependScheme::kAlways;
  if (s == "first") return PrependScheme::kFirst;
  if (s == "never") return PrependScheme::kNever;
  return r.error(path + ".prepend_scheme",
                 fmt::format("is '{}', expected \"always\", \"first\" or \"never\"", s));
}

Status read_normalizers(const JsonReader& r, const Json& root, HfTokenizerConfig& c) {
  const Json* n = r.member(root, "normalizer");
  if (n == nullptr) return ok_status();
  return for_each_step(
      r, *n, "normalizer", "normalizers",
      [&](const Json& obj, const std::string& type, const std::string& path) -> Status {
        NormalizerStep step{};
        if (type == "Prepend") {
          step.kind = NormalizerStep::Kind::kPrepend;
          QF_ASSIGN_OR_RETURN(step.text, r.string(obj, "prepend", path + ".prepend", true, 1024));
        } else if (type == "Replace") {
          step.kind = NormalizerStep::Kind::kReplace;
          QF_ASSIGN_OR_RETURN(step.pattern, read_pattern(r, obj, path));
          QF_ASSIGN_OR_RETURN(step.text, r.string(obj, "content", path + ".content", true, 1024));
        } else if (type == "NFC") {
          step.kind = NormalizerStep::Kind::kNfc;
        } else if (type == "NFD") {
          step.kind = NormalizerStep::Kind::kNfd;
        } else if (type == "NFKC") {
          step.kind = NormalizerStep::Kind::kNfkc;
        } else if (type == "NFKD") {
          step.kind = NormalizerStep::Kind::kNfkd;
        } else if (type == "Lowercase") {
          step.kind = NormalizerStep::Kind::kLowercase;
        } else if (type == "Strip") {
          step.kind = NormalizerStep::Kind::kStrip;
          QF_ASSIGN_OR_RETURN(step.strip_left,
                              r.boolean(obj, "strip_left", path + ".strip_left", true));
          QF_ASSIGN_OR_RETURN(step.strip_right,
                              r.boolean(obj, "strip_right", path + ".strip_right", true));
        } else {
          return make_error(
              ErrorCode::kUnsupported,
              "{}: field '{}.type' is '{}': qforge supports the normalizers Sequence, "
              "Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip",
              r.source(), path, type);
        }
        c.normalizers.push_back(std::move(step));
        return ok_status();
      });
}

Status read_pre_tokenizers(const JsonReader& r, const Json& root, HfTokenizerConfig& c) {
  const Json* p = r.member(root, "pre_tokenizer");
  if (p == nullptr) return ok_status();
  return for_each_step(
      r, *p, "pre_tokenizer", "pretokenizers",
      [&](const Json& obj, const std::string& type, const std::string& path) -> Status {
        PreTokenizerStep step{};
        if (type == "Split") {
          step.kind = PreTokenizerStep::Kind::kSplit;
          QF_ASSIGN_OR_RETURN(step.pattern, read_pattern(r, obj, path));
          QF_ASSIGN_OR_RETURN(std::string behavior,
                              r.string(obj, "behavior", path + ".behavior", true, 32));
          static const std::pair<const char*, SplitBehavior> kBehaviors[] = {
              {"Removed", SplitBehavior::kRemoved},
              {"Isolated", SplitBehavior::kIsolated},
              {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
              {"MergedWithNext", SplitBehavior::kMergedWithNext},
              {"Contiguous", SplitBehavior::kContiguous}};
          bool known = false;
          for (const auto& [name, value] : kBehaviors) {
            if (behavior == name) {
              step.behavior = value;
              known = true;
            }
          }
          if (!known) {
            return r.error(path + ".behavior",
                           fmt::format("is '{}', expected Removed, Isolated, MergedWithPrevious, "
                                       "MergedWithNext or Contiguous",
                                       behavior));
          }
          QF_ASSIGN_OR_RETURN(step.invert, r.boolean(obj, "invert", path + ".invert", false));
        } else if (type == "ByteLevel") {
          step.kind = PreTokenizerStep::Kind::kByteLevel;
          QF_ASSIGN_OR_RETURN(step.add_prefix_space,
                              r.boolean(obj, "add_prefix_space", path + ".add_prefix_space", true));
          QF_ASSIGN_OR_RETURN(step.use_regex,
                              r.boolean(obj, "use_regex", path + ".use_regex", true));
        } else if (type == "Metaspace") {
          step.kind = PreTokenizerStep::Kind::kMetaspace;
          QF_ASSIGN_OR_RETURN(step.replacement,
                              r.string(obj, "replacement", path + ".replacement", true, 8));
          if (step.replacement.empty()) return r.error(path + ".replacement", "is empty");
          QF_ASSIGN_OR_RETURN(step.prepend_scheme, read_prepend_scheme(r, obj, path));
          QF_ASSIGN_OR_RETURN(step.split, r.boolean(obj, "split", path + ".split", true));
          QF_ASSIGN_OR_RETURN(step.pattern, Pattern::literal(step.replacement));
        } else if (type == "Digits") {
          step.kind = PreTokenizerStep::Kind::kSplit;
          QF_ASSIGN_OR_RETURN(bool individual, r.boolean(obj, "individual_digits",
                                                         path + ".individual_digits", false));
          QF_ASSIGN_OR_RETURN(step.pattern, Pattern::regex("\\p{N}"));
          step.behavior = individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
        } else if (type == "Whitespace") {
          step.kind = PreTokenizerStep::Kind::kSplit;
          QF_ASSIGN_OR_RETURN(step.pattern, Pattern::regex("\\w+|[^\\w\\s]+"));
          step.behavior = SplitBehavior::kRemoved;
          step.invert = true;
        } else if (type == "WhitespaceSplit") {
          step.kind = PreTokenizerStep::Kind::kSplit;
          QF_ASSIGN_OR_RETURN(step.pattern, Pattern::regex("\\s+"));
          step.behavior = SplitBehavior::kRemoved;
        } else {
          return make_error(ErrorCode::kUnsupported,
                            "{}: field '{}.type' is '{}': qforge supports the pre-tokenizers "
                            "Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace, "
                            "WhitespaceSplit",
                            r.source(), path, type);
        }
        c.pre_tokenizers.push_back(std::move(step));
        return ok_status();
      });
}

Status read_decoders(const JsonReader& r, const Json& root, HfTokenizerConfig& c) {
  const Json* d = r.member(root, "decoder");
  if (d == nullptr) return ok_status();
  c.has_decoder = true;
  return for_each_step(
      r, *d, "decoder", "decoders",
      [&](const Json& obj, const std::string& type, const std::string& path) -> Status {
        DecoderStep step{};
        if (type == "Replace") {
          step.kind = DecoderStep::Kind::kReplace;
          QF_ASSIGN_OR_RETURN(step.pattern, read_pattern(r, obj, path));
          QF_ASSIGN_OR_RETURN(step.text, r.string(obj, "content", path + ".content", true, 1024));
        } else if (type == "ByteFallback") {
          step.kind = DecoderStep::Kind::kByteFallback;
        } else if (type == "Fuse") {
          step.kind = DecoderStep::Kind::kFuse;
        } else if (type == "Strip") {
          step.kind = DecoderStep::Kind::kStrip;
          QF_ASSIGN_OR_RETURN(step.text, r.string(obj, "content", path + ".content", true, 8));
          QF_ASSIGN_OR_RETURN(int64_t start, r.integer(obj, "start", path + ".start", 0, 0, 64));
          QF_ASSIGN_OR_RETURN(int64_t stop, r.integer(obj, "stop", path + ".stop", 0, 0, 64));
          if (stop != 0) {
            return make_error(
                ErrorCode::kUnsupported,
                "{}: field '{}.stop' is {}: a Strip decoder that strips the end of the "
                "text cannot stream token by token (only stop = 0 is supported)",
                r.source(), path, stop);
          }
          if (step.text.empty()) return r.error(path + ".content", "is empty");
          step.strip_start = static_cast<int>(start);
        } else if (type == "ByteLevel") {
          step.kind = DecoderStep::Kind::kByteLevel;
        } else if (type == "Metaspace") {
          step.kind = DecoderStep::Kind::kMetaspace;
          QF_ASSIGN_OR_RETURN(step.text,
                              r.string(obj, "replacement", path + ".replacement", true, 8));
          if (step.text.empty()) return r.error(path + ".replacement", "is empty");
          QF_ASSIGN_OR_RETURN(step.prepend_scheme, read_prepend_scheme(r, obj, path));
        } else {
          return make_error(ErrorCode::kUnsupported,
                            "{}: field '{}.type' is '{}': qforge supports the decoders Sequence, "
                            "Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace",
                            r.source(), path, type);
        }
        c.decoders.push_back(std::move(step));
        return ok_status();
      });
}

Result<int32_t> checked_id(const JsonReader& r, const Json& v, const std::string& path,
                           int32_t vocab_size) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab_size) {
    return r.error(path, fmt::format("is {}, expected a token id in [0, {})",
                                     v.dump().substr(0, 40), vocab_size));
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

Status read_post_processor(const JsonReader& r, const Json& root, HfTokenizerConfig& c) {
  const Json* p = r.member(root, "post_processor");
  if (p == nullptr) return ok_status();
  const int32_t n = c.vocab.size();
  return for_each_step(
      r, *p, "post_processor", "processors",
      [&](const Json& obj, const std::string& type, const std::string& path) -> Status {
        if (type == "ByteLevel") return ok_status();  // offsets only
        if (type == "TemplateProcessing") {
          const Json* single = r.member(obj, "single");
          if (single == nullptr || !single->is_array()) {
            return r.error(path + ".single", "is missing or not an array");
          }
          const Json* specials = r.member(obj, "special_tokens");
          c.template_prefix.clear();
          c.template_suffix.clear();
          bool seen_sequence = false;
          for (size_t i = 0; i < single->size(); ++i) {
            const Json& item = (*single)[i];
            const std::string item_path = fmt::format("{}.single[{}]", path, i);
            if (r.member(item, "Sequence") != nullptr) {
              seen_sequence = true;
              continue;
            }
            const Json* st = r.member(item, "SpecialToken");
            if (st == nullptr)
              return r.error(item_path, "is neither {\"Sequence\"} nor {\"SpecialToken\"}");
            QF_ASSIGN_OR_RETURN(std::string name,
                                r.string(*st, "id", item_path + ".SpecialToken.id", true, 1024));
            const Json* entry = specials != nullptr ? r.member(*specials, name.c_str()) : nullptr;
            const Json* ids = entry != nullptr ? r.member(*entry, "ids") : nullptr;
            if (ids == nullptr || !ids->is_array() || ids->size() > 16) {
              return r.error(
                  path + ".special_tokens",
                  fmt::format("has no entry '{}' with an \"ids\" array (of at most 16 ids) "
                              "for {}",
                              name, item_path));
            }
            for (size_t k = 0; k < ids->size(); ++k) {
              QF_ASSIGN_OR_RETURN(
                  int32_t id,
                  checked_id(r, (*ids)[k],
                             fmt::format("{}.special_tokens.{}.ids[{}]", path, name, k), n));
              (seen_sequence ? c.template_suffix : c.template_prefix).push_back(id);
            }
          }
          return ok_status();
        }
        if (type == "BertProcessing" || type == "RobertaProcessing") {
          const Json* cls = r.member(obj, "cls");
          const Json* sep = r.member(obj, "sep");
          if (cls == nullptr || !cls->is_array() || cls->size() != 2 || sep == nullptr ||
              !sep->is_array() || sep->size() != 2) {
            return r.error(path, "needs \"cls\" and \"sep\" as [token, id] pairs");
          }
          QF_ASSIGN_OR_RETURN(int32_t cls_id, checked_id(r, (*cls)[1], path + ".cls[1]", n));
          QF_ASSIGN_OR_RETURN(int32_t sep_id, checked_id(r, (*sep)[1], path + ".sep[1]", n));
          c.template_prefix = {cls_id};
          c.template_suffix = {sep_id};
          return ok_status();
        }
        return make_error(
            ErrorCode::kUnsupported,
            "{}: field '{}.type' is '{}': qforge supports the post-processors "
            "Sequence, TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing",
            r.source(), path, type);
      });
}

// A token named in tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::string config_token(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return {};
}

Status read_model(const JsonReader& r, const Json& root, HfTokenizerConfig& c) {
  const Json* model = r.member(root, "model");
  if (model == nullptr || !model->is_object())
    return r.error("model", "is missing or not an object");
  QF_ASSIGN_OR_RETURN(std::string type, r.string(*model, "type", "model.type", false, 64));
  if (type.empty() && r.member(*model, "merges") != nullptr) type = "BPE";
  if (type != "BPE") {
    return make_error(ErrorCode::kUnsupported,
                      "{}: field 'model.type' is '{}': qforge reads BPE tokenizer.json files (for "
                      "SentencePiece Unigram models pass the tokenizer.model file instead)",
                      r.source(), type);
  }
  const Json* vocab = r.member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return r.error("model.vocab", "is missing or not an object {piece: id}");
  }
  const Json* added = r.member(root, "added_tokens");
  if (added != nullptr && !added->is_array()) return r.error("added_tokens", "is not an array");
  const size_t n_vocab = vocab->size();
  const size_t n_added = added != nullptr ? added->size() : 0;
  if (n_vocab > static_cast<size_t>(kMaxVocabSize) ||
      n_added > static_cast<size_t>(kMaxAddedTokens)) {
    return r.error("model.vocab", fmt::format("has {} entries and added_tokens {}; the limits are "
                                              "{} and {}",
                                              n_vocab, n_added, kMaxVocabSize, kMaxAddedTokens));
  }
  // Ids may leave holes, but the id table stays within a small multiple of the entries that
  // fill it, so a tiny file cannot make the loader allocate for millions of ids.
  const int64_t max_ids =
      std::min<int64_t>(kMaxVocabSize, 2 * static_cast<int64_t>(n_vocab + n_added) + 1024);
  std::vector<std::pair<std::string_view, int32_t>> entries;
  entries.reserve(n_vocab);
  int64_t table = 0;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const std::string path = fmt::format("model.vocab[\"{}\"]", it.key().substr(0, 40));
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= max_ids) {
      return r.error(path, fmt::format("is {}, expected an id in [0, {}) (at most twice the number "
                                       "of vocabulary entries plus added tokens, plus 1024)",
                                       it->dump().substr(0, 40), max_ids));
    }
    if (it.key().size() > static_cast<size_t>(kMaxPieceBytes)) {
      return r.error(path, fmt::format("is a piece of {} bytes, more than {}", it.key().size(),
                                       kMaxPieceBytes));
    }
    const auto id = static_cast<int32_t>(it->get<int64_t>());
    entries.emplace_back(it.key(), id);
    table = std::max<int64_t>(table, id + 1);
  }
  std::vector<AddedToken> added_tokens;
  for (size_t i = 0; i < n_added; ++i) {
    const Json& a = (*added)[i];
    const std::string path = fmt::format("added_tokens[{}]", i);
    QF_TRY(r.expect(a, Json::value_t::object, path));
    AddedToken t;
    QF_ASSIGN_OR_RETURN(int64_t id, r.integer(a, "id", path + ".id", -1, 0, max_ids - 1));
    if (id < 0) return r.error(path + ".id", "is missing");
    t.id = static_cast<int32_t>(id);
    QF_ASSIGN_OR_RETURN(t.content, r.string(a, "content", path + ".content", true, kMaxPieceBytes));
    if (t.content.empty()) return r.error(path + ".content", "is empty");
    QF_ASSIGN_OR_RETURN(t.special, r.boolean(a, "special", path + ".special", false));
    QF_ASSIGN_OR_RETURN(t.lstrip, r.boolean(a, "lstrip", path + ".lstrip", false));
    QF_ASSIGN_OR_RETURN(t.rstrip, r.boolean(a, "rstrip", path + ".rstrip", false));
    QF_ASSIGN_OR_RETURN(t.single_word, r.boolean(a, "single_word", path + ".single_word", false));
    QF_ASSIGN_OR_RETURN(t.normalized, r.boolean(a, "normalized", path + ".normalized", !t.special));
    table = std::max<int64_t>(table, t.id + 1);
    added_tokens.push_back(std::move(t));
  }
  c.vocab.resize(static_cast<int32_t>(table));
  for (const auto& [piece, id] : entries) {
    if (c.vocab.present(id)) {
      return r.error("model.vocab",
                     fmt::format("gives id {} to both '{}' and '{}'", id,
                                 c.vocab.piece(id).substr(0, 40), piece.substr(0, 40)));
    }
    c.vocab.set(id, piece);
  }
  c.vocab.build_index();

  // Merges name model-vocabulary pieces (checked before added tokens fill the id holes).
  const Json* merges = r.member(*model, "merges");
  if (merges != nullptr && !merges->is_array()) return r.error("model.merges", "is not an array");
  const size_t n_merges = merges != nullptr ? merges->size() : 0;
  if (n_merges > static_cast<size_t>(kMaxMerges)) {
    return r.error("model.merges",
                   fmt::format("has {} entries, more than {}", n_merges, kMaxMerges));
  }
  c.merges.reserve(n_merges);
  std::string joined;
  for (size_t i = 0; i < n_merges; ++i) {
    const Json& m = (*merges)[i];
    std::string_view a, b;
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return r.error(
            fmt::format("model.merges[{}]", i),
            fmt::format("is '{}', expected two pieces separated by one space", s.substr(0, 80)));
      }
      a = std::string_view(s).substr(0, space);
      b = std::string_view(s).substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get_ref<const std::string&>();
      b = m[1].get_ref<const std::string&>();
    } else {
      return r.error(
          fmt::format("model.merges[{}]", i),
          fmt::format("is {}, expected \"a b\" or [\"a\", \"b\"]", m.dump().substr(0, 80)));
    }
    const int32_t left = c.vocab.find(a), right = c.vocab.find(b);
    joined.assign(a);
    joined.append(b);
    const int32_t merged = c.vocab.find(joined);
    if (left < 0 || right < 0 || merged < 0) {
      const std::string_view missing = left < 0 ? a : right < 0 ? b : std::string_view(joined);
      return r.error(fmt::format("model.merges[{}]", i),
                     fmt::format("merges '{}' + '{}', but '{}' is not in model.vocab (the merges "
                                 "and the vocabulary come from different tokenizers?)",
                                 a.substr(0, 40), b.substr(0, 40), missing.substr(0, 80)));
    }
    c.merges.insert(left, right, {static_cast<int32_t>(i), merged});
  }

  for (const AddedToken& t : added_tokens) {
    if (!c.vocab.present(t.id)) c.vocab.set(t.id, t.content);
  }
  c.vocab.build_index();
  c.added_tokens = std::move(added_tokens);

  QF_ASSIGN_OR_RETURN(c.byte_fallback,
                      r.boolean(*model, "byte_fallback", "model.byte_fallback", false));
  QF_ASSIGN_OR_RETURN(c.fuse_unk, r.boolean(*model, "fuse_unk", "model.fuse_unk", false));
  QF_ASSIGN_OR_RETURN(c.ignore_merges,
                      r.boolean(*model, "ignore_merges", "model.ignore_merges", false));
  QF_ASSIGN_OR_RETURN(std::string unk,
                      r.string(*model, "unk_token", "model.unk_token", false, kMaxPieceBytes));
  if (!unk.empty()) {
    c.unk_id = c.vocab.find(unk);
    if (c.unk_id < 0) {
      return r.error("model.unk_token", fmt::format("is '{}', which is not in model.vocab", unk));
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    QF_ASSIGN_OR_RETURN(std::string v,
                        r.string(*model, key, std::string("model.") + key, false, 64));
    if (!v.empty()) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: field 'model.{}' is '{}': BPE with word prefixes/suffixes "
                        "(WordPiece-style) is not supported",
                        r.source(), key, v);
    }
  }
  if (const Json* dropout = r.member(*model, "dropout")) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      log_warn(
          "{}: model.dropout is {}; BPE dropout is a training-time augmentation, qforge "
          "encodes deterministically without it",
          r.source(), dropout->dump().substr(0, 40));
    }
  }
  return ok_status();
}

int32_t find_added(const HfTokenizerConfig& c, std::string_view content) {
  for (const AddedToken& a : c.added_tokens) {
    if (a.content == content) return a.id;
  }
  return c.vocab.find(content);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view json,
                                                        const std::string& source,
                                                        std::string_view tokenizer_config) {
  if (json.size() > kMaxTokenizerFileBytes) {
    return make_error(ErrorCode::kFormat,
                      "{}: {} bytes is larger than the {} byte limit for "
                      "tokenizer.json",
                      source, json.size(), kMaxTokenizerFileBytes);
  }
  QF_ASSIGN_OR_RETURN(Json root, tokenizer::parse_json_bounded(json, source, kMaxJsonDepth));
  JsonReader r(source);
  if (!root.is_object()) return r.error("(root)", "is not an object");
  HfTokenizerConfig c;
  c.source = source;
  QF_TRY(read_model(r, root, c));
  QF_TRY(read_normalizers(r, root, c));
  QF_TRY(read_pre_tokenizers(r, root, c));
  QF_TRY(read_post_processor(r, root, c));
  QF_TRY(read_decoders(r, root, c));
  root = Json();  // free the DOM before building the tokenizer

  std::string bos_name, eos_name;
  bool config_add_bos = false;
  if (!tokenizer_config.empty()) {
    const std::string config_source = source + " (tokenizer_config.json)";
    QF_ASSIGN_OR_RETURN(
        Json config, tokenizer::parse_json_bounded(tokenizer_config, config_source, kMaxJsonDepth));
    if (config.is_object()) {
      bos_name = config_token(config, "bos_token");
      eos_name = config_token(config, "eos_token");
      auto it = config.find("add_bos_token");
      config_add_bos = it != config.end() && it->is_boolean() && it->get<bool>();
    }
  }
  if (!c.template_prefix.empty()) c.bos_id = c.template_prefix.front();
  if (c.bos_id < 0 && !bos_name.empty()) c.bos_id = find_added(c, bos_name);
  if (c.template_prefix.empty() && config_add_bos && c.bos_id >= 0) {
    c.template_prefix = {c.bos_id};  // no template in the file: tokenizer_config's add_bos_token
  }
  if (!eos_name.empty()) c.eos_id = find_added(c, eos_name);
  if (c.eos_id < 0 && !c.template_suffix.empty()) c.eos_id = c.template_suffix.back();
  for (const char* name : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "<eos>"}) {
    if (c.eos_id < 0) c.eos_id = find_added(c, name);
  }
  QF_ASSIGN_OR_RETURN(auto t, tokenizer::HfTokenizer::create(std::move(c)));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace qforge
