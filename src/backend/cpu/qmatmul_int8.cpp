// W8A16 (INT8 weights per channel or per tensor, F32 activations): runtime dispatch of the
// per-target panel kernels of qmatmul_int8-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_int8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_int8-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include "backend/cpu/qmatmul_families.h"

namespace qforge::cpu {

HWY_EXPORT(QGemvInt8);
HWY_EXPORT(QGemmInt8);
HWY_EXPORT(QDequantInt8);

namespace detail {

void qgemv_int8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemvInt8)(w, p_begin, p_end, x, m, y, ldy);
}
void qgemm_int8(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(QGemmInt8)(w, p_begin, p_end, x, m, y, ldy);
}
void qdequant_int8(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  HWY_DYNAMIC_DISPATCH(QDequantInt8)(w, p, k0, k1, dst);
}

}  // namespace detail
}  // namespace qforge::cpu
#endif  // HWY_ONCE
