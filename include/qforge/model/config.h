// The architecture description of a decoder-only Llama-family model, independent of the file it
// came from (Hugging Face config.json, GGUF metadata, llama2.c header). Loaders fill it; the
// forward pass, the quantizer and the engine builder read only this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"

namespace qforge {

enum class Architecture : uint8_t { Llama, Mistral, Qwen2, Qwen3 };
const char* architecture_name(Architecture arch);  // "llama", "mistral", "qwen2", "qwen3"

enum class RopeScalingType : uint8_t { None, Linear, Dynamic, Llama3, Yarn };

// rope_scaling as Hugging Face transformers defines it (modeling_rope_utils.py).
struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // llama3, yarn, dynamic: the context length the model was pre-trained with (0 = use
  // max_position_embeddings).
  int64_t original_max_position_embeddings = 0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double attention_factor = 0.0;  // 0 = yarn default: 0.1 * ln(factor) + 1
};

// How q/k weights pair the dimensions that RoPE rotates together.
enum class RopeLayout : uint8_t {
  // Hugging Face / GPT-NeoX: dimension i pairs with i + head_dim/2 (rotate_half).
  HalfSplit,
  // Meta original / llama2.c / GGUF llama: dimension 2i pairs with 2i + 1. HF conversion
  // scripts permute q_proj/k_proj rows to turn this into HalfSplit.
  Interleaved,
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  std::string model_type;  // as written in the source file, e.g. "llama"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // d_model
  int64_t intermediate_size = 0;  // SwiGLU hidden width
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // == num_attention_heads without GQA
  int64_t head_dim = 0;             // usually hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;

  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  RopeLayout rope_layout = RopeLayout::HalfSplit;

  bool tie_word_embeddings = false;  // lm_head shares model.embed_tokens.weight
  bool attention_bias = false;       // q/k/v projections have biases (qwen2)
  bool qk_norm = false;              // per-head RMSNorm of q and k before RoPE (qwen3)
  int64_t sliding_window = 0;        // 0 = full attention

  DType torch_dtype = DType::BF16;  // dtype the checkpoint declares
  int64_t bos_token_id = -1;        // -1 = none
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
};

// Checks every hyperparameter against sane bounds (layers <= 1024, heads divide evenly, head_dim
// even, sizes positive and below caps, vocab <= 2^24, ...). Errors name the field and the value.
Status validate_model_config(const ModelConfig& config);

}  // namespace qforge
