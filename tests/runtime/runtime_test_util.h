// Models for the batched-runtime tests: stories260K (llama2.c, from the shared models) and tiny
// synthetic checkpoints (written once per process into a temp directory), optionally with a
// changed config (sliding window, KV-cache quantization).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "qforge/io/model_loader.h"
#include "qforge/model/model.h"
#include "qforge/model/synthetic.h"
#include "qforge/runtime/generate.h"

namespace qforge::test {

inline std::filesystem::path stories_path() {
  return std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared" / "models" / "stories260K" /
         "stories260K.bin";
}

struct TestModel {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null for synthetic models
};

inline TestModel load_stories() {
  TestModel t;
  auto m = Model::load(stories_path().string());
  if (!m.ok()) return t;
  t.model = *m;
  auto tok = load_tokenizer_for_model(stories_path().string(), "", t.model->config().vocab_size);
  if (tok.ok()) t.tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
  return t;
}

// The synthetic preset `name` ("tiny", "tiny-qwen2", "tiny-qwen3"), F32 weights, with `edit`
// applied to the loaded config (e.g. a sliding window).
inline std::shared_ptr<const Model> synthetic_model(
    const std::string& name, const std::function<void(ModelConfig&)>& edit = {}) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("qforge_runtime_synth_" + name);  // shared by runs (files written atomically)
  if (!std::filesystem::exists(dir / "config.json")) {
    auto config = synthetic_preset(name);
    if (!config.ok()) return nullptr;
    SynthOptions o;
    o.dtype = DType::F32;
    o.seed = 3;
    if (!write_synthetic_checkpoint(*config, o, dir).ok()) return nullptr;
  }
  auto loaded = load_model(dir.string());
  if (!loaded.ok()) return nullptr;
  if (edit) edit(loaded->config);
  auto model = Model::create(std::move(loaded).value());
  return model.ok() ? *model : nullptr;
}

}  // namespace qforge::test
