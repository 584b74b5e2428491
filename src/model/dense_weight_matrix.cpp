// The dense (F32/F16/BF16) WeightMatrix: a view into the checkpoint's memory, multiplied by the
// CPU matmul kernels (backend/cpu/matmul.h) without copying or converting the weights up front.
#include <memory>

#include "backend/cpu/matmul.h"
#include "backend/cpu/vector_ops.h"
#include "qforge/model/weight_matrix.h"

namespace qforge {
namespace {

class DenseWeightMatrix final : public WeightMatrix {
 public:
  explicit DenseWeightMatrix(const cpu::WeightView& w) : w_(w) {}

  int64_t rows() const override { return w_.rows; }
  int64_t cols() const override { return w_.cols; }
  std::string format_name() const override { return std::string(dtype_name(w_.dtype)); }
  uint64_t storage_bytes() const override {
    return static_cast<uint64_t>(w_.rows) * static_cast<uint64_t>(w_.cols) *
           static_cast<uint64_t>(dtype_size(w_.dtype));
  }
  void matmul(const float* x, int64_t m, float* y) const override { cpu::matmul(w_, x, m, y); }
  void row_to_f32(int64_t row, float* out) const override {
    const auto* src =
        static_cast<const char*>(w_.data) + row * w_.row_stride * dtype_size(w_.dtype);
    cpu::convert_to_f32(src, w_.dtype, w_.cols, out);
  }

 private:
  cpu::WeightView w_;
};

}  // namespace

Result<std::unique_ptr<WeightMatrix>> make_dense_weight_matrix(const TensorView& view,
                                                               const std::string& name) {
  const DType dtype = view.dtype();
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16) {
    return make_error(ErrorCode::kUnsupported,
                      "weight '{}' has dtype {}; the CPU runtime reads f32, f16 and bf16 weights "
                      "(dequantize or convert the checkpoint first)",
                      name, dtype_name(dtype));
  }
  if (view.ndim() != 2 || view.stride(1) != 1 || view.stride(0) < view.dim(1)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "weight '{}' is {}; expected a 2-D row-major matrix (out_features, "
                      "in_features) with contiguous rows",
                      name, view.to_string());
  }
  if (!view.is_aligned(static_cast<size_t>(dtype_size(dtype)))) {
    return make_error(ErrorCode::kInvalidArgument,
                      "weight '{}' starts at an address not aligned to its {}-byte elements", name,
                      dtype_size(dtype));
  }
  cpu::WeightView w{view.data(), dtype, view.dim(0), view.dim(1), view.stride(0)};
  return std::unique_ptr<WeightMatrix>(std::make_unique<DenseWeightMatrix>(w));
}

}  // namespace qforge
