// Capacity planning: how much memory a model needs per GPU (or CPU) for a weight format, a KV-cache
// format and serving limits, and the largest batch that fits a budget. Pure arithmetic over a
// ModelConfig; the weight bytes use the quantizer's own accounting (scheme_for_module +
// quantized_bytes), so a plan agrees with the checkpoint `qforge quantize` writes.
// Formulas and a worked example: docs/CAPACITY.md.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/engine/build_config.h"
#include "qforge/model/config.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

// ---- Presets ------------------------------------------------------------------------------

// A published model shape (the Hugging Face config.json of the named checkpoint).
struct ModelPreset {
  const char* name;   // "llama-3.1-70b"
  const char* hf_id;  // "meta-llama/Llama-3.1-70B"
  ModelConfig config;
};
std::span<const ModelPreset> model_presets();
// Errors list the valid names.
Result<ModelConfig> model_preset(std::string_view name);

// Memory sizes are decimal: 1 GB = 1e9 bytes everywhere in the planner, and a GPU's size is the
// vendor's "GB" figure read as 1e9 bytes. That is below what the card really has (a "141 GB" H200
// reports 143771 MiB = 150.8e9 bytes in nvidia-smi), so the planner errs on the safe side; pass
// the measured size as --memory-gb for a tight plan.
inline constexpr double kBytesPerGB = 1e9;

struct GpuPreset {
  const char* name;         // "h100"
  const char* description;  // "NVIDIA H100 SXM5 80 GB HBM3"
  double memory_gb;         // vendor figure, 1 GB = 1e9 bytes
};
std::span<const GpuPreset> gpu_presets();
// Errors list the valid names.
Result<GpuPreset> gpu_preset(std::string_view name);

// The default share of device memory the planner may fill: the rest is left to the CUDA context,
// the allocator's fragmentation and the communication buffers (vLLM's gpu_memory_utilization).
inline constexpr double kDefaultUsableFraction = 0.9;
// floor(memory_gb * 1e9 * usable_fraction). Errors on memory_gb <= 0 or a fraction outside (0, 1].
Result<uint64_t> usable_memory_bytes(double memory_gb, double usable_fraction);

// ---- Plan ---------------------------------------------------------------------------------

struct PlanRequest {
  // Weight format of the linear layers: quant_algo, group_size, has_zero_point, exclude_modules
  // and layer_overrides are honoured exactly as the quantizer applies them (lm_head and the
  // embedding always stay unquantized). MIXED_PRECISION plans the linears at
  // auto_quantize_bits on average. kv_cache_per_head sizes the KV scales.
  QuantConfig quant_config = [] {
    QuantConfig c;
    c.quant_algo = QuantAlgo::NO_QUANT;
    return c;
  }();
  // Storage of everything left unquantized: embedding, lm_head, excluded linears, biases.
  DType dense_dtype = DType::BF16;
  // Activation precision of the workspace (the logits are F32 whatever it is).
  DType precision = DType::F16;
  KvCacheStorage kv_cache = KvCacheStorage::kF16;
  int64_t max_seq_len = 2048;  // tokens one sequence holds in the KV cache (prompt + output)
  // nullopt: the planner finds the largest batch that fits. Set: the plan is for this batch.
  std::optional<int64_t> max_batch_size;
  // Tokens one forward step carries over all sequences; 0 = max(max_seq_len, batch) (the
  // BuildConfig default with max_input_len = max_seq_len).
  int64_t max_num_tokens = 0;
  int64_t kv_cache_block_size = 32;  // KV pages hold this many tokens; sequences round up
  // Tensor parallelism: every byte count of the plan is per GPU. Attention heads and the
  // intermediate size must divide by it; KV heads divide by it or are replicated (tp a multiple
  // of the KV heads, one KV head per GPU).
  int64_t tensor_parallel = 1;
  // Bytes the plan may fill on one GPU (see usable_memory_bytes). 0 = no budget: nothing fits.
  uint64_t memory_budget_bytes = 0;
};

struct PlanComponent {
  std::string name;    // "weights.mlp", "kv_cache", "workspace.logits", ...
  uint64_t bytes = 0;  // per GPU
  std::string detail;  // how it was counted, for humans
};

struct CapacityPlan {
  int64_t tensor_parallel = 1;
  // Whole-model counts (not per GPU).
  uint64_t params_total = 0;
  uint64_t params_linear = 0;  // q/k/v/o/gate/up/down of every layer
  // Per GPU from here on.
  uint64_t weight_bytes = 0;         // every weight, scales and padding included
  uint64_t linear_weight_bytes = 0;  // the decoder linears alone
  // Storage bits per linear weight, scales included (linear_weight_bytes * 8 / linear params on
  // this GPU).
  double linear_bits_per_weight = 0;
  int64_t kv_heads_per_gpu = 0;
  uint64_t kv_bytes_per_token = 0;     // 2 * layers * kv_heads_per_gpu * head_dim * elem bytes
  int64_t kv_tokens_per_sequence = 0;  // max_seq_len rounded up to whole KV pages
  uint64_t kv_bytes_per_sequence = 0;
  uint64_t kv_scale_bytes = 0;  // FP8/INT8 KV: one F32 scale per layer (or head) for K and V
  int64_t batch = 0;            // the batch the totals are for (max_batch_size or the largest fit)
  int64_t max_num_tokens = 0;   // with its default applied, at `batch`
  uint64_t kv_bytes_total = 0;  // batch * kv_bytes_per_sequence + kv_scale_bytes
  uint64_t workspace_bytes = 0;
  uint64_t total_bytes = 0;  // weight_bytes + kv_bytes_total + workspace_bytes
  uint64_t budget_bytes = 0;
  // Largest batch whose total fits the budget at max_seq_len (0: not even one sequence).
  int64_t max_batch_that_fits = 0;
  bool fits = false;                     // total_bytes <= budget_bytes and batch >= 1
  uint64_t shortfall_bytes = 0;          // total_bytes - budget_bytes when it does not fit, else 0
  std::vector<PlanComponent> breakdown;  // sums to total_bytes
  std::vector<std::string> notes;        // warnings (max_seq_len past the trained context, ...)
};

// Plans `model` under `request`. Errors (naming the field and value) for an invalid model, a
// non-positive max_seq_len / block size / tensor_parallel, a batch or token count out of range,
// a weight format that is not a per-layer format, or a tp that does not divide the heads.
Result<CapacityPlan> plan_capacity(const ModelConfig& model, const PlanRequest& request);

// Pieces of the plan, exposed for `qforge build` and the tests.
// KV bytes per token per GPU (no page rounding, no scales).
uint64_t kv_cache_bytes_per_token(const ModelConfig& model, KvCacheStorage kv,
                                  int64_t tensor_parallel = 1);
// Workspace bytes of one forward step over `num_tokens` tokens of which `batch` produce logits;
// the formula is in capacity_plan.cpp and docs/CAPACITY.md.
uint64_t activation_workspace_bytes(const ModelConfig& model, DType precision, int64_t num_tokens,
                                    int64_t batch, int64_t max_seq_len, bool quantized_activations,
                                    int64_t tensor_parallel = 1);

}  // namespace qforge
