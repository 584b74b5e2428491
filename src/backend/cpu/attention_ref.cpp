// Scalar oracle of attention.h: for each query token and head, scores in double, a max-shifted
// softmax in double and the weighted value sum in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"

namespace qforge::cpu {

void attention_ref(const AttentionParams& p) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t q_stride = p.n_heads * p.head_dim;
  std::vector<double> scores;
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    const int64_t pos = p.pos0 + t;
    const int64_t lo = attention_first_key(pos, p.window);
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const float* q = p.q + t * q_stride + h * p.head_dim;
      const float* k = p.k + (h / group) * p.capacity * p.head_dim;
      const float* v = p.v + (h / group) * p.capacity * p.head_dim;
      scores.assign(static_cast<size_t>(pos + 1 - lo), 0.0);
      double max_score = -INFINITY;
      for (int64_t j = lo; j <= pos; ++j) {
        double s = 0;
        for (int64_t i = 0; i < p.head_dim; ++i)
          s += static_cast<double>(q[i]) * k[j * p.head_dim + i];
        scores[j - lo] = s * p.scale;
        max_score = std::max(max_score, scores[j - lo]);
      }
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      float* out = p.out + t * q_stride + h * p.head_dim;
      for (int64_t i = 0; i < p.head_dim; ++i) {
        double acc = 0;
        for (int64_t j = lo; j <= pos; ++j) acc += scores[j - lo] * v[j * p.head_dim + i];
        out[i] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace qforge::cpu
