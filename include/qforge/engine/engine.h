// Engines: `qforge build` turns a checkpoint (HF directory, quantized checkpoint) into one
// versioned, checksummed, mmap-able .engine file (safetensors container: build config, model
// config, tokenizer, kernel choices and checksums in the metadata; every weight prepacked for
// the backend's kernels); loading it gives a Model whose linears run the packed kernels in place.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/engine/build_config.h"
#include "qforge/model/model.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

inline constexpr int kEngineFormatVersion = 1;

struct BuildProgress {
  std::function<void(int64_t done, int64_t total, const std::string& what)> on_step;
};

struct EngineBuildReport {
  uint64_t file_bytes = 0;
  double seconds = 0;
  // module -> "kernel/variant" chosen (and the candidates' timings in microseconds).
  std::vector<std::string> kernel_choices;
};

// Builds `checkpoint_dir` for `config` into `output` (written to a temp path, renamed at the
// end; nothing is left behind on error). Peak memory: one layer plus the output mapping.
Result<EngineBuildReport> build_engine(const std::string& checkpoint_dir, const BuildConfig& config,
                                       const std::string& output,
                                       const BuildProgress& progress = {});

// An opened engine: the model (weights in the mmapped file), its tokenizer and build config.
struct Engine {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the checkpoint had none
  BuildConfig build_config;
  KvCacheStorage kv_cache_storage = KvCacheStorage::kF32;  // resolved
  std::string path;
};

struct EngineLoadOptions {
  // false (default): read the file into anonymous memory advised for transparent huge pages
  // (weights stream at the machine's full read bandwidth; RSS = the engine's size). true: map
  // the file (pages shared with the page cache and other processes, loaded on first touch).
  bool use_mmap = false;
};

// Verifies version, backend, CPU features and every checksum, then opens the weights in place.
Result<Engine> load_engine(const std::string& path, const EngineLoadOptions& options = {});

// What the LLM API opens: an .engine file as it is; a checkpoint directory (HF or quantized) is
// built for `config` into a cache next to it (or under $QFORGE_CACHE) and reused while the
// checkpoint and config are unchanged.
Result<Engine> open_engine(const std::string& model_path, const BuildConfig& config);

}  // namespace qforge
