// The vocabulary embedded in a GGUF file (tokenizer.ggml.*), read through the io module's GGUF
// reader: model "llama" (SentencePiece-style tokens, scores, token types) becomes a scored
// vocabulary tokenizer; the keys and their types are checked and named in errors.
#include "qforge/io/gguf.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge {
namespace {

// An optional id key: absent -> -1.
Result<int32_t> optional_id(const GgufFile& file, std::string_view key, size_t n) {
  if (file.find(key) == nullptr) return -1;
  QF_ASSIGN_OR_RETURN(int64_t id, file.get_int(key));
  if (id < 0 || static_cast<uint64_t>(id) >= n) {
    return make_error(ErrorCode::kFormat, "{}: {} is {}, expected a token id in [0, {})",
                      file.path(), key, id, n);
  }
  return static_cast<int32_t>(id);
}

Result<bool> optional_bool(const GgufFile& file, std::string_view key, bool dflt) {
  if (file.find(key) == nullptr) return dflt;
  return file.get_bool(key);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf(const GgufFile& file) {
  const std::string& path = file.path();
  QF_ASSIGN_OR_RETURN(
      std::string model,
      file.get_string("tokenizer.ggml.model").context(fmt::format("{}: GGUF tokenizer", path)));
  if (model != "llama") {
    return make_error(ErrorCode::kUnsupported,
                      "{}: tokenizer.ggml.model is '{}': qforge reads the SentencePiece-style "
                      "\"llama\" vocabulary from GGUF (for other models pass tokenizer.json)",
                      path, model);
  }
  ScoredVocab v;
  QF_ASSIGN_OR_RETURN(v.pieces, file.get_string_array("tokenizer.ggml.tokens"));
  const size_t n = v.pieces.size();
  if (file.find("tokenizer.ggml.scores") != nullptr) {
    QF_ASSIGN_OR_RETURN(v.scores, file.get_f32_array("tokenizer.ggml.scores"));
  } else {
    v.scores.assign(n, 0.0f);
  }
  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    QF_ASSIGN_OR_RETURN(std::vector<int64_t> types,
                        file.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return make_error(ErrorCode::kFormat,
                        "{}: tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens "
                        "has {}",
                        path, types.size(), n);
    }
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 1 || types[i] > 6) {
        return make_error(ErrorCode::kFormat,
                          "{}: tokenizer.ggml.token_type[{}] is {}, expected 1..6 (normal, "
                          "unknown, control, user-defined, unused, byte)",
                          path, i, types[i]);
      }
      v.types.push_back(static_cast<TokenType>(types[i]));
    }
  } else {
    v.types.assign(n, TokenType::kNormal);
  }
  if (v.scores.size() != n) {
    return make_error(ErrorCode::kFormat,
                      "{}: tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {}",
                      path, v.scores.size(), n);
  }
  QF_ASSIGN_OR_RETURN(v.bos_id, optional_id(file, "tokenizer.ggml.bos_token_id", n));
  QF_ASSIGN_OR_RETURN(v.eos_id, optional_id(file, "tokenizer.ggml.eos_token_id", n));
  QF_ASSIGN_OR_RETURN(v.unk_id, optional_id(file, "tokenizer.ggml.unknown_token_id", n));
  QF_ASSIGN_OR_RETURN(v.add_bos, optional_bool(file, "tokenizer.ggml.add_bos_token", true));
  QF_ASSIGN_OR_RETURN(v.add_eos, optional_bool(file, "tokenizer.ggml.add_eos_token", false));
  QF_ASSIGN_OR_RETURN(v.add_space_prefix,
                      optional_bool(file, "tokenizer.ggml.add_space_prefix", true));
  return make_scored_vocab_tokenizer(std::move(v), path);
}

Result<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const std::string& path) {
  QF_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  return tokenizer_from_gguf(file);
}

}  // namespace qforge
