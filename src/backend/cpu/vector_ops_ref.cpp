// Scalar reference oracles of vector_ops.h: the plain recipes, accumulated in double where a
// sum is involved, so that the SIMD kernels are checked against something more exact than they.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/vector_ops.h"
#include "qforge/core/error.h"
#include "qforge/formats/scalar.h"

namespace qforge::cpu {

void rmsnorm_ref(const float* x, const float* w, int64_t n, float eps, float* out) {
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(w[i] * (x[i] * inv));
}

void swiglu_ref(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void softmax_ref(float* x, int64_t n) {
  const float max_value = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max_value);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - max_value) / sum);
  }
}

void rope_ref(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
              bool interleaved) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t ia = interleaved ? 2 * i : i;
      const int64_t ib = interleaved ? 2 * i + 1 : i + half;
      const double a = v[ia];
      const double b = v[ib];
      v[ia] = static_cast<float>(a * cos[i] - b * sin[i]);
      v[ib] = static_cast<float>(b * cos[i] + a * sin[i]);
    }
  }
}

void convert_to_f32_ref(const void* src, DType dtype, int64_t n, float* dst) {
  const auto* bits = static_cast<const uint16_t*>(src);
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(bits[i]);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_float(bits[i]);
      return;
    default:
      QF_CHECK(false && "convert_to_f32_ref: dtype must be F32, F16 or BF16");
  }
}

float dot_ref(const float* a, const float* b, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

float sum_ref(const float* x, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += x[i];
  return static_cast<float>(total);
}

float max_value_ref(const float* x, int64_t n) {
  return *std::max_element(x, x + n);
}

float sum_exp_ref(const float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - shift);
  return static_cast<float>(sum);
}

void axpy_ref(float a, const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(y[i] + static_cast<double>(a) * x[i]);
}

}  // namespace qforge::cpu
