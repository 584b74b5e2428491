// Runtime dispatch of the vector kernels (vector_ops-inl.h) over every Highway target compiled
// in. Each entry point re-reads the dispatch table, so ScopedSimdTarget switches them all.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/vector_ops.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/vector_ops-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace qforge::cpu {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(SwiGlu);
HWY_EXPORT(Softmax);
HWY_EXPORT(Rope);
HWY_EXPORT(ConvertToF32);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);
HWY_EXPORT(MaxValue);
HWY_EXPORT(Sum);
HWY_EXPORT(SumExp);

void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, n, eps, out);
}
void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SwiGlu)(gate, up, n, out);
}
void softmax(float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(Softmax)(x, n);
}
void rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
          bool interleaved) {
  HWY_DYNAMIC_DISPATCH(Rope)(x, n_heads, head_dim, cos, sin, interleaved);
}
void convert_to_f32(const void* src, DType dtype, int64_t n, float* dst) {
  QF_CHECK(dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16);
  HWY_DYNAMIC_DISPATCH(ConvertToF32)(src, dtype, n, dst);
}
float dot(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n);
}
float sum(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(Sum)(x, n);
}
float max_value(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(MaxValue)(x, n);
}
float sum_exp(const float* x, int64_t n, float shift) {
  return HWY_DYNAMIC_DISPATCH(SumExp)(x, n, shift);
}
void axpy(float a, const float* x, int64_t n, float* y) {
  HWY_DYNAMIC_DISPATCH(Axpy)(a, x, n, y);
}

}  // namespace qforge::cpu
#endif  // HWY_ONCE
