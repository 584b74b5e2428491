// The model a CLI command runs, from any path it accepts: an .engine file (packed weights, the
// engine's embedded tokenizer) or a checkpoint (the reference runtime: weights as stored, a
// quantized checkpoint fake-quantized in F32 — the oracle engines are tested against).
#pragma once

#include <memory>
#include <string>

#include "qforge/model/model.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge::cli {

struct ModelSource {
  std::string path;
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> engine_tokenizer;  // null for checkpoints
  bool is_engine = false;
};

// Throws CliFailure with the loader's error chain.
ModelSource load_model_source(const std::string& path);
// `tokenizer_path` when given, else the engine's embedded tokenizer, else the one next to the
// checkpoint (load_tokenizer_for_model).
std::shared_ptr<const Tokenizer> load_source_tokenizer(const ModelSource& source,
                                                       const std::string& tokenizer_path);

}  // namespace qforge::cli
