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

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes UTF-8 text (invalid UTF-8 goes through byte fallback or is an error, per format).
  // add_bos prepends the BOS token (when the tokenizer has one), as the model's template does.
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const = 0;
  // Decodes ids to text as the format's decoder does (e.g. SentencePiece drops the leading
  // space of the first piece). Ids outside [0, vocab_size) are an error.
  virtual Result<std::string> decode(std::span<const int32_t> ids) const = 0;
  // The text one token adds when streaming, given the token before it (-1 at the start): the
  // concatenation over a sequence equals decode() of the sequence.
  virtual Result<std::string> decode_next(int32_t previous, int32_t id) const = 0;

  // The raw vocabulary piece of an id (e.g. "▁the", "<0x0A>", "Ġthe").
  virtual std::string piece(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  virtual std::string kind() const = 0;  // "sentencepiece", "hf-bpe-bytelevel", "llama2c", ...
};

// Loads a tokenizer from a file (.model, tokenizer.json, tokenizer.bin / tok*.bin, .gguf) or from
// a model directory (tokenizer.json preferred, then tokenizer.model). `vocab_size_hint` is the
// vocabulary size llama2.c tokenizer.bin files need (they do not store it); 0 = read to EOF.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path,
                                                  int64_t vocab_size_hint = 0);

}  // namespace qforge
