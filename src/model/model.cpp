// Model construction (include/qforge/model/model.h): validation of a loaded checkpoint, the
// WeightMatrix wrappers around its matrices and the F32 copies of its small vectors.
#include "qforge/model/model.h"

#include <fmt/format.h>

#include "backend/cpu/vector_ops.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/quantized_linear.h"

namespace qforge {
namespace {

// A 1-D weight (norm, bias) of `expected` elements, widened to F32.
Result<std::vector<float>> vector_f32(const ModelWeights& w, const std::string& name,
                                      int64_t expected) {
  QF_ASSIGN_OR_RETURN(TensorView view, w.get(name));
  if (view.numel() != expected || !view.is_contiguous()) {
    return make_error(ErrorCode::kFormat,
                      "model weights: '{}' is {}; expected {} contiguous elements", name,
                      view.to_string(), expected);
  }
  const DType dt = view.dtype();
  if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16) {
    return make_error(ErrorCode::kUnsupported,
                      "model weights: '{}' has dtype {}; expected f32, f16 or bf16", name,
                      dtype_name(dt));
  }
  std::vector<float> out(static_cast<size_t>(expected));
  cpu::convert_to_f32_ref(view.data(), dt, expected, out.data());
  return out;
}

// [rows, cols] of a linear weight by its name (weights.h), from the config.
std::pair<int64_t, int64_t> expected_linear_shape(const ModelConfig& c, const std::string& name) {
  const auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const int64_t h = c.hidden_size;
  if (ends("q_proj.weight")) return {c.q_dim(), h};
  if (ends("k_proj.weight") || ends("v_proj.weight")) return {c.kv_dim(), h};
  if (ends("o_proj.weight")) return {h, c.q_dim()};
  if (ends("gate_proj.weight") || ends("up_proj.weight")) return {c.intermediate_size, h};
  if (ends("down_proj.weight")) return {h, c.intermediate_size};
  return {c.vocab_size, h};  // embed_tokens, lm_head
}

}  // namespace

Result<std::unique_ptr<WeightMatrix>> dense_weight_matrix_factory(const ModelWeights& weights,
                                                                  const std::string& name) {
  QF_ASSIGN_OR_RETURN(TensorView view, weights.get(name));
  return make_dense_weight_matrix(view, name);
}

Result<std::shared_ptr<const Model>> Model::create(LoadedModel loaded,
                                                   const WeightMatrixFactory& factory) {
  QF_TRY(validate_model_config(loaded.config).context("model config"));
  QF_TRY(validate_model_weights(loaded.config, loaded.weights, &loaded.quantized_linears,
                                &loaded.factory_linears));
  QF_TRY(validate_kv_cache_quant(loaded.kv_cache_quant, loaded.config.num_hidden_layers,
                                 loaded.config.num_key_value_heads)
             .context(loaded.weights.source()));
  std::shared_ptr<Model> model(new Model());
  model->loaded_ = std::move(loaded);
  const ModelConfig& c = model->loaded_.config;
  const ModelWeights& w = model->loaded_.weights;
  const auto& quantized = model->loaded_.quantized_linears;
  const auto matrix = [&](const std::string& name) -> Result<std::unique_ptr<WeightMatrix>> {
    // A quantized checkpoint's linears: dequantized once, inputs quantized per the scheme.
    const std::string module = name.substr(0, name.rfind('.'));
    if (auto it = quantized.find(module); it != quantized.end()) {
      const QuantizedLinear& q = it->second;
      ActivationQuantParams a;
      a.kind = q.scheme.activation;
      a.input_scale = q.input_scale;
      a.pre_quant_scale = q.pre_quant_scale;
      return make_quantized_weight_matrix(q.weight, std::move(a)).context(name);
    }
    QF_ASSIGN_OR_RETURN(std::unique_ptr<WeightMatrix> m, factory(w, name));
    if (model->loaded_.factory_linears.count(module) != 0) {
      const auto [rows, cols] = expected_linear_shape(c, name);
      if (m->rows() != rows || m->cols() != cols) {
        return make_error(ErrorCode::kFormat,
                          "{}: weight '{}' is [{}, {}]; the config implies [{}, {}]", w.source(),
                          name, m->rows(), m->cols(), rows, cols);
      }
    }
    return m;
  };

  QF_ASSIGN_OR_RETURN(model->embed_tokens_, matrix("model.embed_tokens.weight"));
  if (!c.tie_word_embeddings) {
    QF_ASSIGN_OR_RETURN(model->lm_head_, matrix("lm_head.weight"));
  }
  QF_ASSIGN_OR_RETURN(model->final_norm_, vector_f32(w, "model.norm.weight", c.hidden_size));

  model->layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    DecoderLayer& l = model->layers_[static_cast<size_t>(i)];
    const std::string p = fmt::format("model.layers.{}.", i);
    QF_ASSIGN_OR_RETURN(l.q_proj, matrix(p + "self_attn.q_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.k_proj, matrix(p + "self_attn.k_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.v_proj, matrix(p + "self_attn.v_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.o_proj, matrix(p + "self_attn.o_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.gate_proj, matrix(p + "mlp.gate_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.up_proj, matrix(p + "mlp.up_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.down_proj, matrix(p + "mlp.down_proj.weight"));
    QF_ASSIGN_OR_RETURN(l.input_norm, vector_f32(w, p + "input_layernorm.weight", c.hidden_size));
    QF_ASSIGN_OR_RETURN(l.post_attention_norm,
                        vector_f32(w, p + "post_attention_layernorm.weight", c.hidden_size));
    if (c.qk_norm) {
      QF_ASSIGN_OR_RETURN(l.q_norm, vector_f32(w, p + "self_attn.q_norm.weight", c.head_dim));
      QF_ASSIGN_OR_RETURN(l.k_norm, vector_f32(w, p + "self_attn.k_norm.weight", c.head_dim));
    }
    if (c.attention_bias) {
      QF_ASSIGN_OR_RETURN(l.q_bias, vector_f32(w, p + "self_attn.q_proj.bias", c.q_dim()));
      QF_ASSIGN_OR_RETURN(l.k_bias, vector_f32(w, p + "self_attn.k_proj.bias", c.kv_dim()));
      QF_ASSIGN_OR_RETURN(l.v_bias, vector_f32(w, p + "self_attn.v_proj.bias", c.kv_dim()));
    }
  }
  return std::shared_ptr<const Model>(std::move(model));
}

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  QF_ASSIGN_OR_RETURN(LoadedModel loaded, load_model(path));
  return create(std::move(loaded)).context(fmt::format("loading model '{}'", path));
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, view] : loaded_.weights.tensors()) n += view.numel();
  return n;
}

uint64_t Model::decode_weight_bytes() const {
  uint64_t bytes = 0;
  const auto small = [](const std::vector<float>& v) { return v.size() * sizeof(float); };
  for (const DecoderLayer& l : layers_) {
    for (const auto* m :
         {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      bytes += (*m)->storage_bytes();
    }
    bytes += small(l.input_norm) + small(l.post_attention_norm) + small(l.q_norm) +
             small(l.k_norm) + small(l.q_bias) + small(l.k_bias) + small(l.v_bias);
  }
  bytes += lm_head().storage_bytes() + small(final_norm_);
  bytes += embed_tokens_->storage_bytes() / static_cast<uint64_t>(embed_tokens_->rows());
  return bytes;
}

}  // namespace qforge
