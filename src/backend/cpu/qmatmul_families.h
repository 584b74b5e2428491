// Entry points of the per-family panel kernels (qmatmul_<family>.cpp), called by the qmatmul
// driver (qmatmul.cpp) with runtime dispatch already applied. Internal to backend/cpu.
#pragma once

#include <cstdint>

#include "backend/cpu/qmatmul.h"

namespace qforge::cpu::detail {

// y rows of panels [p_begin, p_end): GEMV (m <= 4), GEMM (any m), and one panel's columns
// [k0, k1) dequantized to dst: [k1 - k0][16].
#define QFORGE_QMATMUL_FAMILY(name)                                                       \
  void qgemv_##name(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, \
                    int64_t m, float* y, int64_t ldy);                                    \
  void qgemm_##name(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, \
                    int64_t m, float* y, int64_t ldy);                                    \
  void qdequant_##name(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst);

QFORGE_QMATMUL_FAMILY(int8)  // kW8A16
QFORGE_QMATMUL_FAMILY(int4)  // kW4A16, kW4A16Zp
QFORGE_QMATMUL_FAMILY(fp8)   // kFp8, kMxfp8
QFORGE_QMATMUL_FAMILY(fp4)   // kNvfp4, kMxfp4
#undef QFORGE_QMATMUL_FAMILY

// W8A8 over panels [p_begin, p_end), any m (qmatmul_w8a8.cpp).
void qmatmul_w8a8_panels(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const int8_t* xq,
                         const float* x_scale, int64_t m, float* y, int64_t ldy);

}  // namespace qforge::cpu::detail
