// InferenceSession: one sequence running through a Model on the CPU — its F32 KV cache, its
// position, and the forward pass (batched prefill, single-token decode) that returns logits.
// Not thread-safe (one caller per session); the kernels inside use every qforge thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/model/model.h"
#include "qforge/model/rope.h"

namespace qforge {

// Default KV-cache capacity when the model allows more positions (a Llama 3.1 config says
// 131072, whose F32 cache alone would be tens of GB). Ask for more with context_length.
inline constexpr int64_t kDefaultContextCap = 8192;

struct SessionOptions {
  // KV-cache capacity in tokens: 0 = min(max_position_embeddings, kDefaultContextCap).
  // Larger than max_position_embeddings is an error, except with dynamic NTK RoPE (whose
  // purpose is running past it).
  int64_t context_length = 0;
  // Tokens per internal forward slice: longer inputs run as several slices (same result),
  // bounding activation memory at about max_batch_tokens * (4 * hidden + 3 * intermediate) floats.
  int64_t max_batch_tokens = 512;
  // Replaces the model's KV-cache quantization (e.g. unit scales, or F32 to switch it off).
  std::optional<KvCacheQuant> kv_cache_quant;
};

enum class LogitsMode : uint8_t {
  kLast,  // logits of the last input token: [1, vocab]
  kAll,   // logits of every input token: [n_tokens, vocab]
  kNone,  // fill the KV cache only (returns an empty tensor)
};

class InferenceSession {
 public:
  // Allocates the KV cache (uninitialised: memory is touched only as positions fill).
  static Result<InferenceSession> create(std::shared_ptr<const Model> model,
                                         SessionOptions options = {});

  // Move-only: a copy would share (and corrupt) the KV cache.
  InferenceSession(InferenceSession&&) = default;
  InferenceSession& operator=(InferenceSession&&) = default;
  InferenceSession(const InferenceSession&) = delete;
  InferenceSession& operator=(const InferenceSession&) = delete;

  // Runs `tokens` at positions [n_past(), n_past() + tokens.size()) and appends them to the KV
  // cache. Errors (nothing is changed): an id outside [0, vocab), or more positions than the
  // context length (the message says how many fit).
  Result<Tensor> forward(std::span<const int32_t> tokens, LogitsMode mode = LogitsMode::kLast);

  int64_t n_past() const { return n_past_; }
  int64_t context_length() const { return capacity_; }
  // Forgets every position (the next forward starts at position 0).
  void reset() { n_past_ = 0; }
  // Keeps the first n positions (0 <= n <= n_past()).
  Status rewind(int64_t n);

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }
  uint64_t kv_cache_bytes() const { return kv_.nbytes(); }
  const KvCacheQuant& kv_cache_quant() const { return kv_quant_; }

 private:
  // Per-slice activations, reused across forward calls.
  struct Scratch {
    std::vector<float> x, xb, q, k, v, att, gate, up, cos, sin;
  };

  InferenceSession() = default;
  // One slice (n <= max_batch_tokens) at positions [n_past_, n_past_ + n); writes the final
  // hidden states of its rows to scratch_.x.
  void forward_slice(const int32_t* tokens, int64_t n);

  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
  Tensor kv_;  // [n_layers, 2 (k, v), n_kv_heads, capacity, head_dim] F32
  KvCacheQuant kv_quant_;
  Scratch scratch_;
  // Cached RoPE frequencies (every type but dynamic NTK is independent of the length).
  RopeFrequencies rope_;
  int64_t rope_seq_len_ = -1;
};

}  // namespace qforge
