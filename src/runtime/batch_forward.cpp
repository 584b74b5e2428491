// BatchForward (batch_forward.h): embedding rows, the decoder layers over the concatenated rows
// with per-sequence paged attention, and the head on the rows whose logits were asked for.
#include "runtime/batch_forward.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "backend/cpu/paged_attention.h"
#include "backend/cpu/vector_ops.h"
#include "model/llama_layer.h"
#include "qforge/core/parallel.h"

namespace qforge::runtime_internal {
namespace {

// Per-row loops are split into chunks of at least this many elements.
constexpr int64_t kElementwiseGrain = 1 << 16;

cpu::PagedKvDType paged_dtype(KvCacheStorage s) {
  switch (s) {
    case KvCacheStorage::kF16:
      return cpu::PagedKvDType::kF16;
    case KvCacheStorage::kBF16:
      return cpu::PagedKvDType::kBF16;
    case KvCacheStorage::kFp8:
      return cpu::PagedKvDType::kFp8E4M3FN;
    case KvCacheStorage::kInt8:
      return cpu::PagedKvDType::kInt8;
    default:
      return cpu::PagedKvDType::kF32;
  }
}

// fn(row) for every row in [0, n), rows of `row_elems` elements, split over the threads.
template <typename Fn>
void for_rows(int64_t n, int64_t row_elems, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(row_elems, 1));
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

void add_bias_rows(float* y, const std::vector<float>& bias, int64_t n) {
  if (bias.empty()) return;
  const auto dim = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t) {
    float* row = y + t * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] += bias[i];
  }
}

}  // namespace

BatchForward::BatchForward(std::shared_ptr<const Model> model, PagedKvCache* cache,
                           bool deterministic)
    : model_(std::move(model)), cache_(cache), deterministic_(deterministic) {
  rope_ = rope_frequencies(model_->config(), model_->config().max_position_embeddings);
  if (deterministic_) {
    for (int64_t l = 0; l < model_->n_layers(); ++l) {
      const DecoderLayer& layer = model_->layer(l);
      for (const WeightMatrix* w :
           {layer.q_proj.get(), layer.k_proj.get(), layer.v_proj.get(), layer.o_proj.get(),
            layer.gate_proj.get(), layer.up_proj.get(), layer.down_proj.get()}) {
        pad_layers_ = pad_layers_ || !w->rows_independent_of_batch();
      }
    }
    pad_head_ = !model_->lm_head().rows_independent_of_batch();
  }
}

