// The matmul driver of matmul.h: runtime dispatch of the Highway GEMV (matmul-inl.h), the
// threading split over output rows, and the tiled OpenBLAS sgemm path for prefill.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/matmul-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <cblas.h>

#include <algorithm>
#include <memory>

#include "hwy/aligned_allocator.h"
#include "qforge/core/error.h"
#include "qforge/core/parallel.h"

namespace qforge::cpu {

HWY_EXPORT(GemvRows);
HWY_EXPORT(RowsToF32);

void gemv_rows(const WeightView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t m,
               float* y, int64_t ldy) {
  QF_CHECK(m >= 1 && m <= 4);
  HWY_DYNAMIC_DISPATCH(GemvRows)
  (w.data, w.dtype, w.row_stride, w.cols, row_begin, row_end, x, m, y, ldy);
}

void weight_rows_to_f32(const WeightView& w, int64_t row_begin, int64_t n_rows, float* dst) {
  HWY_DYNAMIC_DISPATCH(RowsToF32)(w.data, w.dtype, w.row_stride, w.cols, row_begin, n_rows, dst);
}

namespace {

// Weight bytes per parallel chunk of the GEMV. A fork/join costs microseconds on idle cores but
// a whole scheduler time slice when another process holds the core a worker waits for (a shared
// 2-core machine), so only matrices worth milliseconds of streaming are split.
constexpr int64_t kGemvGrainBytes = 1 << 20;
// Multiply-adds per parallel chunk of the sgemm path (a few milliseconds of work).
constexpr int64_t kSgemmGrainMacs = int64_t{1} << 24;

void matmul_gemv(const WeightView& w, const float* x, int64_t m, float* y) {
  const int64_t row_bytes = std::max<int64_t>(1, w.cols * dtype_size(w.dtype));
  const int64_t grain = std::max<int64_t>(4, kGemvGrainBytes / row_bytes);
  parallel_for(0, w.rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = 0; i < m; i += 4) {
      const int64_t mm = std::min<int64_t>(4, m - i);
      gemv_rows(w, begin, end, x + i * w.cols, mm, y + i * w.rows, w.rows);
    }
  });
}

// Weight rows per tile of the tiled path: about 256 KB of weights (a quarter of a 1 MB L2),
// a multiple of 4, between 16 and 256. Depends only on the matrix shape: results do not depend
// on the thread count.
int64_t tiled_rows(const WeightView& w) {
  const int64_t row_bytes = std::max<int64_t>(1, w.cols * dtype_size(w.dtype));
  return std::clamp<int64_t>((int64_t{256} << 10) / row_bytes / 4 * 4, 16, 256);
}

void matmul_tiled(const WeightView& w, const float* x, int64_t m, float* y) {
  const int64_t tile = tiled_rows(w);
  const int64_t n_tiles = (w.rows + tile - 1) / tile;
  const int64_t grain =
      std::max<int64_t>(1, kSgemmGrainMacs / std::max<int64_t>(1, m * tile * w.cols));
  parallel_for(0, n_tiles, grain, [&](int64_t t_begin, int64_t t_end) {
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t r0 = t * tile;
      const int64_t r1 = std::min(w.rows, r0 + tile);
      for (int64_t i = 0; i < m; i += 4) {
        gemv_rows(w, r0, r1, x + i * w.cols, std::min<int64_t>(4, m - i), y + i * w.rows, w.rows);
      }
    }
  });
}

// OpenBLAS runs single-threaded inside our chunks: we split the output columns ourselves.
void use_single_threaded_blas() {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// Weight rows per sgemm tile. Fixed (not derived from the thread count) so that every output
// element comes from the same sgemm call whatever the number of threads: results are
// reproducible across machines. 128 rows of a 4096-wide layer are a 2 MB F32 tile.
constexpr int64_t kSgemmTileRows = 128;

void matmul_sgemm(const WeightView& w, const float* x, int64_t m, float* y) {
  use_single_threaded_blas();
  const int64_t tile = kSgemmTileRows;
  const int64_t n_tiles = (w.rows + tile - 1) / tile;
  const int k = static_cast<int>(w.cols);
  const int64_t grain = std::max<int64_t>(1, kSgemmGrainMacs / std::max<int64_t>(1, m * tile * k));
  parallel_for(0, n_tiles, grain, [&](int64_t t_begin, int64_t t_end) {
    hwy::AlignedFreeUniquePtr<float[]> buffer;
    if (w.dtype != DType::F32 || w.row_stride != w.cols) {
      buffer = hwy::AllocateAligned<float>(static_cast<size_t>(tile * w.cols));
    }
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t r0 = t * tile;
      const int64_t nr = std::min(tile, w.rows - r0);
      const float* wt = nullptr;
      int ldw = k;
      if (buffer) {
        weight_rows_to_f32(w, r0, nr, buffer.get());
        wt = buffer.get();
      } else {
        wt = static_cast<const float*>(w.data) + r0 * w.row_stride;
        ldw = static_cast<int>(w.row_stride);
      }
      // y[:, r0:r0+nr] = x · wtᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                  static_cast<int>(nr), k, 1.0f, x, k, wt, ldw, 0.0f, y + r0,
                  static_cast<int>(w.rows));
    }
  });
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t m, float* y, MatmulPath path) {
  QF_CHECK(w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16);
  QF_CHECK(w.row_stride >= w.cols && m >= 0);
  if (m == 0 || w.rows == 0) return;
  if (path == MatmulPath::kAuto) {
    path = m < kMatmulTiledMinRows ? MatmulPath::kGemv : MatmulPath::kTiled;
  }
  switch (path) {
    case MatmulPath::kGemv:
      return matmul_gemv(w, x, m, y);
    case MatmulPath::kTiled:
      return matmul_tiled(w, x, m, y);
    default:
      return matmul_sgemm(w, x, m, y);
  }
}

}  // namespace qforge::cpu
#endif  // HWY_ONCE
