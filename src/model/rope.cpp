// RoPE inverse frequencies and cos/sin tables (include/qforge/model/rope.h), mirroring
// transformers' modeling_rope_utils.py operation by operation in float32 (PyTorch's tensor
// dtype there); Python-float scalars stay double as they do in Python.
#include "qforge/model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace qforge {
namespace {

// base ** (arange(0, dim, 2).float() / dim) in float32: the exponent is a float32 division and
// the power is rounded to float32 (computed in double, so correctly rounded but for rare ties).
std::vector<float> pos_freqs(double base, int64_t dim) {
  std::vector<float> out(static_cast<size_t>(dim / 2));
  const auto b = static_cast<float>(base);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    out[i] = static_cast<float>(std::pow(static_cast<double>(b), static_cast<double>(exponent)));
  }
  return out;
}

std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> inv = pos_freqs(base, dim);
  for (float& f : inv) f = 1.0f / f;
  return inv;
}

int64_t original_max_positions(const ModelConfig& config) {
  const int64_t orig = config.rope_scaling.original_max_position_embeddings;
  return orig > 0 ? orig : config.max_position_embeddings;
}

RopeFrequencies llama3(const ModelConfig& config) {
  const RopeScaling& rs = config.rope_scaling;
  std::vector<float> inv = default_inv_freq(config.rope_theta, config.head_dim);
  const auto factor = static_cast<float>(rs.factor);
  const auto low = static_cast<float>(rs.low_freq_factor);
  const auto high = static_cast<float>(rs.high_freq_factor);
  const auto old_context = static_cast<float>(original_max_positions(config));
  const float low_freq_wavelen = old_context / low;
  const float high_freq_wavelen = old_context / high;
  for (float& f : inv) {
    const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / f;
    // wavelen > low_freq_wavelen: divide by factor; wavelen < high_freq_wavelen: keep.
    const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
      const float smooth = (old_context / wavelen - low) / (high - low);
      f = (1.0f - smooth) * scaled / factor + smooth * scaled;
    } else {
      f = scaled;
    }
  }
  return {std::move(inv), 1.0f};
}

RopeFrequencies yarn(const ModelConfig& config) {
  const RopeScaling& rs = config.rope_scaling;
  const int64_t dim = config.head_dim;
  const double base = config.rope_theta;
  const double factor = rs.factor;
  double attention_factor = rs.attention_factor;
  if (!(attention_factor > 0)) attention_factor = factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0;
  const double beta_fast = rs.beta_fast > 0 ? rs.beta_fast : 32.0;
  const double beta_slow = rs.beta_slow > 0 ? rs.beta_slow : 1.0;
  const auto orig = static_cast<double>(original_max_positions(config));

  // The (fractional) dimension index whose wavelength fits num_rotations times into orig.
  auto correction_dim = [&](double num_rotations) {
    return (static_cast<double>(dim) * std::log(orig / (num_rotations * 2 * std::numbers::pi))) /
           (2 * std::log(base));
  };
  double low = std::max(std::floor(correction_dim(beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(beta_slow)), static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // prevent a singular ramp

  const std::vector<float> pf = pos_freqs(base, dim);
  const auto factor_f = static_cast<float>(factor);
  std::vector<float> inv(pf.size());
  for (size_t i = 0; i < pf.size(); ++i) {
    const float extrapolation = 1.0f / pf[i];
    const float interpolation = 1.0f / (factor_f * pf[i]);
    // linear_ramp_factor: (arange(dim/2) - low) / (high - low), float32 tensor arithmetic.
    const float ramp = std::clamp(
        (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f,
        1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    inv[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return {std::move(inv), static_cast<float>(attention_factor)};
}

}  // namespace

RopeFrequencies rope_frequencies(const ModelConfig& config, int64_t seq_len) {
  const RopeScaling& rs = config.rope_scaling;
  const int64_t dim = config.head_dim;
  switch (rs.type) {
    case RopeScalingType::None:
      return {default_inv_freq(config.rope_theta, dim), 1.0f};
    case RopeScalingType::Linear: {
      std::vector<float> inv = default_inv_freq(config.rope_theta, dim);
      const auto factor = static_cast<float>(rs.factor);
      for (float& f : inv) f /= factor;
      return {std::move(inv), 1.0f};
    }
    case RopeScalingType::Dynamic: {
      const auto max_pos = static_cast<double>(config.max_position_embeddings);
      const double len = std::max(static_cast<double>(seq_len), max_pos);
      const double d = static_cast<double>(dim);
      const double base = config.rope_theta *
                          std::pow(rs.factor * len / max_pos - (rs.factor - 1.0), d / (d - 2.0));
      return {default_inv_freq(base, dim), 1.0f};
    }
    case RopeScalingType::Llama3:
      return llama3(config);
    case RopeScalingType::Yarn:
      return yarn(config);
  }
  return {default_inv_freq(config.rope_theta, dim), 1.0f};
}

void rope_cos_sin(const RopeFrequencies& freqs, int64_t pos0, int64_t n_positions, float* cos,
                  float* sin) {
  const auto half = static_cast<int64_t>(freqs.inv_freq.size());
  for (int64_t t = 0; t < n_positions; ++t) {
    const auto pos = static_cast<float>(pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(freqs.inv_freq[i] * pos);  // float32 product
      cos[t * half + i] = static_cast<float>(std::cos(angle)) * freqs.attention_factor;
      sin[t * half + i] = static_cast<float>(std::sin(angle)) * freqs.attention_factor;
    }
  }
}

}  // namespace qforge
