// BuildConfig: the limits and choices an engine is built for (TensorRT-LLM's names). The engine
// records it; the runtime enforces it (prompt longer than max_input_len, batch full -> queued).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/model/kv_cache_quant.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

enum class Backend : uint8_t { kCpu, kCuda };
std::string_view backend_name(Backend backend);  // "cpu", "cuda"
Result<Backend> parse_backend(std::string_view text);

// Element type of the paged KV cache.
enum class KvCacheStorage : uint8_t { kF32, kF16, kBF16, kFp8, kInt8 };
std::string_view kv_cache_storage_name(KvCacheStorage s);  // "f32", "f16", "bf16", "fp8", "int8"
Result<KvCacheStorage> parse_kv_cache_storage(std::string_view text);
int64_t kv_cache_storage_bytes(KvCacheStorage s);  // bytes per element: 4, 2, 2, 1, 1

struct BuildConfig {
  int64_t max_input_len = 1024;  // longest prompt
  int64_t max_seq_len = 2048;    // prompt + generated tokens of one sequence
  int64_t max_batch_size = 8;    // sequences running at once (more are queued)
  // Tokens one forward step may carry over all sequences (prefill chunks + decode tokens);
  // 0 = max(max_input_len, max_batch_size).
  int64_t max_num_tokens = 0;
  // Activation / dense weight precision. The CPU backend computes in F32 and stores unquantized
  // weights in this type (F32, F16 or BF16).
  DType precision = DType::F16;
  // Quantization of an unquantized checkpoint built on the fly (nullopt: build as it is).
  std::optional<QuantConfig> quant_config;
  int64_t kv_cache_block_size = 32;  // tokens per KV-cache page
  // nullopt: the checkpoint's calibrated KV format (FP8/INT8) when it has one, else `precision`.
  std::optional<KvCacheStorage> kv_cache_storage;
  // Pages in the KV pool; 0 = enough for max_batch_size sequences of max_seq_len.
  int64_t kv_cache_blocks = 0;
  Backend backend = Backend::kCpu;
  // Time the candidate kernels of each layer shape and keep the fastest (off: first candidate).
  bool kernel_selection = true;
  // Memory the engine may fill (weights + KV pool + workspace); 0 = this machine's physical
  // memory. The build refuses limits that do not fit, saying by how much.
  uint64_t memory_budget_bytes = 0;
};

// Field ranges and relations (max_input_len <= max_seq_len, block size a power of two in
// [1, 1024], precision F32/F16/BF16, ...). Messages name the field, the value and the limit.
Status validate_build_config(const BuildConfig& config);
// max_num_tokens with its default applied.
int64_t effective_max_num_tokens(const BuildConfig& config);
// The KV-cache element type an engine runs with: kv_cache_storage when set, else the
// checkpoint's calibrated FP8/INT8 cache, else the precision (F32/F16/BF16).
KvCacheStorage resolve_kv_cache_storage(const BuildConfig& config, KvCacheDType checkpoint_kv);
// KV pages of the pool: kv_cache_blocks, or max_batch_size sequences of max_seq_len.
int64_t effective_kv_cache_blocks(const BuildConfig& config);

}  // namespace qforge
