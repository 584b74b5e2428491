// FP8 E4M3FN weights (per-tensor, per-channel, 128x128 block or MXFP8 E8M0 scales): runtime
// dispatch of the per-target panel kernels of qmatmul_fp8-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_fp8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_fp8-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include "backend/cpu/qmatmul_families.h"

namespace qforge::cpu {

HWY_EXPORT(QGemvFp8);
HWY_EXPORT(QGemmFp8);
HWY_EXPORT(QDequantFp8);

namespace detail {

void qgemv_fp8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemvFp8)(w, p_begin, p_end, x, m, y, ldy);
}
void qgemm_fp8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemmFp8)(w, p_begin, p_end, x, m, y, ldy);
}
void qdequant_fp8(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  HWY_DYNAMIC_DISPATCH(QDequantFp8)(w, p, k0, k1, dst);
}

}  // namespace detail
}  // namespace qforge::cpu
#endif  // HWY_ONCE
