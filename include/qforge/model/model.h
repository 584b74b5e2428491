// Model: a decoder-only Llama-family model ready to run on the CPU — its config plus every weight
// wrapped as a WeightMatrix that reads the checkpoint's (mmapped) memory in place. Immutable and
// shared: any number of InferenceSessions (inference_session.h) can run one Model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/config.h"
#include "qforge/model/weight_matrix.h"
#include "qforge/model/weights.h"

namespace qforge {

// One decoder block. Norm weights and biases are small; they are converted to F32 once at load.
struct DecoderLayer {
  std::unique_ptr<WeightMatrix> q_proj;       // [n_heads * head_dim, hidden]
  std::unique_ptr<WeightMatrix> k_proj;       // [n_kv_heads * head_dim, hidden]
  std::unique_ptr<WeightMatrix> v_proj;       // [n_kv_heads * head_dim, hidden]
  std::unique_ptr<WeightMatrix> o_proj;       // [hidden, n_heads * head_dim]
  std::unique_ptr<WeightMatrix> gate_proj;    // [intermediate, hidden]
  std::unique_ptr<WeightMatrix> up_proj;      // [intermediate, hidden]
  std::unique_ptr<WeightMatrix> down_proj;    // [hidden, intermediate]
  std::vector<float> input_norm;              // [hidden]
  std::vector<float> post_attention_norm;     // [hidden]
  std::vector<float> q_norm, k_norm;          // [head_dim] when config.qk_norm, else empty
  std::vector<float> q_bias, k_bias, v_bias;  // [q_dim] / [kv_dim] when attention_bias
};

// Builds the WeightMatrix of one linear weight (`name` as in weights.h, e.g.
// "model.layers.3.mlp.up_proj.weight") from the loaded tensors. The default wraps F32/F16/BF16
// tensors in place; a quantized checkpoint supplies its own (reading codes and scales by name).
using WeightMatrixFactory = std::function<Result<std::unique_ptr<WeightMatrix>>(
    const ModelWeights& weights, const std::string& name)>;
Result<std::unique_ptr<WeightMatrix>> dense_weight_matrix_factory(const ModelWeights& weights,
                                                                  const std::string& name);

class Model {
 public:
  // Takes a loaded checkpoint (its memory stays alive with the Model), validates config and
  // weights, and wraps every matrix through `factory`. Errors name the tensor and the file.
  static Result<std::shared_ptr<const Model>> create(
      LoadedModel loaded, const WeightMatrixFactory& factory = dense_weight_matrix_factory);
  // load_model(path) (HF directory, .safetensors, .gguf, llama2.c .bin), then create().
  static Result<std::shared_ptr<const Model>> load(const std::string& path);

  const ModelConfig& config() const { return loaded_.config; }
  const std::string& source() const { return loaded_.weights.source(); }
  const std::string& format() const { return loaded_.format; }
  const ModelWeights& weights() const { return loaded_.weights; }

  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  const DecoderLayer& layer(int64_t i) const { return layers_[static_cast<size_t>(i)]; }
  const WeightMatrix& embed_tokens() const { return *embed_tokens_; }
  // lm_head.weight, or the embedding when the config ties them.
  const WeightMatrix& lm_head() const { return lm_head_ ? *lm_head_ : *embed_tokens_; }
  const std::vector<float>& final_norm() const { return final_norm_; }
  const KvCacheQuant& kv_cache_quant() const { return loaded_.kv_cache_quant; }
  // The quantized linears of a quantized checkpoint (module name -> codes, scales, scheme).
  const std::map<std::string, QuantizedLinear>& quantized_linears() const {
    return loaded_.quantized_linears;
  }

  // Elements of every weight tensor (a tied embedding counted once).
  int64_t parameter_count() const;
  // Bytes of weights one decode step reads: every layer matrix, the output head, the norms and
  // biases, and one embedding row.
  uint64_t decode_weight_bytes() const;

 private:
  Model() = default;

  LoadedModel loaded_;
  std::vector<DecoderLayer> layers_;
  std::unique_ptr<WeightMatrix> embed_tokens_;
  std::unique_ptr<WeightMatrix> lm_head_;  // null when tied
  std::vector<float> final_norm_;
};

}  // namespace qforge
