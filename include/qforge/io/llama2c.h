// llama2.c checkpoints (github.com/karpathy/llama2.c, export.py / run.c / runq.c): the legacy
// "version 0" fp32 file (28-byte header of 7 int32s, then fp32 tensors), and the "ak42" exports
// with a 256-byte header: version 1 (fp32) and version 2 (int8 Q8_0 groups + fp32 scales).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/weights.h"

namespace qforge {

inline constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42" read as a little-endian uint32

struct Llama2cHeader {
  int version = 0;  // 0 legacy fp32, 1 ak42 fp32, 2 ak42 int8 (Q8_0 groups of group_size)
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // always positive here; the legacy sign is in shared_classifier
  int32_t seq_len = 0;
  bool shared_classifier = true;
  int32_t group_size = 0;     // version 2 only
  uint64_t header_bytes = 0;  // 28 (version 0) or 256
  // The exact file size the header implies.
  uint64_t expected_file_bytes = 0;
};

// Parses and checks the header of a llama2.c checkpoint held in `bytes` (the whole file): field
// bounds, divisibility and that the implied size equals bytes.size() exactly. `file` names the
// file in errors.
Result<Llama2cHeader> parse_llama2c_header(std::span<const std::byte> bytes, std::string_view file);

// The config a header describes (rope_layout Interleaved, eps 1e-5, theta 10000, bos 1, eos 2).
ModelConfig llama2c_config(const Llama2cHeader& header);

// The HF-named tensors a header implies, with their shapes, in file order (without loading).
std::vector<std::pair<std::string, Shape>> llama2c_tensor_list(const Llama2cHeader& header);

// The model in `bytes` (the whole file). fp32 tensors are views into `bytes`, which `keep_alive`
// must own; version 2 tensors are dequantized into owned F32 tensors. Tensor names are the HF
// names of weights.h; config.rope_layout is Interleaved (llama2.c rotates pairs (2i, 2i+1)).
Result<LoadedModel> load_llama2c_bytes(std::span<const std::byte> bytes, std::string_view file,
                                       std::shared_ptr<const void> keep_alive);

// Memory-maps `path` and loads it (format "llama2c" or "llama2c-q80").
Result<LoadedModel> load_llama2c(const std::filesystem::path& path);

}  // namespace qforge
