// W4A16 (INT4 groups, symmetric or UINT4 + zero point, F32 activations): runtime dispatch of the
// per-target panel kernels of qmatmul_int4-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_int4.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_int4-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include "backend/cpu/qmatmul_families.h"

namespace qforge::cpu {

HWY_EXPORT(QGemvInt4);
HWY_EXPORT(QGemmInt4);
HWY_EXPORT(QDequantInt4);

namespace detail {

void qgemv_int4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemvInt4)(w, p_begin, p_end, x, m, y, ldy);
}
void qgemm_int4(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemmInt4)(w, p_begin, p_end, x, m, y, ldy);
}
void qdequant_int4(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  HWY_DYNAMIC_DISPATCH(QDequantInt4)(w, p, k0, k1, dst);
}

}  // namespace detail
}  // namespace qforge::cpu
#endif  // HWY_ONCE
