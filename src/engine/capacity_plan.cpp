// Capacity planning arithmetic (include/qforge/engine/capacity_plan.h; formulas in
// docs/CAPACITY.md). Every count is per GPU under tensor parallelism unless it says otherwise.
#include "qforge/engine/capacity_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace qforge {
namespace {

constexpr int64_t kMaxSeqLen = int64_t{1} << 24;
constexpr int64_t kMaxBatch = int64_t{1} << 16;
constexpr int64_t kMaxTensorParallel = 1024;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Saturating arithmetic: a plan for absurd limits reports "does not fit" instead of wrapping.
uint64_t mul_sat(uint64_t a, uint64_t b) {
  if (a != 0 && b > kU64Max / a) return kU64Max;
  return a * b;
}
uint64_t add_sat(uint64_t a, uint64_t b) {
  return b > kU64Max - a ? kU64Max : a + b;
}
uint64_t u64(int64_t v) {
  return static_cast<uint64_t>(std::max<int64_t>(v, 0));
}
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

bool is_dense_float(DType d) {
  return d == DType::F32 || d == DType::F16 || d == DType::BF16;
}
uint64_t dtype_bytes(DType d) {
  return static_cast<uint64_t>(dtype_bits(d) / 8);
}

Status bad_field(std::string_view field, std::string value, std::string_view expected) {
  return make_error(ErrorCode::kInvalidArgument, "plan: {} = {} is invalid; expected {}", field,
                    value, expected);
}

// KV heads one GPU holds: kv_heads / tp, or 1 (replicated) when tp is a multiple of kv_heads.
int64_t kv_heads_per_gpu(const ModelConfig& m, int64_t tp) {
  return std::max<int64_t>(1, m.num_key_value_heads / tp);
}

// One linear layer of a decoder block, as this GPU holds it: w: (rows, cols) row-major, rows the
// output features. Column-parallel layers (q/k/v/gate/up) split rows, row-parallel (o/down) cols.
struct LinearShape {
  const char* name;  // module suffix: "self_attn.q_proj"
  bool attention;
  int64_t rows, cols;            // this GPU's shard
  int64_t full_rows, full_cols;  // whole model
};

std::array<LinearShape, 7> block_linears(const ModelConfig& m, int64_t tp) {
  const int64_t h = m.hidden_size, q = m.q_dim(), kv = m.kv_dim(), i = m.intermediate_size;
  const int64_t kv_gpu = kv_heads_per_gpu(m, tp) * m.head_dim;
  return {{
      {"self_attn.q_proj", true, q / tp, h, q, h},
      {"self_attn.k_proj", true, kv_gpu, h, kv, h},
      {"self_attn.v_proj", true, kv_gpu, h, kv, h},
      {"self_attn.o_proj", true, h, q / tp, h, q},
      {"mlp.gate_proj", false, i / tp, h, i, h},
      {"mlp.up_proj", false, i / tp, h, i, h},
      {"mlp.down_proj", false, h, i / tp, h, i},
  }};
}

// Stored bytes of one linear shard under the scheme the quantizer would give it.
Result<uint64_t> linear_bytes(const PlanRequest& r, const std::string& module, int64_t rows,
                              int64_t cols) {
  QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_module(r.quant_config, module));
  const uint64_t n = mul_sat(u64(rows), u64(cols));
  if (s.algo == QuantAlgo::NO_QUANT) return mul_sat(n, dtype_bytes(r.dense_dtype));
  if (s.algo == QuantAlgo::MIXED_PRECISION) {
    return static_cast<uint64_t>(
        std::ceil(static_cast<double>(n) * r.quant_config.auto_quantize_bits / 8.0));
  }
  return quantized_bytes(s.weight, rows, cols);
}

struct Workspace {
  uint64_t activations = 0;
  uint64_t logits = 0;
};

