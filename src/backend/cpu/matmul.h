// Dense matrix products of the forward pass: y = x · wᵀ with w an (N, K) row-major weight in
// F32, F16 or BF16 (read in place, e.g. from an mmapped checkpoint) and x, y in F32.
// Decode (few rows of x) is memory-bound: a Highway GEMV that streams each weight row once for up
// to four x rows, multi-threaded over output rows. Prefill (many rows) is compute-bound: the same
// kernel runs on L2-sized tiles of weight rows, each tile loaded once and multiplied with every
// group of four x rows (4 x 4 register blocks on AVX-512). An OpenBLAS sgemm path (tiles
// converted to F32) is kept for comparison: with OpenBLAS 0.3.21's Haswell kernels on this
// machine it was half as fast (docs/PERFORMANCE.md).
#pragma once

#include <cstdint>

#include "qforge/core/dtype.h"

namespace qforge::cpu {

// w: (rows, cols) row-major, `row_stride` elements between rows (>= cols), dtype F32/F16/BF16.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;  // N, output features
  int64_t cols = 0;  // K, input features
  int64_t row_stride = 0;
};

enum class MatmulPath : uint8_t {
  kAuto,   // kGemv below kMatmulTiledMinRows rows of x, kTiled from there
  kGemv,   // Highway GEMV over all weight rows, x rows in groups of up to 4
  kTiled,  // Highway GEMV per cache-sized tile of weight rows, every x row per tile
  kSgemm,  // weight tiles converted to F32 + OpenBLAS sgemm
};

// The number of x rows from which kAuto uses kTiled (each weight tile then serves several
// groups of x rows from L2; measured: docs/PERFORMANCE.md).
inline constexpr int64_t kMatmulTiledMinRows = 5;

// y: [m, w.rows] = x: [m, w.cols] · wᵀ. Multi-threaded (parallel_for); called from inside a
// parallel region it runs on the calling thread only. Sets OpenBLAS to one thread (we split the
// work ourselves; two pools on the same cores would oversubscribe them).
void matmul(const WeightView& w, const float* x, int64_t m, float* y,
            MatmulPath path = MatmulPath::kAuto);

// Scalar oracle: double accumulation, single thread.
void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y);

// The single-thread GEMV kernel: y[i, r] for r in [row_begin, row_end) and i in [0, m), m <= 4.
// x: [m, w.cols] with row stride w.cols; y row stride ldy.
void gemv_rows(const WeightView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t m,
               float* y, int64_t ldy);

// dst: [n_rows, w.cols] F32 = rows [row_begin, row_begin + n_rows) of w (SIMD conversion).
void weight_rows_to_f32(const WeightView& w, int64_t row_begin, int64_t n_rows, float* dst);

}  // namespace qforge::cpu
