// One Llama-family decoder block on a batch of consecutive tokens (internal to src/model):
//   x += o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   n1 = rmsnorm(x)
//   x += down_proj(silu(gate_proj(n2)) * up_proj(n2))                       n2 = rmsnorm(x)
// with optional q/k/v biases (Qwen2) and per-head q/k RMSNorm before RoPE (Qwen3).
#pragma once

#include <cstdint>

#include "qforge/model/config.h"
#include "qforge/model/kv_cache_quant.h"
#include "qforge/model/model.h"

namespace qforge::model_internal {

struct LayerBatch {
  int64_t n_tokens = 0;
  int64_t pos0 = 0;            // position of token 0
  float* x = nullptr;          // [n, hidden] residual stream, updated in place
  float* xb = nullptr;         // [n, hidden] scratch
  float* q = nullptr;          // [n, q_dim] scratch
  float* k = nullptr;          // [n, kv_dim] scratch
  float* v = nullptr;          // [n, kv_dim] scratch
  float* att = nullptr;        // [n, q_dim] scratch
  float* gate = nullptr;       // [n, intermediate] scratch
  float* up = nullptr;         // [n, intermediate] scratch
  const float* cos = nullptr;  // [n, head_dim / 2]
  const float* sin = nullptr;  // [n, head_dim / 2]
  float* k_cache = nullptr;    // this layer's [n_kv_heads, capacity, head_dim]
  float* v_cache = nullptr;
  int64_t capacity = 0;
  // Rounds each K/V row written to the cache through FP8/INT8 (null or disabled: F32 cache).
  const KvCacheQuant* kv_quant = nullptr;
  int64_t layer_index = 0;  // which of kv_quant's scales apply
};

void llama_layer_forward(const ModelConfig& config, const DecoderLayer& layer, const LayerBatch& b);

// out: [n, dim] = rmsnorm of each row of x: [n, dim] (parallel over rows when n is large).
void rmsnorm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out);

}  // namespace qforge::model_internal
