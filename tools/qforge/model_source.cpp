// model_source.h: engine files by extension (".engine") or by content (safetensors whose
// metadata says qforge-engine is what load_engine checks), checkpoints through Model::load.
#include "model_source.h"

#include <filesystem>

#include "commands.h"
#include "qforge/engine/engine.h"
#include "qforge/runtime/generate.h"

namespace qforge::cli {
namespace {

bool is_engine_path(const std::string& path) {
  std::error_code ec;
  return std::filesystem::path(path).extension() == ".engine" &&
         !std::filesystem::is_directory(path, ec);
}

}  // namespace

ModelSource load_model_source(const std::string& path) {
  ModelSource s;
  s.path = path;
  if (is_engine_path(path)) {
    Engine e = value_or_fail(load_engine(path));
    s.model = e.model;
    s.engine_tokenizer = e.tokenizer;
    s.is_engine = true;
    return s;
  }
  s.model = value_or_fail(Model::load(path));
  return s;
}

std::shared_ptr<const Tokenizer> load_source_tokenizer(const ModelSource& source,
                                                       const std::string& tokenizer_path) {
  const int64_t vocab = source.model->config().vocab_size;
  if (!source.is_engine || !tokenizer_path.empty()) {
    return value_or_fail(load_tokenizer_for_model(source.path, tokenizer_path, vocab));
  }
  if (source.engine_tokenizer == nullptr) {
    throw CliFailure(
        fmt::format("{}: the engine carries no tokenizer; pass --tokenizer FILE", source.path));
  }
  return source.engine_tokenizer;
}

}  // namespace qforge::cli
