// Runs one decoder block over calibration samples (each a whole sequence starting at position
// 0), with optional taps on the inputs of its four linear groups and on the K/V cache — what
// calibration observers, AWQ/SmoothQuant statistics and GPTQ Hessians are collected from.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "qforge/model/config.h"
#include "qforge/model/kv_cache_quant.h"
#include "qforge/model/model.h"

namespace qforge::quant_internal {

// The four inputs of a Llama block's linear layers.
enum class LinearGroup : uint8_t {
  kAttnIn,   // rmsnorm(x): input of q_proj, k_proj, v_proj
  kAttnOut,  // attention output: input of o_proj
  kMlpIn,    // rmsnorm(x): input of gate_proj, up_proj
  kMlpMid,   // silu(gate) * up: input of down_proj
};
inline constexpr int kNumLinearGroups = 4;

// Called with x: [n, cols] each time the group's input is computed.
using InputTap = std::function<void(LinearGroup group, const float* x, int64_t n, int64_t cols)>;
// Called after a sample with this block's K and V cache: [n_kv_heads, seq_len, head_dim] each.
using KvTap = std::function<void(const float* k, const float* v)>;

class BlockRunner {
 public:
  BlockRunner(const ModelConfig& config, int64_t seq_len);

  // x: [seq_len, hidden], updated in place to the block's output.
  void run(const DecoderLayer& layer, float* x, const InputTap* input_tap = nullptr,
           const KvTap* kv_tap = nullptr, const KvCacheQuant* kv_quant = nullptr,
           int64_t layer_index = 0);

  int64_t seq_len() const { return seq_len_; }

 private:
  const ModelConfig& config_;
  int64_t seq_len_;
  std::vector<float> xb_, q_, k_, v_, att_, gate_, up_, cos_, sin_, k_cache_, v_cache_;
};

// A DecoderLayer whose matrices point at `layer`'s and whose q_proj / o_proj / gate_proj /
// down_proj report their inputs to `tap` first. `layer` and `tap` must outlive the result.
DecoderLayer make_tapped_layer(const DecoderLayer& layer, const InputTap& tap);

}  // namespace qforge::quant_internal
