// dense_matmul of qmatmul.h: runtime dispatch of qmatmul_dense-inl.h and the split over threads
// (GEMV over row chunks for m <= 4, L2-sized row tiles times every x row for prefill).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/qmatmul_dense.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/qmatmul_dense-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <algorithm>

#include "backend/cpu/qmatmul.h"
#include "hwy/aligned_allocator.h"
#include "qforge/core/error.h"
#include "qforge/core/parallel.h"

namespace qforge::cpu {

HWY_EXPORT(DenseRows);
HWY_EXPORT(DensePrefill);

void dense_matmul(const WeightView& w, const float* x, int64_t m, float* y) {
  QF_CHECK(w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16);
  QF_CHECK(w.row_stride >= w.cols && m >= 0);
  if (m == 0 || w.rows == 0) return;
  const int64_t row_bytes = std::max<int64_t>(1, w.cols * dtype_size(w.dtype));
  const int64_t prefetch = qmatmul_prefetch_bytes();
  if (m <= 4) {
    const int64_t grain = std::max<int64_t>(4, (int64_t{512} << 10) / row_bytes);
    parallel_for(0, w.rows, grain, [&](int64_t b, int64_t e) {
      HWY_DYNAMIC_DISPATCH(DenseRows)
      (w.data, w.dtype, w.row_stride, w.cols, b, e, x, m, y, w.rows, prefetch);
    });
    return;
  }
  // Prefill: tiles of 32 weight rows widened to F32 (<= 1 MB for k <= 8192), each multiplied
  // with every x row while in L2.
  const int64_t tile = 32;
  const int64_t ld = w.cols + 16;  // see DensePrefillTyped
  auto xp = hwy::AllocateAligned<float>(static_cast<size_t>(m * ld));
  for (int64_t i = 0; i < m; ++i) {
    std::copy(x + i * w.cols, x + (i + 1) * w.cols, xp.get() + i * ld);
  }
  const int64_t n_tiles = (w.rows + tile - 1) / tile;
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, m * tile * w.cols));
  parallel_for(0, n_tiles, grain, [&](int64_t tb, int64_t te) {
    auto buf = hwy::AllocateAligned<float>(static_cast<size_t>(tile * ld));
    for (int64_t t = tb; t < te; ++t) {
      const int64_t r0 = t * tile;
      const int64_t r1 = std::min(w.rows, r0 + tile);
      HWY_DYNAMIC_DISPATCH(DensePrefill)
      (w.data, w.dtype, w.row_stride, w.cols, r0, r1, xp.get(), ld, m, y, w.rows, buf.get());
    }
  });
}

}  // namespace qforge::cpu
#endif  // HWY_ONCE
