// A loaded model: its config plus named weight tensors, whatever file format they came from.
// Tensor names are the Hugging Face transformers names (the canonical roles):
//   model.embed_tokens.weight                         [vocab, hidden]
//   model.layers.{i}.input_layernorm.weight           [hidden]
//   model.layers.{i}.self_attn.q_proj.weight          [n_heads * head_dim, hidden]   (+ .bias)
//   model.layers.{i}.self_attn.k_proj.weight          [n_kv_heads * head_dim, hidden] (+ .bias)
//   model.layers.{i}.self_attn.v_proj.weight          [n_kv_heads * head_dim, hidden] (+ .bias)
//   model.layers.{i}.self_attn.o_proj.weight          [hidden, n_heads * head_dim]
//   model.layers.{i}.self_attn.q_norm.weight          [head_dim]   (qwen3)
//   model.layers.{i}.self_attn.k_norm.weight          [head_dim]   (qwen3)
//   model.layers.{i}.post_attention_layernorm.weight  [hidden]
//   model.layers.{i}.mlp.gate_proj.weight             [intermediate, hidden]
//   model.layers.{i}.mlp.up_proj.weight               [intermediate, hidden]
//   model.layers.{i}.mlp.down_proj.weight             [hidden, intermediate]
//   model.norm.weight                                 [hidden]
//   lm_head.weight                                    [vocab, hidden]  (absent when tied)
// All weights are row-major (out_features, in_features), as torch.nn.Linear stores them.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/model/config.h"
#include "qforge/model/kv_cache_quant.h"

namespace qforge {

class ModelWeights {
 public:
  // Adds a tensor; `keep_alive` owns the memory the view points into (an mmap, a heap buffer).
  Status add(std::string name, TensorView view, std::shared_ptr<const void> keep_alive);

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Errors name the missing tensor and the file the model came from.
  Result<TensorView> get(const std::string& name) const;
  // The output head: lm_head.weight, or the embedding when the config ties them.
  Result<TensorView> output_head(const ModelConfig& config) const;

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  void set_source(std::string source) { source_ = std::move(source); }
  const std::string& source() const { return source_; }

 private:
  std::map<std::string, TensorView> tensors_;
  std::vector<std::shared_ptr<const void>> keep_alive_;
  std::string source_;
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
  std::string format;  // "hf-safetensors", "gguf", "llama2c", "llama2c-q80"
  // KV-cache format and calibrated scales (a quantized checkpoint's k_scale / v_scale).
  KvCacheQuant kv_cache_quant;
  // A quantized checkpoint's linear layers (module name -> codes, scales, activation scheme);
  // their ".weight" tensors in `weights` are the raw stored codes (or absent).
  std::map<std::string, QuantizedLinear> quantized_linears;
  // Modules ("model.layers.0.mlp.up_proj") whose weights the WeightMatrixFactory supplies from
  // elsewhere (an engine's packed blobs): they have no ".weight" tensor; Model::create checks the
  // shapes of the matrices the factory returns instead.
  std::set<std::string> factory_linears;
};

// Checks that every tensor the config implies is present with the right shape and a dtype the
// runtime reads (F32/F16/BF16). Errors name the tensor, the expected and the actual shape.
// Linears listed in `quantized` are checked by their QuantizedMatrix shape instead.
// Linears listed in `factory_linears` are not checked here (Model::create checks them).
Status validate_model_weights(const ModelConfig& config, const ModelWeights& weights,
                              const std::map<std::string, QuantizedLinear>* quantized = nullptr,
                              const std::set<std::string>* factory_linears = nullptr);

}  // namespace qforge
