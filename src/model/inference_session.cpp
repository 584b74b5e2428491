// InferenceSession (include/qforge/model/inference_session.h): KV-cache allocation, input
// validation, slicing long inputs into batches, embedding lookup, the layer loop and the head.
#include "qforge/model/inference_session.h"

#include <algorithm>

#include "model/llama_layer.h"
#include "qforge/core/parallel.h"

namespace qforge {

using model_internal::LayerBatch;

Result<InferenceSession> InferenceSession::create(std::shared_ptr<const Model> model,
                                                  SessionOptions options) {
  if (model == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "InferenceSession::create: model is null");
  }
  const ModelConfig& c = model->config();
  int64_t capacity = options.context_length;
  if (capacity == 0) capacity = std::min(c.max_position_embeddings, kDefaultContextCap);
  // Dynamic NTK RoPE exists to run past the trained length; every other model stops there.
  const bool extendable = c.rope_scaling.type == RopeScalingType::Dynamic;
  if (capacity < 1 || (capacity > c.max_position_embeddings && !extendable)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "context length {} is out of range; this model supports 1 to {} positions "
                      "(max_position_embeddings)",
                      options.context_length, c.max_position_embeddings);
  }
  if (options.max_batch_tokens < 1) {
    return make_error(ErrorCode::kInvalidArgument, "max_batch_tokens {} must be >= 1",
                      options.max_batch_tokens);
  }
  InferenceSession s;
  s.model_ = std::move(model);
  s.options_ = options;
  s.capacity_ = capacity;
  auto kv = Tensor::empty(
      DType::F32, Shape{c.num_hidden_layers, 2, c.num_key_value_heads, capacity, c.head_dim});
  if (!kv.ok()) {
    return std::move(kv).error().add_context(fmt::format(
        "allocating the KV cache for {} positions (lower the context length)", capacity));
  }
  s.kv_ = std::move(kv).value();
  s.kv_quant_ = options.kv_cache_quant ? *options.kv_cache_quant : s.model_->kv_cache_quant();
  QF_TRY(validate_kv_cache_quant(s.kv_quant_, c.num_hidden_layers, c.num_key_value_heads)
             .context("InferenceSession::create"));
  return s;
}

Status InferenceSession::rewind(int64_t n) {
  if (n < 0 || n > n_past_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "rewind({}): the session holds {} positions; expected 0 <= n <= {}", n,
                      n_past_, n_past_);
  }
  n_past_ = n;
  return ok_status();
}

void InferenceSession::forward_slice(const int32_t* tokens, int64_t n) {
  const ModelConfig& c = model_->config();
  const Model& m = *model_;
  Scratch& s = scratch_;
  const auto grow = [n](std::vector<float>& v, int64_t per_token) {
    const auto need = static_cast<size_t>(n * per_token);
    if (v.size() < need) v.resize(need);
  };
  grow(s.x, c.hidden_size);
  grow(s.xb, c.hidden_size);
  grow(s.q, c.q_dim());
  grow(s.k, c.kv_dim());
  grow(s.v, c.kv_dim());
  grow(s.att, c.q_dim());
  grow(s.gate, c.intermediate_size);
  grow(s.up, c.intermediate_size);
  grow(s.cos, c.head_dim / 2);
  grow(s.sin, c.head_dim / 2);

  // RoPE tables for positions [n_past_, n_past_ + n). Dynamic NTK depends on the length.
  const int64_t seq_len = n_past_ + n;
  const bool dynamic = c.rope_scaling.type == RopeScalingType::Dynamic;
  if (rope_seq_len_ < 0 || (dynamic && seq_len != rope_seq_len_)) {
    rope_ = rope_frequencies(c, seq_len);
    rope_seq_len_ = seq_len;
  }
  rope_cos_sin(rope_, n_past_, n, s.cos.data(), s.sin.data());

  // x: [n, hidden] = embedding rows.
  const int64_t d = c.hidden_size;
  parallel_for(0, n, std::max<int64_t>(1, (1 << 16) / d), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) m.embed_tokens().row_to_f32(tokens[t], s.x.data() + t * d);
  });

  const int64_t layer_floats = 2 * c.num_key_value_heads * capacity_ * c.head_dim;
  for (int64_t l = 0; l < m.n_layers(); ++l) {
    LayerBatch b;
    b.n_tokens = n;
    b.pos0 = n_past_;
    b.x = s.x.data();
    b.xb = s.xb.data();
    b.q = s.q.data();
    b.k = s.k.data();
    b.v = s.v.data();
    b.att = s.att.data();
    b.gate = s.gate.data();
    b.up = s.up.data();
    b.cos = s.cos.data();
    b.sin = s.sin.data();
    b.k_cache = kv_.data_as<float>() + l * layer_floats;
    b.v_cache = b.k_cache + layer_floats / 2;
    b.capacity = capacity_;
    b.kv_quant = &kv_quant_;
    b.layer_index = l;
    model_internal::llama_layer_forward(c, m.layer(l), b);
  }
  n_past_ += n;
}

Result<Tensor> InferenceSession::forward(std::span<const int32_t> tokens, LogitsMode mode) {
  const ModelConfig& c = model_->config();
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: no input tokens (pass at least one token id)");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      return make_error(ErrorCode::kInvalidArgument,
                        "forward: token id {} at index {} is outside the vocabulary [0, {})",
                        tokens[i], i, c.vocab_size);
    }
  }
  if (n_past_ + n > capacity_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: {} tokens after {} cached positions exceed the context length {} "
                      "(at most {} more fit; shorten the input or raise the context length; "
                      "max_position_embeddings = {})",
                      n, n_past_, capacity_, capacity_ - n_past_, c.max_position_embeddings);
  }

  Tensor logits;
  if (mode != LogitsMode::kNone) {
    const int64_t rows = mode == LogitsMode::kAll ? n : 1;
    QF_ASSIGN_OR_RETURN(logits, Tensor::empty(DType::F32, Shape{rows, c.vocab_size}));
  }
  const int64_t d = c.hidden_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  for (int64_t start = 0; start < n; start += options_.max_batch_tokens) {
    const int64_t len = std::min(options_.max_batch_tokens, n - start);
    forward_slice(tokens.data() + start, len);
    // The head runs on the rows whose logits were asked for.
    int64_t first = 0;
    int64_t rows = 0;
    if (mode == LogitsMode::kAll) {
      rows = len;
    } else if (mode == LogitsMode::kLast && start + len == n) {
      first = len - 1;
      rows = 1;
    }
    if (rows == 0) continue;
    float* xb = scratch_.xb.data();
    model_internal::rmsnorm_rows(scratch_.x.data() + first * d, model_->final_norm().data(), rows,
                                 d, eps, xb);
    float* out = logits.data_as<float>() + (mode == LogitsMode::kAll ? start * c.vocab_size : 0);
    model_->lm_head().matmul(xb, rows, out);  // [rows, vocab]
  }
  return logits;
}

}  // namespace qforge
