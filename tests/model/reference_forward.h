// An independent, deliberately naive double-precision forward pass of a Llama-family model,
// written straight from the transformers modeling code (LlamaModel / Qwen2 / Qwen3 / Mistral):
// the oracle for configurations the shared real models do not cover (biases, qk-norm, tied
// heads, sliding windows, RoPE scalings). Slow: for tiny models only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qforge/formats/scalar.h"
#include "qforge/model/rope.h"
#include "qforge/model/weights.h"

namespace qforge::test {

// A weight tensor as doubles (row-major).
inline std::vector<double> to_double(const ModelWeights& w, const std::string& name) {
  const TensorView v = w.get(name).value();
  std::vector<double> out(static_cast<size_t>(v.numel()));
  const auto* bytes = static_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < out.size(); ++i) {
    if (v.dtype() == DType::F32) {
      float f;
      std::memcpy(&f, bytes + 4 * i, 4);
      out[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      out[i] = v.dtype() == DType::BF16 ? bf16_to_float(h) : f16_to_float(h);
    }
  }
  return out;
}

// y[r] = sum_c W[r, c] x[c] (+ b[r]).
inline std::vector<double> linear(const std::vector<double>& w, const std::vector<double>& x,
                                  int64_t rows, const std::vector<double>* bias = nullptr) {
  const auto cols = static_cast<int64_t>(x.size());
  std::vector<double> y(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = bias ? (*bias)[r] : 0.0;
    for (int64_t c = 0; c < cols; ++c) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

inline void rms_norm(double* x, const double* w, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * inv * w[i];
}

// Logits [n, vocab] of `ids` at positions 0..n-1.
inline std::vector<double> reference_logits(const ModelConfig& c, const ModelWeights& w,
                                            const std::vector<int32_t>& ids) {
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t d = c.hidden_size;
  const int64_t hd = c.head_dim;
  const int64_t nh = c.num_attention_heads;
  const int64_t nkv = c.num_key_value_heads;
  const int64_t half = hd / 2;
  const auto emb = to_double(w, "model.embed_tokens.weight");
  std::vector<std::vector<double>> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    x[t].assign(emb.begin() + ids[t] * d, emb.begin() + (ids[t] + 1) * d);
  }
  const RopeFrequencies freqs = rope_frequencies(c, n);
  const auto rotate = [&](double* v, int64_t pos) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(freqs.inv_freq[i]) * static_cast<double>(pos);
      const double cs = std::cos(angle) * freqs.attention_factor;
      const double sn = std::sin(angle) * freqs.attention_factor;
      const int64_t a = c.rope_layout == RopeLayout::Interleaved ? 2 * i : i;
      const int64_t b = c.rope_layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
      const double va = v[a];
      const double vb = v[b];
      v[a] = va * cs - vb * sn;
      v[b] = vb * cs + va * sn;
    }
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto in_norm = to_double(w, p + "input_layernorm.weight");
    const auto post_norm = to_double(w, p + "post_attention_layernorm.weight");
    const auto wq = to_double(w, p + "self_attn.q_proj.weight");
    const auto wk = to_double(w, p + "self_attn.k_proj.weight");
    const auto wv = to_double(w, p + "self_attn.v_proj.weight");
    const auto wo = to_double(w, p + "self_attn.o_proj.weight");
    const auto wg = to_double(w, p + "mlp.gate_proj.weight");
    const auto wu = to_double(w, p + "mlp.up_proj.weight");
    const auto wd = to_double(w, p + "mlp.down_proj.weight");
    std::vector<double> bq, bk, bv, qn, kn;
    if (c.attention_bias) {
      bq = to_double(w, p + "self_attn.q_proj.bias");
      bk = to_double(w, p + "self_attn.k_proj.bias");
      bv = to_double(w, p + "self_attn.v_proj.bias");
    }
    if (c.qk_norm) {
      qn = to_double(w, p + "self_attn.q_norm.weight");
      kn = to_double(w, p + "self_attn.k_norm.weight");
    }
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> h = x[t];
      rms_norm(h.data(), in_norm.data(), d, c.rms_norm_eps);
      q[t] = linear(wq, h, nh * hd, c.attention_bias ? &bq : nullptr);
      k[t] = linear(wk, h, nkv * hd, c.attention_bias ? &bk : nullptr);
      v[t] = linear(wv, h, nkv * hd, c.attention_bias ? &bv : nullptr);
      for (int64_t hh = 0; hh < nh; ++hh) {
        if (c.qk_norm) rms_norm(q[t].data() + hh * hd, qn.data(), hd, c.rms_norm_eps);
        rotate(q[t].data() + hh * hd, t);
      }
      for (int64_t g = 0; g < nkv; ++g) {
        if (c.qk_norm) rms_norm(k[t].data() + g * hd, kn.data(), hd, c.rms_norm_eps);
        rotate(k[t].data() + g * hd, t);
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> att(static_cast<size_t>(nh * hd), 0.0);
      const int64_t lo = c.sliding_window > 0 ? std::max<int64_t>(0, t - c.sliding_window + 1) : 0;
      for (int64_t hh = 0; hh < nh; ++hh) {
        const int64_t g = hh / (nh / nkv);
        std::vector<double> s;
        double m = -1e300;
        for (int64_t j = lo; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += q[t][hh * hd + i] * k[j][g * hd + i];
          s.push_back(dot / std::sqrt(static_cast<double>(hd)));
          m = std::max(m, s.back());
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - m));
        for (int64_t j = lo; j <= t; ++j) {
          for (int64_t i = 0; i < hd; ++i) att[hh * hd + i] += s[j - lo] / z * v[j][g * hd + i];
        }
      }
      const auto o = linear(wo, att, d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += o[i];
      std::vector<double> h = x[t];
      rms_norm(h.data(), post_norm.data(), d, c.rms_norm_eps);
      auto gate = linear(wg, h, c.intermediate_size);
      const auto up = linear(wu, h, c.intermediate_size);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      const auto down = linear(wd, gate, d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += down[i];
    }
  }
  const auto final_norm = to_double(w, "model.norm.weight");
  const auto head =
      to_double(w, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  std::vector<double> logits;
  for (int64_t t = 0; t < n; ++t) {
    rms_norm(x[t].data(), final_norm.data(), d, c.rms_norm_eps);
    const auto row = linear(head, x[t], c.vocab_size);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

}  // namespace qforge::test