Status BatchForward::run(std::span<const SequenceChunk> chunks, std::vector<float>* logits) {
  const ModelConfig& c = model_->config();
  const Model& m = *model_;
  int64_t n = 0;
  int64_t n_logits = 0;
  std::set<PagedKvCache::SeqId> seen;
  for (const SequenceChunk& ch : chunks) {
    const auto len = static_cast<int64_t>(ch.tokens.size());
    if (len == 0) continue;
    if (!seen.insert(ch.seq).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        "batch forward: sequence {} appears twice in one step", ch.seq);
    }
    if (ch.pos0 < 0 || ch.pos0 + len > cache_->capacity(ch.seq)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "batch forward: sequence {} positions [{}, {}) exceed its {} reserved "
                        "KV positions",
                        ch.seq, ch.pos0, ch.pos0 + len, cache_->capacity(ch.seq));
    }
    for (int32_t id : ch.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return make_error(ErrorCode::kInvalidArgument,
                          "batch forward: token id {} is outside the vocabulary [0, {})", id,
                          c.vocab_size);
      }
    }
    n += len;
    if (ch.want_logits) ++n_logits;
  }
  logits->assign(static_cast<size_t>(n_logits * c.vocab_size), 0.0f);
  if (n == 0) return ok_status();

  const int64_t d = c.hidden_size;
  const int64_t hd = c.head_dim;
  const int64_t half = hd / 2;
  const int64_t q_dim = c.q_dim();
  const int64_t kv_dim = c.kv_dim();
  const int64_t inter = c.intermediate_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  // Rows given to the linears: one zero row more when a lone row would be left (see the header).
  const auto padded = [](bool pad, int64_t rows) { return pad && rows % 4 == 1 ? rows + 1 : rows; };
  const int64_t np = padded(pad_layers_, n);
  const auto grow = [np](std::vector<float>& v, int64_t per_row) {
    const auto need = static_cast<size_t>(np * per_row);
    if (v.size() < need) v.resize(need);
  };
  grow(x_, d);
  grow(xb_, d);
  grow(q_, q_dim);
  grow(k_, kv_dim);
  grow(v_, kv_dim);
  grow(att_, q_dim);
  grow(gate_, inter);
  grow(up_, inter);
  grow(cos_, half);
  grow(sin_, half);

  // Rows of each chunk, its RoPE tables, and the token ids.
  std::vector<int64_t> row0;
  tokens_.clear();
  const bool dynamic = c.rope_scaling.type == RopeScalingType::Dynamic;
  for (const SequenceChunk& ch : chunks) {
    row0.push_back(static_cast<int64_t>(tokens_.size()));
    const auto len = static_cast<int64_t>(ch.tokens.size());
    if (len == 0) continue;
    const int64_t r = row0.back();
    if (dynamic) {
      // Dynamic NTK: the base for the chunk's longest position (the reference does the same per
      // forward slice).
      rope_cos_sin(rope_frequencies(c, ch.pos0 + len), ch.pos0, len, cos_.data() + r * half,
                   sin_.data() + r * half);
    } else {
      rope_cos_sin(rope_, ch.pos0, len, cos_.data() + r * half, sin_.data() + r * half);
    }
    tokens_.insert(tokens_.end(), ch.tokens.begin(), ch.tokens.end());
  }
  for_rows(n, d, [&](int64_t t) { m.embed_tokens().row_to_f32(tokens_[t], x_.data() + t * d); });

  const bool interleaved = c.rope_layout == RopeLayout::Interleaved;
  const cpu::PagedKvDType dtype = paged_dtype(cache_->options().storage);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  // y = x · Wᵀ over the np rows; the pad row of x is zeroed first.
  const auto linear = [&](const WeightMatrix& w, float* x, float* y) {
    if (np > n) std::fill(x + n * w.cols(), x + np * w.cols(), 0.0f);
    w.matmul(x, np, y);
  };
  std::vector<cpu::PagedAttentionParams> attn;
  for (int64_t l = 0; l < m.n_layers(); ++l) {
    const DecoderLayer& layer = m.layer(l);
    // ---- attention block
    model_internal::rmsnorm_rows(x_.data(), layer.input_norm.data(), n, d, eps, xb_.data());
    linear(*layer.q_proj, xb_.data(), q_.data());  // q: [n, q_dim]
    linear(*layer.k_proj, xb_.data(), k_.data());  // k: [n, kv_dim]
    linear(*layer.v_proj, xb_.data(), v_.data());  // v: [n, kv_dim]
    add_bias_rows(q_.data(), layer.q_bias, n);
    add_bias_rows(k_.data(), layer.k_bias, n);
    add_bias_rows(v_.data(), layer.v_bias, n);
    if (c.qk_norm) {
      model_internal::rmsnorm_rows(q_.data(), layer.q_norm.data(), n * c.num_attention_heads, hd,
                                   eps, q_.data());
      model_internal::rmsnorm_rows(k_.data(), layer.k_norm.data(), n * c.num_key_value_heads, hd,
                                   eps, k_.data());
    }
    for_rows(n, q_dim + kv_dim, [&](int64_t t) {
      cpu::rope(q_.data() + t * q_dim, c.num_attention_heads, hd, cos_.data() + t * half,
                sin_.data() + t * half, interleaved);
      cpu::rope(k_.data() + t * kv_dim, c.num_key_value_heads, hd, cos_.data() + t * half,
                sin_.data() + t * half, interleaved);
    });
    attn.clear();
    const uint8_t* base = cache_->layer_data(l);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const SequenceChunk& ch = chunks[i];
      const auto len = static_cast<int64_t>(ch.tokens.size());
      if (len == 0) continue;
      const int64_t r = row0[i];
      cache_->write(ch.seq, l, ch.pos0, len, k_.data() + r * kv_dim, kv_dim, v_.data() + r * kv_dim,
                    kv_dim);
      cpu::PagedAttentionParams p;
      p.q = q_.data() + r * q_dim;
      p.out = att_.data() + r * q_dim;
      p.n_tokens = len;
      p.n_heads = c.num_attention_heads;
      p.n_kv_heads = c.num_key_value_heads;
      p.head_dim = hd;
      p.pos0 = ch.pos0;
      p.window = c.sliding_window;
      p.scale = scale;  // head_dim**-0.5
      p.kv.k_pages = base;
      p.kv.v_pages = base + cache_->value_offset();
      p.kv.page_stride = cache_->page_stride();
      p.kv.head_stride = cache_->head_stride();
      p.kv.block_size = cache_->options().block_size;
      p.kv.dtype = dtype;
      p.kv.k_scale = cache_->k_scales(l);
      p.kv.v_scale = cache_->v_scales(l);
      p.block_table = cache_->block_table(ch.seq).data();
      attn.push_back(p);
    }
    cpu::paged_attention_batch(attn.data(), static_cast<int64_t>(attn.size()));  // att: [n, q_dim]
    linear(*layer.o_proj, att_.data(), xb_.data());                              // xb: [n, hidden]
    for_rows(n, d, [&](int64_t t) { cpu::axpy(1.0f, xb_.data() + t * d, d, x_.data() + t * d); });

    // ---- MLP block
    model_internal::rmsnorm_rows(x_.data(), layer.post_attention_norm.data(), n, d, eps,
                                 xb_.data());
    linear(*layer.gate_proj, xb_.data(), gate_.data());  // gate: [n, intermediate]
    linear(*layer.up_proj, xb_.data(), up_.data());      // up: [n, intermediate]
    for_rows(n, inter, [&](int64_t t) {
      cpu::swiglu(gate_.data() + t * inter, up_.data() + t * inter, inter,
                  gate_.data() + t * inter);
    });
    linear(*layer.down_proj, gate_.data(), xb_.data());  // xb: [n, hidden]
    for_rows(n, d, [&](int64_t t) { cpu::axpy(1.0f, xb_.data() + t * d, d, x_.data() + t * d); });
  }

  // The head on the last row of every chunk that asked for logits.
  if (n_logits == 0) return ok_status();
  const int64_t lp = padded(pad_head_, n_logits);
  std::vector<float> last(static_cast<size_t>(lp * d), 0.0f);
  int64_t j = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!chunks[i].want_logits || chunks[i].tokens.empty()) continue;
    const int64_t r = row0[i] + static_cast<int64_t>(chunks[i].tokens.size()) - 1;
    std::copy_n(x_.data() + r * d, d, last.data() + j * d);
    ++j;
  }
  model_internal::rmsnorm_rows(last.data(), m.final_norm().data(), n_logits, d, eps, last.data());
  if (lp > n_logits) {
    std::vector<float> out(static_cast<size_t>(lp * c.vocab_size));
    m.lm_head().matmul(last.data(), lp, out.data());
    std::copy_n(out.data(), n_logits * c.vocab_size, logits->data());
  } else {
    m.lm_head().matmul(last.data(), n_logits, logits->data());  // [n_logits, vocab]
  }
  return ok_status();
}

}  // namespace qforge::runtime_internal
