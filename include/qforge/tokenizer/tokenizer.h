// Text <-> token ids, for every tokenizer file format qforge reads: Hugging Face tokenizer.json
// (byte-level BPE and SentencePiece-style BPE), SentencePiece .model, llama2.c tokenizer.bin, and
// the vocabulary embedded in GGUF files.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

// What a vocabulary entry is, numbered as SentencePiece and GGUF (tokenizer.ggml.token_type) do.
enum class TokenType : uint8_t {
  kNormal = 1,       // ordinary piece, produced by merges
  kUnknown = 2,      // <unk>
  kControl = 3,      // <s>, </s>, <|begin_of_text|> ...: decodes to nothing
  kUserDefined = 4,  // matched whole in the text before BPE (HF added tokens that are not special)
  kUnused = 5,
  kByte = 6,  // <0x00>..<0xFF> byte-fallback pieces
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes UTF-8 text (invalid UTF-8 goes through byte fallback or is an error, per format).
  // add_bos prepends the BOS token (when the tokenizer has one), as the model's template does.
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const = 0;
  // Decodes ids to text as the format's decoder does (e.g. SentencePiece drops the leading
  // space of the first piece). Ids outside [0, vocab_size) are an error. The default is the
  // concatenation of decode_next() over the ids, which every piece-wise decoder satisfies.
  virtual Result<std::string> decode(std::span<const int32_t> ids) const;
  // The text one token adds when streaming, given the token before it (-1 at the start): the
  // concatenation over a sequence equals decode() of the sequence.
  virtual Result<std::string> decode_next(int32_t previous, int32_t id) const = 0;

  // The raw vocabulary piece of an id (e.g. "▁the", "<0x0A>", "Ġthe").
  virtual std::string piece(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;    // -1 when none
  virtual int32_t eos_id() const = 0;    // -1 when none
  virtual std::string kind() const = 0;  // "sentencepiece", "hf-bpe-bytelevel", "llama2c", ...

  // The type of an id (kControl for special tokens, kByte for <0xNN>); ids out of range: kNormal.
  virtual TokenType token_type(int32_t id) const { return TokenType::kNormal; }
  // The piece's score where the format stores one (SentencePiece, llama2.c, GGUF), else 0.
  virtual float token_score(int32_t id) const { return 0.0f; }
  // The id of a raw piece (as piece() spells it), or -1.
  virtual int32_t token_id(std::string_view piece) const { return -1; }
};

// Loads a tokenizer from a file (.model, tokenizer.json, tokenizer.bin / tok*.bin, .gguf) or from
// a model directory (tokenizer.json preferred, then tokenizer.model, then tokenizer.bin, then a
// single tok*.bin). Files are recognised by content (GGUF magic, JSON, SentencePiece protobuf)
// and then by name. `vocab_size_hint` is the vocabulary size llama2.c tokenizer.bin files need
// (they do not store it); 0 = read to EOF. Per-format entry points: tokenizer_formats.h.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path,
                                                  int64_t vocab_size_hint = 0);

}  // namespace qforge
