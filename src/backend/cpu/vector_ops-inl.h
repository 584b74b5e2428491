// Per-target Highway code of vector_ops.h: RMSNorm, SwiGLU, softmax, RoPE, F16/BF16 -> F32
// conversion, dot and axpy. Tails shorter than a vector run the same scalar recipe.
// Included once per target by vector_ops.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_VECTOR_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_VECTOR_OPS_INL_H_
#undef QFORGE_BACKEND_CPU_VECTOR_OPS_INL_H_
#else
#define QFORGE_BACKEND_CPU_VECTOR_OPS_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/vector_ops.h"
#include "backend/cpu/widen-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "qforge/formats/scalar.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Sum of a[i] * b[i] with four independent accumulators (hides FMA latency).
HWY_INLINE float DotImpl(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(df, a + i + 2 * N), hn::LoadU(df, b + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(df, a + i + 3 * N), hn::LoadU(df, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  s0 = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  float sum = hn::GetLane(hn::SumOfLanes(df, s0));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  return DotImpl(a, b, static_cast<size_t>(n));
}

void Axpy(float alpha, const float* HWY_RESTRICT x, int64_t n, float* HWY_RESTRICT y) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const VF va = hn::Set(df, alpha);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < count; ++i) y[i] += alpha * x[i];
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const float sum_sq = DotImpl(x, x, count);
  const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(n) + eps);
  const VF vinv = hn::Set(df, inv);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    hn::StoreU(hn::Mul(hn::LoadU(df, w + i), hn::Mul(hn::LoadU(df, x + i), vinv)), df, out + i);
  }
  for (; i < count; ++i) out[i] = w[i] * (x[i] * inv);
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const VF one = hn::Set(df, 1.0f);
  // Exp is valid up to +104; exp(-g) for g < -88 already overflows float, so clamping the
  // argument there changes nothing but keeps Exp in range.
  const VF max_arg = hn::Set(df, 88.0f);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    const VF e = hn::Exp(df, hn::Min(hn::Neg(g), max_arg));
    const VF silu = hn::Div(g, hn::Add(one, e));
    hn::StoreU(hn::Mul(silu, hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

float Sum(const float* HWY_RESTRICT x, int64_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  VF s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= count; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(df, x + i));
    s1 = hn::Add(s1, hn::LoadU(df, x + i + N));
    s2 = hn::Add(s2, hn::LoadU(df, x + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(df, x + i + 3 * N));
  }
  for (; i + N <= count; i += N) s0 = hn::Add(s0, hn::LoadU(df, x + i));
  float total = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < count; ++i) total += x[i];
  return total;
}

float MaxValue(const float* HWY_RESTRICT x, int64_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  float max_value = x[0];
  size_t i = 0;
  if (count >= N) {
    VF vmax = hn::LoadU(df, x);
    for (i = N; i + N <= count; i += N) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
    max_value = hn::GetLane(hn::MaxOfLanes(df, vmax));
  }
  for (; i < count; ++i) max_value = std::max(max_value, x[i]);
  return max_value;
}

float SumExp(const float* HWY_RESTRICT x, int64_t n, float shift) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  const VF vshift = hn::Set(df, shift);
  VF s0 = hn::Zero(df), s1 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * N <= count; i += 2 * N) {
    s0 = hn::Add(s0, hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vshift)));
    s1 = hn::Add(s1, hn::Exp(df, hn::Sub(hn::LoadU(df, x + i + N), vshift)));
  }
  for (; i + N <= count; i += N)
    s0 = hn::Add(s0, hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vshift)));
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < count; ++i) sum += std::exp(x[i] - shift);
  return sum;
}

