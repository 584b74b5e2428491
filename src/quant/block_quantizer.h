// Quantizes one decoder block given its calibration inputs (the previous block's quantized
// outputs): statistics pass, SmoothQuant / AWQ scales folded into the producers, AWQ clipping,
// static input scales and GPTQ Hessians from a pass over the transformed float block, rounding
// of every linear, then the quantized block's outputs for the next block and its K/V ranges.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/calib/observer.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/model/model.h"
#include "qforge/quant/quant_config.h"
#include "qforge/quant/quantize.h"

namespace qforge::quant_internal {

struct BlockQuantOptions {
  const QuantConfig* quant_config = nullptr;
  AmaxMethod amax_method = AmaxMethod::kMax;
  double percentile = 99.99;
  int64_t awq_max_tokens = 2048;
  int awq_grid = 20;
  AwqDuoScaling awq_duo_scaling = AwqDuoScaling::kOn;
  GptqOptions gptq;
  bool collect_kv = false;   // measure K/V amax (KV-cache quantization requested)
  bool kv_per_head = false;  // one K/V amax per KV head instead of per layer
  ObserverTarget kv_target = ObserverTarget::kFp8E4M3;
  // Scales that cannot be folded (SmoothQuant on o_proj under grouped-query attention) may be
  // kept as pre_quant_scale; when the export format has no such tensor, o_proj stays unsmoothed
  // (as llm-compressor's SmoothQuant mappings do).
  bool allow_pre_quant_scale = true;
  // The scheme of each module; defaults to scheme_for_module(*quant_config, name).
  std::function<Result<LinearQuantScheme>(const std::string& module)> scheme_for;
};

struct QuantizedBlock {
  std::vector<QuantizedLinear> linears;  // the quantized linear layers
  // Tensors written as F32 because scale folding changed them (norms, producers left
  // unquantized): full tensor name -> values.
  std::vector<std::pair<std::string, std::vector<float>>> changed_tensors;
  // |K|, |V| ranges of this block's cache: [n_kv_heads] when per head, else [1].
  std::vector<float> k_amax, v_amax;
  std::vector<LayerQuantReport> reports;
};

// The samples AWQ's scale-search loss runs on: min(n_samples, max(1, awq_max_tokens / seq_len))
// of them, evenly spaced (sample i * n_samples / k), so that every set of a mixed calibration
// takes part.
std::vector<int64_t> awq_sample_indices(int64_t n_samples, int64_t seq_len, int64_t awq_max_tokens);

// hidden: [n_samples, seq_len, hidden] on input: the block's inputs; on output: its outputs
// through the quantized block.
Result<QuantizedBlock> quantize_block(const Model& model, int64_t layer_index,
                                      const BlockQuantOptions& options, std::vector<float>& hidden,
                                      int64_t n_samples, int64_t seq_len);

}  // namespace qforge::quant_internal
