// Rotary position embedding frequencies (Su et al. 2021, "RoFormer") with the scalings of
// Hugging Face transformers' modeling_rope_utils.py: default, linear (kaiokendev), dynamic NTK
// (bloc97 / emozilla), llama3 (Llama 3.1) and YaRN (Peng et al. 2023), computed in float32 the
// way transformers computes them, so that cos/sin tables agree with PyTorch to the last ulp or so.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/model/config.h"

namespace qforge {

struct RopeFrequencies {
  std::vector<float> inv_freq;    // [head_dim / 2]: rotation angle per position of pair i
  float attention_factor = 1.0f;  // multiplies cos and sin (YaRN's mscale; 1 otherwise)
};

// inv_freq for a forward pass whose largest position is seq_len - 1. Only dynamic NTK depends on
// seq_len (base grows once seq_len exceeds max_position_embeddings, as transformers' stateless
// _compute_dynamic_ntk_parameters does for the current length). Conventions, per type:
//   default: 1 / theta^(2i / d)
//   linear:  default / factor
//   dynamic: default with theta * ((factor * L / max_pos) - (factor - 1))^(d / (d - 2)),
//            L = max(seq_len, max_position_embeddings)
//   llama3:  wavelength bands of original_max_position_embeddings / {low,high}_freq_factor
//   yarn:    ramp between interpolation (/ factor) and extrapolation over the dims whose
//            rotations at original_max_position_embeddings lie in [beta_slow, beta_fast];
//            attention_factor = given, else 0.1 ln(factor) + 1 (1 when factor <= 1).
// original_max_position_embeddings == 0 means max_position_embeddings.
RopeFrequencies rope_frequencies(const ModelConfig& config, int64_t seq_len);

// cos, sin: [n_positions, head_dim / 2] for positions pos0, pos0 + 1, ...:
// angle = float(inv_freq[i] * float(pos)); cos = float(cos(angle)) * attention_factor.
void rope_cos_sin(const RopeFrequencies& freqs, int64_t pos0, int64_t n_positions, float* cos,
                  float* sin);

}  // namespace qforge
