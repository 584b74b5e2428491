// Scalar oracle of paged_attention.h: each key and value element decoded on its own from its
// page (scalar codecs), scores, a max-shifted softmax and the weighted value sum in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/paged_attention.h"
#include "qforge/formats/scalar.h"

namespace qforge::cpu {
namespace {

// Element i of row `pos` of KV head g.
float paged_element(const PagedKvLayer& kv, const void* pages, const float* scales,
                    const int32_t* table, int64_t pos, int64_t g, int64_t i, int64_t head_dim) {
  const int64_t elem = paged_kv_dtype_bytes(kv.dtype);
  const int64_t page = table[pos / kv.block_size];
  const auto* p = static_cast<const uint8_t*>(pages) + page * kv.page_stride + g * kv.head_stride +
                  ((pos % kv.block_size) * head_dim + i) * elem;
  switch (kv.dtype) {
    case PagedKvDType::kF32:
      return *reinterpret_cast<const float*>(p);
    case PagedKvDType::kF16:
      return f16_to_float(*reinterpret_cast<const uint16_t*>(p));
    case PagedKvDType::kBF16:
      return bf16_to_float(*reinterpret_cast<const uint16_t*>(p));
    case PagedKvDType::kFp8E4M3FN:
      return e4m3fn_to_float(*p) * scales[g];
    case PagedKvDType::kInt8:
      return static_cast<float>(*reinterpret_cast<const int8_t*>(p)) * scales[g];
  }
  return 0.0f;
}

}  // namespace

void paged_attention_ref(const PagedAttentionParams& p) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t q_stride = p.n_heads * p.head_dim;
  const PagedKvLayer& kv = p.kv;
  std::vector<double> scores;
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    const int64_t pos = p.pos0 + t;
    const int64_t lo = attention_first_key(pos, p.window);
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const int64_t g = h / group;
      const float* q = p.q + t * q_stride + h * p.head_dim;
      scores.assign(static_cast<size_t>(pos + 1 - lo), 0.0);
      double max_score = -INFINITY;
      for (int64_t j = lo; j <= pos; ++j) {
        double s = 0;
        for (int64_t i = 0; i < p.head_dim; ++i) {
          s += static_cast<double>(q[i]) *
               paged_element(kv, kv.k_pages, kv.k_scale, p.block_table, j, g, i, p.head_dim);
        }
        scores[j - lo] = s * p.scale;
        max_score = std::max(max_score, scores[j - lo]);
      }
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      float* out = p.out + t * q_stride + h * p.head_dim;
      for (int64_t i = 0; i < p.head_dim; ++i) {
        double acc = 0;
        for (int64_t j = lo; j <= pos; ++j) {
          acc += scores[j - lo] *
                 paged_element(kv, kv.v_pages, kv.v_scale, p.block_table, j, g, i, p.head_dim);
        }
        out[i] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace qforge::cpu
