// QuantConfig and CalibConfig: what `qforge quantize` does to a model, spelled as TensorRT-LLM /
// ModelOpt spell it (QuantAlgo names, qformat short names), and how each algorithm maps to a
// weight storage format plus an activation quantization scheme per linear layer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/quant_format.h"

namespace qforge {

// TensorRT-LLM's QuantAlgo, spelled the same.
enum class QuantAlgo : uint8_t {
  NO_QUANT,
  FP8,                                   // FP8 per-tensor weights, static per-tensor FP8 input
  FP8_PER_CHANNEL_PER_TOKEN,             // FP8 per-channel weights, dynamic per-token FP8 input
  FP8_BLOCK_SCALES,                      // FP8 128x128 weights, dynamic 1x128 FP8 input
  W8A16,                                 // INT8 per-channel weights (RTN), F32/F16 input
  W4A16,                                 // INT4 group weights (RTN)
  W4A16_AWQ,                             // INT4 group weights, AWQ scales + clipping
  W4A16_GPTQ,                            // INT4 group weights, GPTQ
  W8A16_GPTQ,                            // INT8 per-channel weights, GPTQ
  W8A8_SQ_PER_CHANNEL,                   // SmoothQuant, INT8 per-channel W, static per-tensor A
  W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN,  // SmoothQuant, INT8 per-channel W, dynamic per-token A
  W8A8_SQ_PER_TENSOR_PLUGIN,             // SmoothQuant, INT8 per-tensor W, static per-tensor A
  W4A8_AWQ,                              // INT4 group weights (AWQ), static per-tensor FP8 input
  NVFP4,                                 // NVFP4 weights and activations (two-level scales)
  W4A16_MXFP4,                           // MXFP4 weights, F32/F16 input
  W4A8_MXFP4_FP8,                        // MXFP4 weights, static per-tensor FP8 input
  MIXED_PRECISION,                       // a format chosen per layer (auto-quantize)
  INT8,                                  // KV cache only: INT8 per-tensor scales
  // INT4 group weights, AWQ scales then GPTQ rounding (qforge's own recipe, as llm-compressor's
  // AWQModifier + GPTQModifier). Checkpoints store it as W4A16_AWQ: the same layout (scales
  // folded, INT4 groups); only the rounding differs.
  W4A16_AWQ_GPTQ,
};

std::string_view quant_algo_name(QuantAlgo algo);
// Accepts the QuantAlgo spelling ("W4A16_AWQ", case-insensitive) or a qformat short name.
Result<QuantAlgo> parse_quant_algo(std::string_view text);

// The short names of `--qformat` (ModelOpt's hf_ptq.py spelling, plus a few of qforge's own):
// fp8, fp8_pc_pt, fp8_pb_wo, int8_wo, int4_wo, int4_awq, int4_gptq, int4_awq_gptq, int8_gptq,
// int8_sq,
// int8_sq_pt (per-token), int8_sq_tensor, w4a8_awq, nvfp4, mxfp4, w4a8_mxfp4_fp8, none.
struct QformatName {
  const char* qformat;
  QuantAlgo algo;
  const char* description;
};
std::span<const QformatName> qformat_names();
Result<QuantAlgo> parse_qformat(std::string_view qformat);
std::string_view qformat_for_algo(QuantAlgo algo);  // "" when the algorithm has no short name
// The algorithm a checkpoint records for `algo`: W4A16_AWQ for W4A16_AWQ_GPTQ (same layout),
// `algo` itself otherwise.
QuantAlgo checkpoint_algo(QuantAlgo algo);

// How a linear layer's input is quantized at run time (simulated on the CPU; the weights carry
// the real stored format).
enum class ActivationQuant : uint8_t {
  kNone,
  kFp8PerTensor,    // static: one calibrated scale (input_scale = amax / 448)
  kFp8PerToken,     // dynamic: scale = row amax / 448 per token
  kFp8PerGroup128,  // dynamic: scale per token and 128 input channels (DeepSeek-V3 style)
  kInt8PerTensor,   // static: one calibrated scale (input_scale = amax / 127)
  kInt8PerToken,    // dynamic: scale = row amax / 127 per token
  kNvfp4,           // dynamic 16-element blocks under a calibrated global scale
};
std::string_view activation_quant_name(ActivationQuant a);
// True when the scheme needs a calibrated per-tensor input scale.
bool activation_quant_is_static(ActivationQuant a);

// Which weight-side algorithm runs before rounding.
// kAwqGptq: AWQ's scale search and folding (no clipping), then GPTQ rounding of the scaled
// weights.
enum class WeightAlgorithm : uint8_t { kRtn, kAwq, kGptq, kSmoothQuant, kAwqGptq };

// Everything one linear layer needs: stored weight format, input quantization, algorithm.
struct LinearQuantScheme {
  QuantAlgo algo = QuantAlgo::NO_QUANT;
  QuantSpec weight;  // F32/F16/BF16 when the layer stays unquantized
  ActivationQuant activation = ActivationQuant::kNone;
  WeightAlgorithm algorithm = WeightAlgorithm::kRtn;
  bool quantized() const { return algo != QuantAlgo::NO_QUANT; }
};

struct QuantConfig {
  QuantAlgo quant_algo = QuantAlgo::FP8;
  // FP8, INT8 or NO_QUANT (the KV cache stays F32 at run time, values fake-quantized).
  QuantAlgo kv_cache_quant_algo = QuantAlgo::NO_QUANT;
  int group_size = 128;          // INT4 group formats
  float smoothquant_val = 0.5f;  // SmoothQuant alpha
  bool has_zero_point = false;   // INT4 asymmetric (UINT4 + zero point)
  // Clamp applied to activations before calibration statistics (0 = none), as TRT-LLM's
  // clamp_val for SmoothQuant.
  float clamp_val = 0.0f;
  // Glob patterns (`*`, `?`) matched against module names ("model.layers.3.mlp.down_proj",
  // "lm_head"). lm_head and the embedding are never quantized.
  std::vector<std::string> exclude_modules = {"lm_head"};
  // Per-layer overrides: glob -> algorithm (the first matching pattern wins).
  std::vector<std::pair<std::string, QuantAlgo>> layer_overrides;
  // MIXED_PRECISION: the average bits per weight budget and the candidate algorithms.
  double auto_quantize_bits = 0.0;
  std::vector<QuantAlgo> auto_quantize_candidates = {QuantAlgo::W4A16_AWQ, QuantAlgo::FP8};
  // Per-head (instead of per-layer) KV-cache scales.
  bool kv_cache_per_head = false;
};

// Checks every field (group size a power of two >= 16, alpha in [0, 1], KV algorithm FP8/INT8/
// NO_QUANT, MIXED_PRECISION has a budget, ...). Errors name the field and value.
Status validate_quant_config(const QuantConfig& config);

// The scheme QuantConfig gives a uniform algorithm (not MIXED_PRECISION).
Result<LinearQuantScheme> scheme_for_algo(QuantAlgo algo, const QuantConfig& config);

// Glob match with `*` (any run) and `?` (one character).
bool glob_match(std::string_view pattern, std::string_view text);

// The scheme for module `name` ("model.layers.0.self_attn.q_proj"): NO_QUANT when excluded, the
// first matching override, else the config's algorithm (for MIXED_PRECISION a placeholder whose
// algo is MIXED_PRECISION: the auto-quantize plan decides).
Result<LinearQuantScheme> scheme_for_module(const QuantConfig& config, std::string_view name);

// Effective bits per weight of an algorithm's weight storage (for auto-quantize budgets).
double algo_bits_per_weight(QuantAlgo algo, const QuantConfig& config);

}  // namespace qforge
