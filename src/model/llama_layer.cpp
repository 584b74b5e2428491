// The decoder block of llama_layer.h: projections through WeightMatrix (GEMV for decode, tiled
// sgemm for prefill), RoPE and the KV-cache write, grouped-query attention, SwiGLU MLP.
#include "model/llama_layer.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/attention.h"
#include "backend/cpu/vector_ops.h"
#include "qforge/core/parallel.h"

namespace qforge::model_internal {
namespace {

// Element-wise loops split into chunks of at least this many elements (a fork/join costs a
// scheduler time slice when the other core is busy: small loops stay on the calling thread).
constexpr int64_t kElementwiseGrain = 1 << 16;

void add_bias_rows(float* y, const std::vector<float>& bias, int64_t n) {
  if (bias.empty()) return;
  const auto dim = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t) {
    float* row = y + t * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] += bias[i];
  }
}

// x[i] += y[i] over n elements.
void add_inplace(float* x, const float* y, int64_t n) {
  parallel_for(0, n, kElementwiseGrain,
               [&](int64_t b, int64_t e) { cpu::axpy(1.0f, y + b, e - b, x + b); });
}

}  // namespace

void rmsnorm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(dim, 1));
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) cpu::rmsnorm(x + t * dim, w, dim, eps, out + t * dim);
  });
}

void llama_layer_forward(const ModelConfig& c, const DecoderLayer& layer, const LayerBatch& b) {
  const int64_t n = b.n_tokens;
  const int64_t d = c.hidden_size;
  const int64_t hd = c.head_dim;
  const int64_t q_dim = c.q_dim();
  const int64_t kv_dim = c.kv_dim();
  const auto eps = static_cast<float>(c.rms_norm_eps);

  // ---- attention block
  rmsnorm_rows(b.x, layer.input_norm.data(), n, d, eps, b.xb);
  layer.q_proj->matmul(b.xb, n, b.q);  // q: [n, q_dim]
  layer.k_proj->matmul(b.xb, n, b.k);  // k: [n, kv_dim]
  layer.v_proj->matmul(b.xb, n, b.v);  // v: [n, kv_dim]
  add_bias_rows(b.q, layer.q_bias, n);
  add_bias_rows(b.k, layer.k_bias, n);
  add_bias_rows(b.v, layer.v_bias, n);
  if (c.qk_norm) {
    // Per-head RMSNorm over head_dim: the rows of q viewed as [n * n_heads, head_dim].
    rmsnorm_rows(b.q, layer.q_norm.data(), n * c.num_attention_heads, hd, eps, b.q);
    rmsnorm_rows(b.k, layer.k_norm.data(), n * c.num_key_value_heads, hd, eps, b.k);
  }
  const bool interleaved = c.rope_layout == RopeLayout::Interleaved;
  const int64_t half = hd / 2;
  const int64_t rope_grain = std::max<int64_t>(1, kElementwiseGrain / (q_dim + 3 * kv_dim));
  parallel_for(0, n, rope_grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* cs = b.cos + t * half;
      const float* sn = b.sin + t * half;
      cpu::rope(b.q + t * q_dim, c.num_attention_heads, hd, cs, sn, interleaved);
      cpu::rope(b.k + t * kv_dim, c.num_key_value_heads, hd, cs, sn, interleaved);
      // Append k and v to the cache: [n_kv_heads, capacity, head_dim].
      for (int64_t g = 0; g < c.num_key_value_heads; ++g) {
        const int64_t dst = (g * b.capacity + b.pos0 + t) * hd;
        std::memcpy(b.k_cache + dst, b.k + t * kv_dim + g * hd, hd * sizeof(float));
        std::memcpy(b.v_cache + dst, b.v + t * kv_dim + g * hd, hd * sizeof(float));
        if (b.kv_quant != nullptr && b.kv_quant->enabled()) {
          const int64_t nk = c.num_key_value_heads;
          kv_cache_fake_quantize(b.kv_quant->dtype, b.kv_quant->k(b.layer_index, g, nk),
                                 b.k_cache + dst, hd);
          kv_cache_fake_quantize(b.kv_quant->dtype, b.kv_quant->v(b.layer_index, g, nk),
                                 b.v_cache + dst, hd);
        }
      }
    }
  });

  cpu::AttentionParams ap;
  ap.q = b.q;
  ap.k = b.k_cache;
  ap.v = b.v_cache;
  ap.out = b.att;
  ap.n_tokens = n;
  ap.n_heads = c.num_attention_heads;
  ap.n_kv_heads = c.num_key_value_heads;
  ap.head_dim = hd;
  ap.capacity = b.capacity;
  ap.pos0 = b.pos0;
  ap.window = c.sliding_window;
  ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));  // head_dim**-0.5
  cpu::attention(ap);                                                       // att: [n, q_dim]

  layer.o_proj->matmul(b.att, n, b.xb);  // xb: [n, hidden]
  add_inplace(b.x, b.xb, n * d);

  // ---- MLP block
  rmsnorm_rows(b.x, layer.post_attention_norm.data(), n, d, eps, b.xb);
  const int64_t inter = c.intermediate_size;
  layer.gate_proj->matmul(b.xb, n, b.gate);  // gate: [n, intermediate]
  layer.up_proj->matmul(b.xb, n, b.up);      // up: [n, intermediate]
  parallel_for(0, n * inter, kElementwiseGrain,
               [&](int64_t s, int64_t e) { cpu::swiglu(b.gate + s, b.up + s, e - s, b.gate + s); });
  layer.down_proj->matmul(b.gate, n, b.xb);  // xb: [n, hidden]
  add_inplace(b.x, b.xb, n * d);
}

}  // namespace qforge::model_internal