void Softmax(float* x, int64_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  float max_value = x[0];
  size_t i = 0;
  if (count >= N) {
    VF vmax = hn::LoadU(df, x);
    for (i = N; i + N <= count; i += N) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
    max_value = hn::GetLane(hn::MaxOfLanes(df, vmax));
  }
  for (; i < count; ++i) max_value = std::max(max_value, x[i]);

  const VF vmax = hn::Set(df, max_value);
  VF vsum = hn::Zero(df);
  i = 0;
  for (; i + N <= count; i += N) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmax));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < count; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const VF vinv = hn::Set(df, inv);
  i = 0;
  for (; i + N <= count; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < count; ++i) x[i] *= inv;
}

// Head dims up to this size use the SIMD interleaved path (stack tables); larger fall back.
constexpr int64_t kMaxSimdHeadDim = 1024;

void Rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
          bool interleaved) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t half = static_cast<size_t>(head_dim / 2);
  if (!interleaved) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* a = x + h * head_dim;
      float* b = a + half;
      size_t i = 0;
      for (; i + N <= half; i += N) {
        const VF va = hn::LoadU(df, a + i);
        const VF vb = hn::LoadU(df, b + i);
        const VF c = hn::LoadU(df, cos + i);
        const VF s = hn::LoadU(df, sin + i);
        hn::StoreU(hn::Sub(hn::Mul(va, c), hn::Mul(vb, s)), df, a + i);
        hn::StoreU(hn::Add(hn::Mul(vb, c), hn::Mul(va, s)), df, b + i);
      }
      for (; i < half; ++i) {
        const float va = a[i];
        const float vb = b[i];
        a[i] = va * cos[i] - vb * sin[i];
        b[i] = vb * cos[i] + va * sin[i];
      }
    }
    return;
  }
  // Pair swapping needs at least two lanes (the SCALAR target has one).
  if (head_dim > kMaxSimdHeadDim || N < 2) return rope_ref(x, n_heads, head_dim, cos, sin, true);
  // Interleaved pairs (2i, 2i+1): with c2 = (c0, c0, c1, c1, ...) and s2 = (-s0, s0, -s1, ...),
  // x' = x * c2 + swap_pairs(x) * s2.
  HWY_ALIGN float c2[kMaxSimdHeadDim];
  HWY_ALIGN float s2[kMaxSimdHeadDim];
  for (size_t i = 0; i < half; ++i) {
    c2[2 * i] = c2[2 * i + 1] = cos[i];
    s2[2 * i] = -sin[i];
    s2[2 * i + 1] = sin[i];
  }
  const size_t dim = static_cast<size_t>(head_dim);
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    size_t i = 0;
    for (; i + N <= dim; i += N) {
      const VF vx = hn::LoadU(df, v + i);
      const VF swapped = hn::Reverse2(df, vx);
      hn::StoreU(hn::Add(hn::Mul(vx, hn::Load(df, c2 + i)), hn::Mul(swapped, hn::Load(df, s2 + i))),
                 df, v + i);
    }
    for (; i < dim; i += 2) {
      const float a = v[i];
      const float b = v[i + 1];
      v[i] = a * c2[i] - b * s2[i + 1];
      v[i + 1] = b * c2[i] + a * s2[i + 1];
    }
  }
}

void ConvertToF32(const void* src, DType dtype, int64_t n, float* HWY_RESTRICT dst) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t count = static_cast<size_t>(n);
  size_t i = 0;
  if (dtype == DType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
  } else if (dtype == DType::BF16) {
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    const auto* s = static_cast<const hwy::bfloat16_t*>(src);
    for (; i + N <= count; i += N)
      hn::StoreU(hn::PromoteTo(df, hn::LoadU(dbf, s + i)), df, dst + i);
    const auto* bits = static_cast<const uint16_t*>(src);
    for (; i < count; ++i) dst[i] = bf16_to_float(bits[i]);
  } else if (dtype == DType::F16) {
    const auto* s = static_cast<const hwy::float16_t*>(src);
    for (; i + N <= count; i += N) hn::StoreU(PromoteF16(df, s + i), df, dst + i);
    const auto* bits = static_cast<const uint16_t*>(src);
    for (; i < count; ++i) dst[i] = f16_to_float(bits[i]);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