// Peak activation memory of one forward step (buffers of one stage are reused by the next):
//   a = bytes(precision), T = tokens in the step, B = sequences producing logits,
//   h = hidden, q = q_dim/tp, kv = kv_heads_per_gpu*head_dim, i = intermediate/tp, nh = heads/tp
//   residual + normed input      2*T*h*a
//   attention stage              T*(q + 2kv)*a (q/k/v) + T*q*a (attention output)
//                                + nh*S*4 (one F32 score row per head: attention streams over
//                                the cache, the T x S score matrix is never materialized)
//   MLP stage                    2*T*i*a (gate and up; SwiGLU writes into gate)
//   stage                        max(attention stage, MLP stage)
//   quantized activations        T*max(h, i) bytes when the linears quantize their input
//   tensor-parallel all-reduce   T*h*a when tp > 1
//   logits                       B*vocab*4 (F32, full vocabulary after the gather)
Workspace workspace(const ModelConfig& m, DType precision, int64_t tokens, int64_t batch,
                    int64_t seq, bool quantized_activations, int64_t tp) {
  const uint64_t a = dtype_bytes(precision);
  const uint64_t t = u64(tokens), h = u64(m.hidden_size), q = u64(m.q_dim() / tp);
  const uint64_t kv = u64(kv_heads_per_gpu(m, tp) * m.head_dim);
  const uint64_t i = u64(m.intermediate_size / tp), nh = u64(m.num_attention_heads / tp);
  const uint64_t attention =
      add_sat(mul_sat(mul_sat(t, q + 2 * kv + q), a), mul_sat(mul_sat(nh, u64(seq)), 4));
  const uint64_t mlp = mul_sat(mul_sat(t, 2 * i), a);
  uint64_t act = add_sat(mul_sat(mul_sat(t, 2 * h), a), std::max(attention, mlp));
  if (quantized_activations) act = add_sat(act, mul_sat(t, std::max(h, i)));
  if (tp > 1) act = add_sat(act, mul_sat(mul_sat(t, h), a));
  Workspace w;
  w.activations = act;
  w.logits = mul_sat(mul_sat(u64(batch), u64(m.vocab_size)), 4);
  return w;
}

Status validate_request(const ModelConfig& m, const PlanRequest& r) {
  if (r.max_seq_len < 1 || r.max_seq_len > kMaxSeqLen) {
    return bad_field("max_seq_len", std::to_string(r.max_seq_len),
                     fmt::format("a token count in [1, {}]", kMaxSeqLen));
  }
  if (r.max_batch_size && (*r.max_batch_size < 1 || *r.max_batch_size > kMaxBatch)) {
    return bad_field("max_batch_size", std::to_string(*r.max_batch_size),
                     fmt::format("a batch in [1, {}] (leave it unset to find the largest that "
                                 "fits)",
                                 kMaxBatch));
  }
  if (r.max_num_tokens < 0 || r.max_num_tokens > kMaxSeqLen) {
    return bad_field("max_num_tokens", std::to_string(r.max_num_tokens),
                     fmt::format("0 (default) or a token count in [1, {}]", kMaxSeqLen));
  }
  if (r.kv_cache_block_size < 1 || r.kv_cache_block_size > 1024) {
    return bad_field("kv_cache_block_size", std::to_string(r.kv_cache_block_size),
                     "tokens per KV page in [1, 1024]");
  }
  if (!is_dense_float(r.dense_dtype)) {
    return bad_field("dense_dtype", std::string(dtype_name(r.dense_dtype)), "f32, f16 or bf16");
  }
  if (!is_dense_float(r.precision)) {
    return bad_field("precision", std::string(dtype_name(r.precision)), "f32, f16 or bf16");
  }
  const int64_t tp = r.tensor_parallel;
  if (tp < 1 || tp > kMaxTensorParallel) {
    return bad_field("tensor_parallel", std::to_string(tp),
                     fmt::format("a GPU count in [1, {}]", kMaxTensorParallel));
  }
  if (m.num_attention_heads % tp != 0) {
    return bad_field("tensor_parallel", std::to_string(tp),
                     fmt::format("a divisor of num_attention_heads {} (each GPU holds whole "
                                 "heads)",
                                 m.num_attention_heads));
  }
  if (m.intermediate_size % tp != 0) {
    return bad_field("tensor_parallel", std::to_string(tp),
                     fmt::format("a divisor of intermediate_size {}", m.intermediate_size));
  }
  if (m.num_key_value_heads % tp != 0 && tp % m.num_key_value_heads != 0) {
    return bad_field("tensor_parallel", std::to_string(tp),
                     fmt::format("a divisor or a multiple of num_key_value_heads {} (KV heads "
                                 "are split, or replicated one per GPU)",
                                 m.num_key_value_heads));
  }
  const QuantConfig& qc = r.quant_config;
  if (qc.quant_algo == QuantAlgo::MIXED_PRECISION &&
      (!(qc.auto_quantize_bits > 0) || qc.auto_quantize_bits > 32)) {
    return bad_field("quant_config.auto_quantize_bits", fmt::format("{}", qc.auto_quantize_bits),
                     "an average bits-per-weight budget in (0, 32] for MIXED_PRECISION");
  }
  if (qc.quant_algo == QuantAlgo::INT8) {
    return bad_field("quant_config.quant_algo", "INT8",
                     "a weight format (INT8 is a KV-cache format; for INT8 weights use W8A16 / "
                     "int8_wo or W8A8_SQ_PER_CHANNEL / int8_sq)");
  }
  if (qc.quant_algo != QuantAlgo::MIXED_PRECISION) {
    QF_TRY(scheme_for_algo(qc.quant_algo, qc));
  }
  for (const auto& [pattern, algo] : qc.layer_overrides) QF_TRY(scheme_for_algo(algo, qc));
  if (qc.group_size < 16 || (qc.group_size & (qc.group_size - 1)) != 0) {
    return bad_field("quant_config.group_size", std::to_string(qc.group_size),
                     "a power of two >= 16");
  }
  return ok_status();
}

