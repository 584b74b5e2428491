// Element-wise and per-row CPU kernels of the Llama forward pass: RMSNorm (Zhang & Sennrich
// 2019), SwiGLU (Shazeer 2020), softmax, rotary position embedding (Su et al. 2021) and the
// F16/BF16 -> F32 row conversion. Highway SIMD with runtime dispatch (vector_ops-inl.h), each
// with a scalar *_ref oracle (vector_ops_ref.cpp). All compute in F32.
#pragma once

#include <cstdint>

#include "qforge/core/dtype.h"

namespace qforge::cpu {

// out: [n] = x / sqrt(mean(x^2) + eps) * w (as transformers' LlamaRMSNorm in float32).
// x and out may alias.
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out);
void rmsnorm_ref(const float* x, const float* w, int64_t n, float eps, float* out);

// out: [n] = silu(gate) * up, silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);
void swiglu_ref(const float* gate, const float* up, int64_t n, float* out);

// In place: x = exp(x - max x) / sum exp(x - max x). n >= 1, x finite.
void softmax(float* x, int64_t n);
void softmax_ref(float* x, int64_t n);

// Rotates one token's heads in place. x: [n_heads, head_dim] (rows head_dim apart);
// cos, sin: [head_dim / 2], entry i for the pair at frequency i:
//   interleaved == false (HF rotate_half):   (x[i], x[i + head_dim/2])
//   interleaved == true (Meta / llama2.c):   (x[2i], x[2i + 1])
//   (a, b) -> (a cos - b sin, b cos + a sin)
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
          bool interleaved);
void rope_ref(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
              bool interleaved);

// dst: [n] F32 = src: [n] of dtype F32, F16 or BF16 (exact: every F16/BF16 value is a float).
// Other dtypes are a programming error (callers validate weight dtypes at load).
void convert_to_f32(const void* src, DType dtype, int64_t n, float* dst);
void convert_to_f32_ref(const void* src, DType dtype, int64_t n, float* dst);

// sum_i a[i] * b[i] in F32 (vector partial sums, then a lane reduction).
float dot(const float* a, const float* b, int64_t n);
float dot_ref(const float* a, const float* b, int64_t n);

// max_i x[i] (n >= 1) and sum_i exp(x[i] - shift), F32 lanes; for log-sum-exp over logits.
float max_value(const float* x, int64_t n);
float max_value_ref(const float* x, int64_t n);
float sum_exp(const float* x, int64_t n, float shift);
float sum_exp_ref(const float* x, int64_t n, float shift);

// sum_i x[i] in F32 lanes (four accumulators): also the streaming-read probe of the bandwidth
// benchmark, which needs a loop that is limited by memory, not by arithmetic.
float sum(const float* x, int64_t n);
float sum_ref(const float* x, int64_t n);

// y[i] += a * x[i].
void axpy(float a, const float* x, int64_t n, float* y);
void axpy_ref(float a, const float* x, int64_t n, float* y);

}  // namespace qforge::cpu
