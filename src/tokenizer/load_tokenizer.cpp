// load_tokenizer(): picks the format from the path. A directory is searched for tokenizer.json,
// tokenizer.model, tokenizer.bin, then a single tok*.bin; a file is recognised by content (GGUF
// magic, a JSON object) and then by extension (.model, .bin, .json, .gguf).
#include <algorithm>
#include <filesystem>
#include <system_error>

#include "qforge/core/mmap_file.h"
#include "qforge/tokenizer/tokenizer.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::string_view as_text(const MmapFile& f) {
  return {reinterpret_cast<const char*>(f.data()), static_cast<size_t>(f.size())};
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::unique_ptr<Tokenizer>> load_json(const fs::path& path, const MmapFile& file) {
  std::string config_text;
  const fs::path config = path.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::is_regular_file(config, ec)) {
    QF_ASSIGN_OR_RETURN(MmapFile cf, MmapFile::open(config));
    if (cf.size() > kMaxTokenizerFileBytes) {
      return make_error(ErrorCode::kFormat, "{}: {} bytes is larger than the {} byte limit",
                        config.string(), cf.size(), kMaxTokenizerFileBytes);
    }
    config_text.assign(as_text(cf));
  }
  return parse_tokenizer_json(as_text(file), path.string(), config_text);
}

Result<fs::path> find_in_directory(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"}) {
    if (fs::is_regular_file(dir / name, ec)) return dir / name;
  }
  std::vector<fs::path> candidates;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tok", 0) == 0 && ends_with(name, ".bin") && entry.is_regular_file(ec)) {
      candidates.push_back(entry.path());
    }
  }
  if (ec) {
    return make_error(ErrorCode::kIo, "load_tokenizer: cannot list directory {}: {}", dir.string(),
                      ec.message());
  }
  if (candidates.size() == 1) return candidates[0];
  std::sort(candidates.begin(), candidates.end());
  if (candidates.size() > 1) {
    std::string names;
    for (const auto& c : candidates) names += (names.empty() ? "" : ", ") + c.filename().string();
    return make_error(ErrorCode::kInvalidArgument,
                      "load_tokenizer: directory {} has several llama2.c tokenizers ({}); pass "
                      "the file to use",
                      dir.string(), names);
  }
  return make_error(ErrorCode::kNotFound,
                    "load_tokenizer: no tokenizer in directory {} (looked for tokenizer.json, "
                    "tokenizer.model, tokenizer.bin, tok*.bin)",
                    dir.string());
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer_any(const fs::path& path_in,
                                                      int64_t vocab_size_hint);

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path_text,
                                                  int64_t vocab_size_hint) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok,
                      load_tokenizer_any(path_text, vocab_size_hint));
  // Ids at or past the model's vocabulary would index past its embedding and lm_head rows: a
  // tokenizer with more pieces than the model has rows belongs to another model.
  if (vocab_size_hint > 0 && tok->vocab_size() > vocab_size_hint) {
    return make_error(ErrorCode::kInvalidArgument,
                      "load_tokenizer: {} has {} pieces but the model's vocab_size is {} (ids {}.."
                      "{} have no embedding row): the tokenizer of another model? pass the "
                      "matching one with --tokenizer",
                      path_text, tok->vocab_size(), vocab_size_hint, vocab_size_hint,
                      tok->vocab_size() - 1);
  }
  return tok;
}

namespace {

Result<std::unique_ptr<Tokenizer>> load_tokenizer_any(const fs::path& path_in,
                                                      int64_t vocab_size_hint) {
  fs::path path(path_in);
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    QF_ASSIGN_OR_RETURN(path, find_in_directory(path));
  }
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path).context("load_tokenizer"));
  const std::string name = path.filename().string();
  const std::string_view text = as_text(file);
  if (text.size() >= 4 && text.substr(0, 4) == "GGUF") return load_gguf_tokenizer(path.string());
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') return load_json(path, file);
  if (ends_with(name, ".model")) return parse_sentencepiece_model(file.bytes(), path.string());
  if (ends_with(name, ".bin")) {
    return parse_llama2c_tokenizer(file.bytes(), path.string(), vocab_size_hint);
  }
  if (ends_with(name, ".json")) return load_json(path, file);
  if (ends_with(name, ".gguf")) return load_gguf_tokenizer(path.string());
  // Unknown name: a SentencePiece ModelProto starts with field 1 (pieces), byte 0x0A.
  if (!text.empty() && text[0] == '\x0A') {
    auto sp = parse_sentencepiece_model(file.bytes(), path.string());
    if (sp.ok()) return sp;
  }
  return make_error(ErrorCode::kUnsupported,
                    "load_tokenizer: cannot tell the format of {} ({} bytes); expected "
                    "tokenizer.json, a SentencePiece .model, a llama2.c tokenizer.bin / tok*.bin, "
                    "a .gguf, or a model directory holding one",
                    path.string(), file.size());
}

}  // namespace

}  // namespace qforge