std::string gb(uint64_t bytes) {
  return fmt::format("{:.2f} GB", static_cast<double>(bytes) / kBytesPerGB);
}

}  // namespace

uint64_t kv_cache_bytes_per_token(const ModelConfig& m, KvCacheStorage kv,
                                  int64_t tensor_parallel) {
  const int64_t tp = std::max<int64_t>(tensor_parallel, 1);
  return 2 * u64(m.num_hidden_layers) * u64(kv_heads_per_gpu(m, tp)) * u64(m.head_dim) *
         u64(kv_cache_storage_bytes(kv));
}

uint64_t activation_workspace_bytes(const ModelConfig& m, DType precision, int64_t num_tokens,
                                    int64_t batch, int64_t max_seq_len, bool quantized_activations,
                                    int64_t tensor_parallel) {
  const Workspace w = workspace(m, precision, num_tokens, batch, max_seq_len, quantized_activations,
                                std::max<int64_t>(tensor_parallel, 1));
  return add_sat(w.activations, w.logits);
}

Result<CapacityPlan> plan_capacity(const ModelConfig& m, const PlanRequest& r) {
  QF_TRY(validate_model_config(m).context("plan: model config"));
  QF_TRY(validate_request(m, r));
  const int64_t tp = r.tensor_parallel;
  CapacityPlan p;
  p.tensor_parallel = tp;
  p.budget_bytes = r.memory_budget_bytes;
  p.kv_heads_per_gpu = kv_heads_per_gpu(m, tp);

  // ---- Weights --------------------------------------------------------------------------
  const uint64_t dense = dtype_bytes(r.dense_dtype);
  const uint64_t h = u64(m.hidden_size);
  const uint64_t vocab_rows = u64(ceil_div(m.vocab_size, tp));  // vocab-parallel shards
  const uint64_t embed = mul_sat(mul_sat(vocab_rows, h), dense);
  const uint64_t lm_head = m.tie_word_embeddings ? 0 : embed;
  uint64_t attention = 0, mlp = 0, linear_params_gpu = 0;
  const auto linears = block_linears(m, tp);
  for (int64_t layer = 0; layer < m.num_hidden_layers; ++layer) {
    for (const LinearShape& l : linears) {
      const std::string module = fmt::format("model.layers.{}.{}", layer, l.name);
      QF_ASSIGN_OR_RETURN(uint64_t bytes, linear_bytes(r, module, l.rows, l.cols));
      uint64_t& sum = l.attention ? attention : mlp;
      sum = add_sat(sum, bytes);
      linear_params_gpu += u64(l.rows) * u64(l.cols);
      p.params_linear += u64(l.full_rows) * u64(l.full_cols);
    }
  }
  // Norms (input + post-attention per layer, the final norm, q/k norms) and q/k/v biases are
  // small vectors held in F32.
  const uint64_t layers = u64(m.num_hidden_layers);
  const uint64_t norm_params = layers * (2 * h + (m.qk_norm ? 2 * u64(m.head_dim) : 0)) + h;
  const uint64_t bias_params_gpu =
      m.attention_bias ? layers * u64(m.q_dim() / tp + 2 * p.kv_heads_per_gpu * m.head_dim) : 0;
  const uint64_t bias_params = m.attention_bias ? layers * u64(m.q_dim() + 2 * m.kv_dim()) : 0;
  const uint64_t small = (norm_params + bias_params_gpu) * 4;

  p.linear_weight_bytes = add_sat(attention, mlp);
  p.linear_bits_per_weight =
      static_cast<double>(p.linear_weight_bytes) * 8.0 / static_cast<double>(linear_params_gpu);
  p.weight_bytes = add_sat(add_sat(add_sat(embed, lm_head), p.linear_weight_bytes), small);
  const uint64_t embed_params = u64(m.vocab_size) * h;
  p.params_total =
      embed_params * (m.tie_word_embeddings ? 1 : 2) + p.params_linear + norm_params + bias_params;

  // ---- KV cache -------------------------------------------------------------------------
  p.kv_bytes_per_token = kv_cache_bytes_per_token(m, r.kv_cache, tp);
  p.kv_tokens_per_sequence = ceil_div(r.max_seq_len, r.kv_cache_block_size) * r.kv_cache_block_size;
  p.kv_bytes_per_sequence = mul_sat(p.kv_bytes_per_token, u64(p.kv_tokens_per_sequence));
  if (r.kv_cache == KvCacheStorage::kFp8 || r.kv_cache == KvCacheStorage::kInt8) {
    const uint64_t per_layer = r.quant_config.kv_cache_per_head ? u64(p.kv_heads_per_gpu) : 1;
    p.kv_scale_bytes = 2 * layers * per_layer * 4;
  }

  // ---- Workspace and batch --------------------------------------------------------------
  bool quantized_activations = false;
  if (r.quant_config.quant_algo != QuantAlgo::MIXED_PRECISION) {
    QF_ASSIGN_OR_RETURN(LinearQuantScheme s,
                        scheme_for_algo(r.quant_config.quant_algo, r.quant_config));
    quantized_activations = s.activation != ActivationQuant::kNone;
  }
  for (const auto& [pattern, algo] : r.quant_config.layer_overrides) {
    QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_algo(algo, r.quant_config));
    quantized_activations = quantized_activations || s.activation != ActivationQuant::kNone;
  }
  auto tokens_for = [&](int64_t batch) {
    return r.max_num_tokens > 0 ? r.max_num_tokens : std::max(r.max_seq_len, batch);
  };
  auto workspace_for = [&](int64_t batch) {
    return workspace(m, r.precision, tokens_for(batch), batch, r.max_seq_len, quantized_activations,
                     tp);
  };
  auto total_for = [&](int64_t batch) {
    const Workspace w = workspace_for(batch);
    return add_sat(add_sat(add_sat(p.weight_bytes, mul_sat(u64(batch), p.kv_bytes_per_sequence)),
                           p.kv_scale_bytes),
                   add_sat(w.activations, w.logits));
  };
  // total_for is nondecreasing in the batch: binary search for the largest that fits.
  if (total_for(1) <= r.memory_budget_bytes) {
    int64_t lo = 1, hi = kMaxBatch;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (total_for(mid) <= r.memory_budget_bytes) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    p.max_batch_that_fits = lo;
  }
  p.batch = r.max_batch_size ? *r.max_batch_size : std::max<int64_t>(p.max_batch_that_fits, 1);
  p.max_num_tokens = tokens_for(p.batch);
  const Workspace w = workspace_for(p.batch);
  p.kv_bytes_total = add_sat(mul_sat(u64(p.batch), p.kv_bytes_per_sequence), p.kv_scale_bytes);
  p.workspace_bytes = add_sat(w.activations, w.logits);
  p.total_bytes = total_for(p.batch);
  p.fits = p.total_bytes <= r.memory_budget_bytes;
  p.shortfall_bytes = p.fits ? 0 : p.total_bytes - r.memory_budget_bytes;

  // ---- Breakdown and notes --------------------------------------------------------------
  const std::string per_gpu = tp > 1 ? fmt::format(", 1/{} per GPU", tp) : "";
  p.breakdown.push_back({"weights.embed_tokens", embed,
                         fmt::format("{} x {} {}{}", m.vocab_size, m.hidden_size,
                                     dtype_name(r.dense_dtype), per_gpu)});
  if (!m.tie_word_embeddings) {
    p.breakdown.push_back({"weights.lm_head", lm_head,
                           fmt::format("{} x {} {} (never quantized){}", m.vocab_size,
                                       m.hidden_size, dtype_name(r.dense_dtype), per_gpu)});
  }
  p.breakdown.push_back({"weights.attention", attention,
                         fmt::format("q/k/v/o x {} layers{}", m.num_hidden_layers, per_gpu)});
  p.breakdown.push_back({"weights.mlp", mlp,
                         fmt::format("gate/up/down x {} layers{}", m.num_hidden_layers, per_gpu)});
  p.breakdown.push_back(
      {"weights.norms_biases", small,
       m.attention_bias ? "RMSNorm weights and q/k/v biases, f32" : "RMSNorm weights, f32"});
  p.breakdown.push_back(
      {"kv_cache", mul_sat(u64(p.batch), p.kv_bytes_per_sequence),
       fmt::format("{} seq x {} tokens x {} B/token ({})", p.batch, p.kv_tokens_per_sequence,
                   p.kv_bytes_per_token, kv_cache_storage_name(r.kv_cache))});
  if (p.kv_scale_bytes > 0) {
    p.breakdown.push_back({"kv_cache.scales", p.kv_scale_bytes,
                           r.quant_config.kv_cache_per_head ? "f32 K and V scale per layer and head"
                                                            : "f32 K and V scale per layer"});
  }
  p.breakdown.push_back(
      {"workspace.activations", w.activations,
       fmt::format("{} tokens per step, {}", p.max_num_tokens, dtype_name(r.precision))});
  p.breakdown.push_back(
      {"workspace.logits", w.logits, fmt::format("{} x {} f32", p.batch, m.vocab_size)});

  if (r.max_seq_len > m.max_position_embeddings) {
    p.notes.push_back(fmt::format("max_seq_len {} exceeds the model's max_position_embeddings {}",
                                  r.max_seq_len, m.max_position_embeddings));
  }
  if (tp > m.num_key_value_heads) {
    p.notes.push_back(fmt::format("tp {} > {} KV heads: each GPU holds one replicated KV head", tp,
                                  m.num_key_value_heads));
  }
  if (r.quant_config.quant_algo == QuantAlgo::MIXED_PRECISION) {
    p.notes.push_back(fmt::format("MIXED_PRECISION: linears planned at {} bits/weight on average",
                                  r.quant_config.auto_quantize_bits));
  }
  if (!p.fits) {
    p.notes.push_back(fmt::format("does not fit: needs {} of {}, short by {}", gb(p.total_bytes),
                                  gb(p.budget_bytes), gb(p.shortfall_bytes)));
  }
  return p;
}

}  // namespace qforge
