// Scalar oracle of matmul.h: y = x · wᵀ with every weight decoded by the scalar codecs and every
// dot product accumulated in double.
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/vector_ops.h"

namespace qforge::cpu {

void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  const int64_t elem = dtype_size(w.dtype);
  for (int64_t r = 0; r < w.rows; ++r) {
    const auto* src = static_cast<const char*>(w.data) + r * w.row_stride * elem;
    convert_to_f32_ref(src, w.dtype, w.cols, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < w.cols; ++j) sum += static_cast<double>(row[j]) * x[i * w.cols + j];
      y[i * w.rows + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace qforge::cpu
