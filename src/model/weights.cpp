// ModelWeights (named tensor views plus the memory that backs them) and validate_model_weights,
// which checks a loaded model against the tensor list in weights.h.
#include "qforge/model/weights.h"

namespace qforge {
namespace {

std::string source_suffix(const std::string& source) {
  return source.empty() ? std::string() : fmt::format(" (loaded from {})", source);
}

Status expect_tensor(const ModelWeights& weights, const std::string& name, const Shape& shape) {
  auto it = weights.tensors().find(name);
  if (it == weights.tensors().end()) {
    return make_error(ErrorCode::kNotFound,
                      "model weights: tensor '{}' {} is missing{} (expected by the config; is the "
                      "checkpoint complete and of the architecture the config names?)",
                      name, shape, source_suffix(weights.source()));
  }
  const TensorView& view = it->second;
  if (!(view.shape() == shape)) {
    return make_error(ErrorCode::kFormat,
                      "model weights: tensor '{}' has shape {} but the config implies {}{}", name,
                      view.shape(), shape, source_suffix(weights.source()));
  }
  const DType dt = view.dtype();
  if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16) {
    return make_error(ErrorCode::kUnsupported,
                      "model weights: tensor '{}' has dtype {}; the runtime reads f32, f16 or "
                      "bf16{} (dequantize the checkpoint first)",
                      name, dt, source_suffix(weights.source()));
  }
  return ok_status();
}

}  // namespace

Status ModelWeights::add(std::string name, TensorView view,
                         std::shared_ptr<const void> keep_alive) {
  if (name.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "ModelWeights::add: empty tensor name{}",
                      source_suffix(source_));
  }
  if (tensors_.count(name) != 0) {
    return make_error(ErrorCode::kFormat,
                      "model weights: tensor '{}' appears twice{} (duplicate entry in the "
                      "checkpoint or its shard index)",
                      name, source_suffix(source_));
  }
  tensors_.emplace(std::move(name), view);
  if (keep_alive != nullptr) {
    bool known = false;
    for (const auto& k : keep_alive_) known = known || k == keep_alive;
    if (!known) keep_alive_.push_back(std::move(keep_alive));
  }
  return ok_status();
}

Result<TensorView> ModelWeights::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return make_error(ErrorCode::kNotFound, "model weights: no tensor named '{}'{} ({} tensors)",
                      name, source_suffix(source_), tensors_.size());
  }
  return it->second;
}

Result<TensorView> ModelWeights::output_head(const ModelConfig& config) const {
  if (!config.tie_word_embeddings || contains("lm_head.weight")) return get("lm_head.weight");
  return get("model.embed_tokens.weight");
}

Status validate_model_weights(const ModelConfig& c, const ModelWeights& w,
                              const std::map<std::string, QuantizedLinear>* quantized,
                              const std::set<std::string>* factory_linears) {
  const int64_t h = c.hidden_size;
  const auto expect_linear = [&](const std::string& name, int64_t rows, int64_t cols) -> Status {
    const std::string module = name.substr(0, name.size() - std::string_view(".weight").size());
    if (factory_linears != nullptr && factory_linears->count(module) != 0) return ok_status();
    if (quantized != nullptr) {
      if (auto it = quantized->find(module); it != quantized->end()) {
        const QuantizedMatrix& q = it->second.weight;
        if (q.rows != rows || q.cols != cols) {
          return make_error(ErrorCode::kFormat,
                            "{}: quantized weight '{}' is [{}, {}]; the config implies [{}, {}]",
                            w.source(), name, q.rows, q.cols, rows, cols);
        }
        return ok_status();
      }
    }
    return expect_tensor(w, name, {rows, cols});
  };
  QF_TRY(expect_tensor(w, "model.embed_tokens.weight", {c.vocab_size, h}));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    QF_TRY(expect_tensor(w, p + "input_layernorm.weight", {h}));
    QF_TRY(expect_linear(p + "self_attn.q_proj.weight", c.q_dim(), h));
    QF_TRY(expect_linear(p + "self_attn.k_proj.weight", c.kv_dim(), h));
    QF_TRY(expect_linear(p + "self_attn.v_proj.weight", c.kv_dim(), h));
    QF_TRY(expect_linear(p + "self_attn.o_proj.weight", h, c.q_dim()));
    if (c.attention_bias) {
      QF_TRY(expect_tensor(w, p + "self_attn.q_proj.bias", {c.q_dim()}));
      QF_TRY(expect_tensor(w, p + "self_attn.k_proj.bias", {c.kv_dim()}));
      QF_TRY(expect_tensor(w, p + "self_attn.v_proj.bias", {c.kv_dim()}));
    }
    if (c.qk_norm) {
      QF_TRY(expect_tensor(w, p + "self_attn.q_norm.weight", {c.head_dim}));
      QF_TRY(expect_tensor(w, p + "self_attn.k_norm.weight", {c.head_dim}));
    }
    QF_TRY(expect_tensor(w, p + "post_attention_layernorm.weight", {h}));
    QF_TRY(expect_linear(p + "mlp.gate_proj.weight", c.intermediate_size, h));
    QF_TRY(expect_linear(p + "mlp.up_proj.weight", c.intermediate_size, h));
    QF_TRY(expect_linear(p + "mlp.down_proj.weight", h, c.intermediate_size));
  }
  QF_TRY(expect_tensor(w, "model.norm.weight", {h}));
  if (!c.tie_word_embeddings || w.contains("lm_head.weight")) {
    QF_TRY(expect_linear("lm_head.weight", c.vocab_size, h));
  }
  return ok_status();
}

}  // namespace qforge
