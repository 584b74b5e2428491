// Quantized Hugging Face checkpoints in NVIDIA ModelOpt's "hf" export layout (hf_quant_config.json;
// TensorRT-LLM, vLLM "modelopt") and compressed-tensors' (llm-compressor, vLLM). Every tensor
// name, dtype and shape: docs/CHECKPOINT_FORMATS.md "Quantized checkpoints".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/formats/quantize.h"
#include "qforge/io/safetensors.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

enum class QuantExportFormat : uint8_t {
  kModelOpt,           // ModelOpt unified HF export (TensorRT-LLM, vLLM "modelopt")
  kCompressedTensors,  // compressed-tensors (llm-compressor, vLLM "compressed-tensors")
};

std::string_view quant_export_format_name(QuantExportFormat format);  // "modelopt", ...
// Accepts "modelopt", "compressed-tensors" (or "compressed_tensors", "ct").
Result<QuantExportFormat> parse_quant_export_format(std::string_view text);

// One linear layer as qforge holds it in memory.
struct QuantizedLinear {
  std::string module;        // "model.layers.0.self_attn.q_proj"
  LinearQuantScheme scheme;  // scheme.weight must describe `weight`
  QuantizedMatrix weight;    // [out_features, in_features]; NVFP4 tensor_scale = weight_scale_2
  // Static activation dequantization scale (FP8 amax/448, INT8 amax/127, NVFP4 amax/(6*448));
  // 0 when the scheme's activations are dynamic or unquantized.
  float input_scale = 0.0f;
  // [in_features] input multiplier (AWQ / SmoothQuant scales not folded into the previous op);
  // empty when none. ModelOpt only: compressed-tensors has no such tensor.
  std::vector<float> pre_quant_scale;
  // The dtype pre_quant_scale is stored in. ModelOpt keeps it in the model's dtype and
  // TensorRT-LLM's W4A8_AWQ loader insists on that, so exports for it use F16/BF16. Every value
  // must be exactly representable in it (the write fails otherwise, so round trips are exact).
  DType pre_quant_scale_dtype = DType::F32;
};

// Adds the layer's tensors ("<module>.weight", "<module>.weight_scale", ...) to `writer` in the
// chosen layout. Errors: a weight that does not match its scheme (naming both), a static scheme
// without a positive input_scale, a combination the format cannot express (kUnsupported, naming
// the algorithm and the format), a group size that does not divide in_features where the format
// stores [out, in / group] scales without padding.
Status write_quantized_linear(const QuantizedLinear& layer, QuantExportFormat format,
                              SafetensorsWriter& writer);

// Looks tensors up by full name: a view (usually into an mmapped file) or nullopt when absent.
using TensorLookup = std::function<std::optional<TensorView>(const std::string& name)>;
// A lookup over one safetensors file; `file` must outlive the lookup and its views.
TensorLookup safetensors_lookup(const SafetensorsFile& file);

// Reads one layer back. What write_quantized_linear wrote comes back bit for bit (codes, block
// and group scales, input_scale, pre_quant_scale and its dtype), with one documented exception:
// compressed-tensors stores the NVFP4 global scales as reciprocals (weight_global_scale =
// 1 / weight_scale_2, input_global_scale = 1 / input_scale), and 1 / (1 / s) differs from s by
// one ulp for about 17% of FP32 values, so those two come back as 1 / stored. Third-party files
// are validated (names, dtypes, shapes against each other and the scheme, code ranges); F32
// group scales (ModelOpt INT4) are rounded to the scheme's scale type.
Result<QuantizedLinear> read_quantized_linear(const TensorLookup& lookup, const std::string& module,
                                              const LinearQuantScheme& scheme,
                                              QuantExportFormat format);

// Per-layer (or per-KV-head) KV-cache dequantization scales: FP8 amax/448, INT8 amax/127.
struct KvCacheScales {
  QuantAlgo algo = QuantAlgo::FP8;  // FP8 or INT8
  bool per_head = false;
  int64_t n_kv_heads = 0;  // heads per layer when per_head
  // [n_layers] or, per head, [n_layers * n_kv_heads] layer-major.
  std::vector<float> k_scale;
  std::vector<float> v_scale;
};

// ModelOpt: "{prefix}.{i}.self_attn.k_proj.k_scale" / "...v_proj.v_scale", F32 scalars (per-layer
// only). compressed-tensors: "{prefix}.{i}.self_attn.k_scale" / "v_scale", F32 [1] or, per head,
// [n_kv_heads, 1, 1]. `layers_prefix` is "model.layers" for Llama-style models.
Status write_kv_cache_scales(const KvCacheScales& scales, QuantExportFormat format,
                             SafetensorsWriter& writer,
                             std::string_view layers_prefix = "model.layers");
// Reads n_layers layers back (either naming is accepted, as vLLM does); per_head follows the
// stored shape. `algo` (FP8 or INT8) comes from the checkpoint's config.
Result<KvCacheScales> read_kv_cache_scales(const TensorLookup& lookup, QuantExportFormat format,
                                           QuantAlgo algo, int64_t n_layers, int64_t n_kv_heads,
                                           std::string_view layers_prefix = "model.layers");

// Whole-checkpoint description: what hf_quant_config.json / config.json's quantization_config say.
struct QuantCheckpointInfo {
  QuantExportFormat format = QuantExportFormat::kModelOpt;
  QuantAlgo quant_algo = QuantAlgo::NO_QUANT;           // MIXED_PRECISION when layers differ
  QuantAlgo kv_cache_quant_algo = QuantAlgo::NO_QUANT;  // FP8, INT8 or NO_QUANT
  bool kv_cache_per_head = false;                       // compressed-tensors "attn_head"
  int group_size = 0;            // INT4 group size (NVFP4 16 and MXFP4 32 are implied); 0 if n/a
  bool has_zero_point = false;   // INT4 asymmetric (UINT4 + zero point)
  bool pre_quant_scale = false;  // ModelOpt AWQ layers carry "<module>.pre_quant_scale"
  std::vector<std::string> exclude_modules;  // wildcards (ModelOpt) / names (compressed-tensors)
  std::map<std::string, QuantAlgo> layer_algos;  // module -> algo; required for MIXED_PRECISION
  std::string producer_name = "qforge";
  std::string producer_version = "0.1.0";
};

// hf_quant_config.json (ModelOpt format only).
Result<nlohmann::json> make_hf_quant_config(const QuantCheckpointInfo& info);
// The "quantization_config" object of config.json, in info.format's spelling.
Result<nlohmann::json> make_quantization_config(const QuantCheckpointInfo& info);
// Reads config.json (the whole file's JSON) and, when present, hf_quant_config.json. nullopt when
// neither carries quantization info. Hostile or contradictory input gives errors naming the file
// and the key; quant methods other than modelopt / compressed-tensors are kUnsupported.
Result<std::optional<QuantCheckpointInfo>> parse_quant_checkpoint_info(
    const nlohmann::json& config_json, const nlohmann::json* hf_quant_config);

}  // namespace qforge
