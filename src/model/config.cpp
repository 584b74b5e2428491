// ModelConfig helpers: architecture names and validate_model_config, the sanity bounds every
// loader (HF config.json, GGUF metadata, llama2.c header) applies before trusting a config.
#include "qforge/model/config.h"

#include <cmath>

namespace qforge {
namespace {

// Caps: generous for every released Llama-family model, small enough that sizes derived from
// them (hidden * vocab, layers * hidden * intermediate) cannot overflow 64-bit arithmetic.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHidden = int64_t{1} << 18;        // 262,144
constexpr int64_t kMaxIntermediate = int64_t{1} << 20;  // 1,048,576
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxVocab = int64_t{1} << 24;      // 16,777,216
constexpr int64_t kMaxPositions = int64_t{1} << 27;  // 134,217,728 tokens

Status bad(std::string_view field, std::string_view value, std::string_view expected) {
  return make_error(ErrorCode::kFormat, "model config: {} = {} is out of range (expected {})",
                    field, value, expected);
}

Status check_range(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return bad(field, std::to_string(value), fmt::format("{} <= {} <= {}", lo, field, hi));
  }
  return ok_status();
}

Status check_positive_finite(std::string_view field, double value, double hi) {
  if (!std::isfinite(value) || value <= 0 || value > hi) {
    return bad(field, fmt::format("{}", value), fmt::format("a finite value in (0, {}]", hi));
  }
  return ok_status();
}

Status check_token_id(std::string_view field, int64_t id, int64_t vocab) {
  if (id < -1 || id >= vocab) {
    return bad(field, std::to_string(id),
               fmt::format("-1 (none) or a token id below vocab_size {}", vocab));
  }
  return ok_status();
}

Status validate_rope_scaling(const ModelConfig& c) {
  const RopeScaling& r = c.rope_scaling;
  if (r.type == RopeScalingType::None) return ok_status();
  QF_TRY(check_positive_finite("rope_scaling.factor", r.factor, 1024.0));
  QF_TRY(check_range("rope_scaling.original_max_position_embeddings",
                     r.original_max_position_embeddings, 0, kMaxPositions));
  if (r.type == RopeScalingType::Llama3) {
    QF_TRY(check_positive_finite("rope_scaling.low_freq_factor", r.low_freq_factor, 1e6));
    QF_TRY(check_positive_finite("rope_scaling.high_freq_factor", r.high_freq_factor, 1e6));
    if (r.high_freq_factor <= r.low_freq_factor) {
      return bad("rope_scaling.high_freq_factor", fmt::format("{}", r.high_freq_factor),
                 fmt::format("> low_freq_factor {} (llama3 interpolates between them)",
                             r.low_freq_factor));
    }
  }
  if (r.type == RopeScalingType::Yarn) {
    QF_TRY(check_positive_finite("rope_scaling.beta_fast", r.beta_fast, 1e6));
    QF_TRY(check_positive_finite("rope_scaling.beta_slow", r.beta_slow, 1e6));
    if (!std::isfinite(r.attention_factor) || r.attention_factor < 0 || r.attention_factor > 1e3) {
      return bad("rope_scaling.attention_factor", fmt::format("{}", r.attention_factor),
                 "0 (default) or a finite positive value");
    }
  }
  return ok_status();
}

}  // namespace

const char* architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::Llama:
      return "llama";
    case Architecture::Mistral:
      return "mistral";
    case Architecture::Qwen2:
      return "qwen2";
    case Architecture::Qwen3:
      return "qwen3";
  }
  return "unknown";
}

Status validate_model_config(const ModelConfig& c) {
  QF_TRY(check_range("vocab_size", c.vocab_size, 1, kMaxVocab));
  QF_TRY(check_range("hidden_size", c.hidden_size, 1, kMaxHidden));
  QF_TRY(check_range("intermediate_size", c.intermediate_size, 1, kMaxIntermediate));
  QF_TRY(check_range("num_hidden_layers", c.num_hidden_layers, 1, kMaxLayers));
  QF_TRY(check_range("num_attention_heads", c.num_attention_heads, 1, kMaxHeads));
  QF_TRY(check_range("num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return bad("num_key_value_heads", std::to_string(c.num_key_value_heads),
               fmt::format("a divisor of num_attention_heads {} (grouped-query attention "
                           "shares each kv head among a whole number of query heads)",
                           c.num_attention_heads));
  }
  QF_TRY(check_range("head_dim", c.head_dim, 2, kMaxHeadDim));
  if (c.head_dim % 2 != 0) {
    return bad("head_dim", std::to_string(c.head_dim), "an even number (RoPE rotates pairs)");
  }
  if (c.q_dim() > kMaxHidden * 4) {
    return bad("num_attention_heads * head_dim", std::to_string(c.q_dim()),
               fmt::format("<= {}", kMaxHidden * 4));
  }
  QF_TRY(check_range("max_position_embeddings", c.max_position_embeddings, 1, kMaxPositions));
  QF_TRY(check_positive_finite("rms_norm_eps", c.rms_norm_eps, 1.0));
  QF_TRY(check_positive_finite("rope_theta", c.rope_theta, 1e12));
  QF_TRY(validate_rope_scaling(c));
  QF_TRY(check_range("sliding_window", c.sliding_window, 0, kMaxPositions));
  QF_TRY(check_token_id("bos_token_id", c.bos_token_id, c.vocab_size));
  QF_TRY(check_token_id("pad_token_id", c.pad_token_id, c.vocab_size));
  if (c.eos_token_ids.size() > 1024) {
    return bad("eos_token_id", fmt::format("a list of {} ids", c.eos_token_ids.size()),
               "at most 1024 ids");
  }
  for (int64_t id : c.eos_token_ids) QF_TRY(check_token_id("eos_token_id", id, c.vocab_size));
  if (!dtype_is_float(c.torch_dtype)) {
    return bad("torch_dtype", std::string(dtype_name(c.torch_dtype)), "a floating-point dtype");
  }
  return ok_status();
}

}  // namespace qforge
