// Per-format tokenizer entry points behind load_tokenizer(): parse from bytes already in memory
// (what the fuzzers and tests use), build a tokenizer from a scored vocabulary (GGUF "llama"),
// and export any SentencePiece-like vocabulary as a Hugging Face tokenizer.json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

class GgufFile;  // qforge/io/gguf.h

// Limits applied to every tokenizer file before anything is allocated from its counts.
inline constexpr uint64_t kMaxTokenizerFileBytes = 512ull << 20;  // 512 MiB
inline constexpr int64_t kMaxVocabSize = 1 << 22;                 // 4,194,304 ids
inline constexpr int64_t kMaxPieceBytes = 1 << 16;                // one vocabulary piece
inline constexpr int kMaxJsonDepth = 64;                          // tokenizer.json nesting

// Hugging Face tokenizer.json (model BPE). `source` names the file in errors. The optional
// tokenizer_config.json text supplies bos/eos tokens (and add_bos_token when the file has no
// post-processor template).
Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view json,
                                                        const std::string& source,
                                                        std::string_view tokenizer_config = {});

// SentencePiece ModelProto bytes (a .model file), through libsentencepiece.
Result<std::unique_ptr<Tokenizer>> parse_sentencepiece_model(std::span<const std::byte> bytes,
                                                             const std::string& source);

// llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
// bytes. vocab_size_hint 0 reads tokens to the end of the file.
Result<std::unique_ptr<Tokenizer>> parse_llama2c_tokenizer(std::span<const std::byte> bytes,
                                                           const std::string& source,
                                                           int64_t vocab_size_hint = 0);

// A SentencePiece-style vocabulary with scores, as GGUF stores it (tokenizer.ggml.model "llama").
struct ScoredVocab {
  std::vector<std::string> pieces;  // "▁the", "<0x0A>", "<s>" ...
  std::vector<float> scores;        // same length as pieces
  std::vector<TokenType> types;     // same length as pieces
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_space_prefix = true;  // SentencePiece add_dummy_prefix
  bool add_bos = true;           // whether encode(add_bos=true) prepends bos_id
  bool add_eos = false;          // whether encode(add_bos=true) also appends eos_id
};

// SPM-style BPE over a scored vocabulary (llama.cpp's llm_tokenizer_spm, SentencePiece's
// bpe_model): highest-scoring adjacent merge first, leftmost on ties, byte fallback for the rest.
Result<std::unique_ptr<Tokenizer>> make_scored_vocab_tokenizer(ScoredVocab vocab,
                                                               const std::string& source);

// The vocabulary embedded in a GGUF file (tokenizer.ggml.*; model "llama"): from a path, or from
// a file the caller already opened (e.g. while loading the model's weights).
Result<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const std::string& path);
Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf(const GgufFile& file);

enum class TokenizerJsonStyle {
  kSentencePieceBpe,  // Llama-2 layout: Prepend/Replace normalizer, byte_fallback, Strip decoder
  kByteLevelBpe,      // GPT-2 layout: Split(regex) + ByteLevel, pieces re-spelled as byte chars
};

// Writes a tokenizer.json equivalent to a SentencePiece-like tokenizer (one with scores:
// sentencepiece, llama2c, gguf-llama), merges ordered by score as Hugging Face's
// convert_slow_tokenizer does. kByteLevelBpe re-spells the same pieces through the GPT-2 byte
// map (a real-vocabulary byte-level tokenizer for tests and benchmarks).
Result<std::string> export_tokenizer_json(const Tokenizer& tokenizer, TokenizerJsonStyle style);

}  // namespace qforge
