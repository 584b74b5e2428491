// NVFP4 and MXFP4 weights (E2M1 codes with E4M3 x tensor / E8M0 block scales): runtime dispatch of
// the per-target panel kernels of qmatmul_fp4-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_fp4.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_fp4-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include "backend/cpu/qmatmul_families.h"

namespace qforge::cpu {

HWY_EXPORT(QGemvFp4);
HWY_EXPORT(QGemmFp4);
HWY_EXPORT(QDequantFp4);

namespace detail {

void qgemv_fp4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemvFp4)(w, p_begin, p_end, x, m, y, ldy);
}
void qgemm_fp4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemmFp4)(w, p_begin, p_end, x, m, y, ldy);
}
void qdequant_fp4(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  HWY_DYNAMIC_DISPATCH(QDequantFp4)(w, p, k0, k1, dst);
}

}  // namespace detail
}  // namespace qforge::cpu
#endif  // HWY_ONCE
