// Hugging Face tokenizer.json with model BPE: the pipeline (added-token split -> normalizers ->
// pre-tokenizers -> BPE -> post-processor template) and its decoders. Parsing and validation of
// the JSON live in hf_tokenizer_json.cpp; the pipeline steps in hf_pipeline.cpp; encode/decode in
// hf_tokenizer.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/tokenizer/tokenizer.h"
#include "tokenizer/pretokenize_regex.h"
#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"

namespace qforge::tokenizer {

struct NormalizerStep {
  enum class Kind { kPrepend, kReplace, kNfc, kNfd, kNfkc, kNfkd, kLowercase, kStrip };
  Kind kind;
  std::string text;                // Prepend: the prefix; Replace: the replacement
  std::optional<Pattern> pattern;  // Replace
  bool strip_left = false;         // Strip
  bool strip_right = false;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  Kind kind;
  // Split (Digits, Whitespace and WhitespaceSplit are expressed as Split).
  std::optional<Pattern> pattern;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
  // Metaspace
  std::string replacement = "\xE2\x96\x81";
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;
};

struct DecoderStep {
  enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kByteLevel, kMetaspace };
  Kind kind;
  std::optional<Pattern> pattern;  // Replace
  std::string text;                // Replace: content; Strip: the character; Metaspace: replacement
  int strip_start = 0;             // Strip
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // Metaspace
};

struct AddedToken {
  int32_t id;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// The pre-tokens of one text segment: byte ranges into `text`. piece0_at_origin is true when
// pieces[0] starts at offset 0 of the caller's text (Metaspace prepend_scheme "first").
struct PreTokens {
  std::string text;
  std::vector<MatchRange> pieces;
  bool piece0_at_origin = false;
};

struct HfTokenizerConfig {
  std::string source;  // the file name, for errors
  Vocab vocab;         // all ids: model vocab and added tokens
  MergeTable merges;
  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizers;
  std::vector<DecoderStep> decoders;
  bool has_decoder = false;
  std::vector<AddedToken> added_tokens;
  // BPE model options.
  int32_t unk_id = -1;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  // Post-processor: the ids a template puts before and after the sequence.
  std::vector<int32_t> template_prefix;
  std::vector<int32_t> template_suffix;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
};

// Applies one pre-tokenizer step: `in` -> `out` (out is overwritten).
Status apply_pre_tokenizer(const PreTokenizerStep& step, const PreTokens& in, PreTokens& out);
// Applies the normalizers to `text` (valid UTF-8), appending the result to `out`.
// The normalizer chain's bound: no step's output may exceed kMaxNormalizerGrowth times the input
// (plus 4 KiB).
inline constexpr size_t kMaxNormalizerGrowth = 32;
inline constexpr size_t kMaxNormalizerInputBytes = size_t{1} << 34;  // keeps the product in range
Status apply_normalizers(const std::vector<NormalizerStep>& steps, std::string_view text,
                         std::string& out);
// Splits [0, text.size()) into matches and the gaps between them per `behavior` (HF's
// NormalizedString::split), appending non-empty ranges offset by `base` to `out`.
void split_by_matches(const std::vector<MatchRange>& matches, uint32_t size, uint32_t base,
                      SplitBehavior behavior, bool invert, std::vector<MatchRange>& out);

class HfTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<HfTokenizer>> create(HfTokenizerConfig config);

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const override;
  Result<std::string> decode_next(int32_t previous, int32_t id) const override;
  std::string piece(int32_t id) const override;
  int32_t vocab_size() const override { return config_.vocab.size(); }
  int32_t bos_id() const override { return config_.bos_id; }
  int32_t eos_id() const override { return config_.eos_id; }
  std::string kind() const override { return kind_; }
  TokenType token_type(int32_t id) const override;
  int32_t token_id(std::string_view piece) const override { return config_.vocab.find(piece); }

  // The pre-tokens of `text` (normalized, split; raw bytes, before the byte-level map), without
  // added-token splitting (for tests).
  Result<std::vector<std::string>> pre_tokenize(std::string_view text) const;

 private:
  explicit HfTokenizer(HfTokenizerConfig config);
  void prepare_decoding();
  Status encode_segment(std::string_view segment, bool at_origin, std::vector<int32_t>& ids) const;
  Status encode_word(std::string_view word, std::vector<int32_t>& ids) const;
  Status encode_word_uncached(std::string_view word, std::vector<int32_t>& ids) const;
  // Finds the next added token at or after `from`: [begin, end) of the match incl. stripped
  // whitespace, and the token index; false when none.
  bool find_added_token(std::string_view text, size_t from, size_t& begin, size_t& end,
                        size_t& index) const;

  HfTokenizerConfig config_;
  std::string kind_;
  bool byte_level_model_input_ = false;  // the last pre-tokenizer is ByteLevel: map at the model
  std::vector<PreTokenizerStep> steps_before_model_;
  std::array<int32_t, 256> byte_symbol_{};       // byte -> id of its byte-level char (or -1)
  std::array<int32_t, 256> byte_fallback_id_{};  // byte -> id of "<0xNN>" (or -1)
  std::vector<std::string> token_text_;          // id -> decoded bytes (per-token decoders)
  std::vector<uint8_t> token_skipped_;           // id -> special added token: decodes to ""
  std::vector<TokenType> token_types_;
  std::string strip_char_;
  int strip_start_ = 0;
  std::string metaspace_first_;   // Metaspace decoder: characters dropped from the first token
  bool join_with_space_ = false;  // no decoder: HF joins tokens with " "
  std::array<std::vector<uint32_t>, 256> added_by_first_byte_;  // indexes into added_tokens
  // Words longer than the cache's limit are cut before each space symbol ("▁") when that is
  // exact for this vocabulary (SentencePiece-style files have no pre-tokenizer).
  std::string split_space_;
  tokenizer::WordCache cache_;
};

}  // namespace qforge::tokenizer
