// BlockRunner and tapped layers (block_runner.h).
#include "quant/block_runner.h"

#include "model/llama_layer.h"
#include "qforge/model/rope.h"

namespace qforge::quant_internal {
namespace {

// Forwards to another WeightMatrix, reporting the input first when a tap is set.
class TappedMatrix final : public WeightMatrix {
 public:
  TappedMatrix(const WeightMatrix& inner, const InputTap* tap, LinearGroup group)
      : inner_(inner), tap_(tap), group_(group) {}
  int64_t rows() const override { return inner_.rows(); }
  int64_t cols() const override { return inner_.cols(); }
  std::string format_name() const override { return inner_.format_name(); }
  uint64_t storage_bytes() const override { return inner_.storage_bytes(); }
  void matmul(const float* x, int64_t m, float* y) const override {
    if (tap_ != nullptr) (*tap_)(group_, x, m, inner_.cols());
    inner_.matmul(x, m, y);
  }
  void row_to_f32(int64_t row, float* out) const override { inner_.row_to_f32(row, out); }

 private:
  const WeightMatrix& inner_;
  const InputTap* tap_;
  LinearGroup group_;
};

}  // namespace

BlockRunner::BlockRunner(const ModelConfig& c, int64_t seq_len) : config_(c), seq_len_(seq_len) {
  const auto n = static_cast<size_t>(seq_len);
  xb_.resize(n * c.hidden_size);
  q_.resize(n * c.q_dim());
  k_.resize(n * c.kv_dim());
  v_.resize(n * c.kv_dim());
  att_.resize(n * c.q_dim());
  gate_.resize(n * c.intermediate_size);
  up_.resize(n * c.intermediate_size);
  cos_.resize(n * (c.head_dim / 2));
  sin_.resize(n * (c.head_dim / 2));
  k_cache_.resize(n * c.kv_dim());
  v_cache_.resize(n * c.kv_dim());
  const RopeFrequencies freqs = rope_frequencies(c, seq_len);
  rope_cos_sin(freqs, 0, seq_len, cos_.data(), sin_.data());
}

void BlockRunner::run(const DecoderLayer& layer, float* x, const InputTap* input_tap,
                      const KvTap* kv_tap, const KvCacheQuant* kv_quant, int64_t layer_index) {
  model_internal::LayerBatch b;
  b.n_tokens = seq_len_;
  b.pos0 = 0;
  b.x = x;
  b.xb = xb_.data();
  b.q = q_.data();
  b.k = k_.data();
  b.v = v_.data();
  b.att = att_.data();
  b.gate = gate_.data();
  b.up = up_.data();
  b.cos = cos_.data();
  b.sin = sin_.data();
  b.k_cache = k_cache_.data();
  b.v_cache = v_cache_.data();
  b.capacity = seq_len_;
  b.kv_quant = kv_quant;
  b.layer_index = layer_index;
  if (input_tap == nullptr) {
    model_internal::llama_layer_forward(config_, layer, b);
  } else {
    const DecoderLayer tapped = make_tapped_layer(layer, *input_tap);
    model_internal::llama_layer_forward(config_, tapped, b);
  }
  if (kv_tap != nullptr) (*kv_tap)(k_cache_.data(), v_cache_.data());
}

DecoderLayer make_tapped_layer(const DecoderLayer& layer, const InputTap& tap) {
  DecoderLayer t;
  const auto wrap = [](const WeightMatrix& m, const InputTap* tp, LinearGroup g) {
    return std::unique_ptr<WeightMatrix>(std::make_unique<TappedMatrix>(m, tp, g));
  };
  t.q_proj = wrap(*layer.q_proj, &tap, LinearGroup::kAttnIn);
  t.k_proj = wrap(*layer.k_proj, nullptr, LinearGroup::kAttnIn);
  t.v_proj = wrap(*layer.v_proj, nullptr, LinearGroup::kAttnIn);
  t.o_proj = wrap(*layer.o_proj, &tap, LinearGroup::kAttnOut);
  t.gate_proj = wrap(*layer.gate_proj, &tap, LinearGroup::kMlpIn);
  t.up_proj = wrap(*layer.up_proj, nullptr, LinearGroup::kMlpIn);
  t.down_proj = wrap(*layer.down_proj, &tap, LinearGroup::kMlpMid);
  t.input_norm = layer.input_norm;
  t.post_attention_norm = layer.post_attention_norm;
  t.q_norm = layer.q_norm;
  t.k_norm = layer.k_norm;
  t.q_bias = layer.q_bias;
  t.k_bias = layer.k_bias;
  t.v_bias = layer.v_bias;
  return t;
}

}  // namespace qforge::quant_internal
