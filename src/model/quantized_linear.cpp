// Fake-quantized linear layers (include/qforge/model/quantized_linear.h).
#include "qforge/model/quantized_linear.h"

#include <cmath>
#include <cstring>

#include "qforge/core/parallel.h"

namespace qforge {
namespace {

constexpr float kFp8Max = 448.0f;
constexpr float kInt8Max = 127.0f;

void round_fp8(float* x, int64_t n, float scale, std::vector<uint8_t>& codes) {
  if (!(scale > 0.0f)) return;
  codes.resize(static_cast<size_t>(n));
  quantize_row_fp8(x, n, scale, ScalarFormat::E4M3FN, codes.data());
  dequantize_row_fp8(codes.data(), n, scale, ScalarFormat::E4M3FN, x);
}

void round_int8(float* x, int64_t n, float scale, std::vector<uint8_t>& codes) {
  if (!(scale > 0.0f)) return;
  codes.resize(static_cast<size_t>(n));
  auto* c = reinterpret_cast<int8_t*>(codes.data());
  quantize_row_int8(x, n, scale, c);
  dequantize_row_int8(c, n, scale, x);
}

void round_nvfp4(float* x, int64_t n, float tensor_scale, std::vector<uint8_t>& codes) {
  const int64_t blocks = (n + 15) / 16;
  codes.resize(static_cast<size_t>(blocks) * sizeof(BlockNvfp4));
  auto* b = reinterpret_cast<BlockNvfp4*>(codes.data());
  quantize_row_nvfp4(x, n, tensor_scale, b);
  dequantize_row_nvfp4(b, n, tensor_scale, x);
}

class FakeQuantWeightMatrix final : public WeightMatrix {
 public:
  FakeQuantWeightMatrix(std::vector<float> w, int64_t rows, int64_t cols, std::string name,
                        uint64_t bytes, ActivationQuantParams act,
                        std::unique_ptr<WeightMatrix> dense)
      : w_(std::move(w)),
        rows_(rows),
        cols_(cols),
        name_(std::move(name)),
        bytes_(bytes),
        act_(std::move(act)),
        dense_(std::move(dense)) {}

  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  std::string format_name() const override { return name_; }
  uint64_t storage_bytes() const override { return bytes_; }

  void matmul(const float* x, int64_t m, float* y) const override {
    if (act_.kind == ActivationQuant::kNone && act_.pre_quant_scale.empty()) {
      dense_->matmul(x, m, y);
      return;
    }
    std::vector<float> xq(x, x + m * cols_);
    if (!act_.pre_quant_scale.empty()) {
      const float* s = act_.pre_quant_scale.data();
      for (int64_t t = 0; t < m; ++t) {
        float* row = xq.data() + t * cols_;
        for (int64_t j = 0; j < cols_; ++j) row[j] *= s[j];
      }
    }
    fake_quantize_activations(act_.kind, act_.input_scale, xq.data(), m, cols_);
    dense_->matmul(xq.data(), m, y);
  }

  void row_to_f32(int64_t row, float* out) const override {
    std::memcpy(out, w_.data() + row * cols_, static_cast<size_t>(cols_) * sizeof(float));
  }

 private:
  std::vector<float> w_;  // [rows, cols] dequantized
  int64_t rows_, cols_;
  std::string name_;
  uint64_t bytes_;
  ActivationQuantParams act_;
  std::unique_ptr<WeightMatrix> dense_;  // reads w_
};

}  // namespace

void fake_quantize_activations(ActivationQuant kind, float input_scale, float* x, int64_t m,
                               int64_t cols) {
  if (kind == ActivationQuant::kNone) return;
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(cols, 1));
  parallel_for(0, m, grain, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> codes;
    for (int64_t t = b; t < e; ++t) {
      float* row = x + t * cols;
      switch (kind) {
        case ActivationQuant::kNone:
          break;
        case ActivationQuant::kFp8PerTensor:
          round_fp8(row, cols, input_scale, codes);
          break;
        case ActivationQuant::kFp8PerToken:
          round_fp8(row, cols, row_amax(row, cols) / kFp8Max, codes);
          break;
        case ActivationQuant::kFp8PerGroup128:
          for (int64_t g = 0; g < cols; g += 128) {
            const int64_t len = std::min<int64_t>(128, cols - g);
            round_fp8(row + g, len, row_amax(row + g, len) / kFp8Max, codes);
          }
          break;
        case ActivationQuant::kInt8PerTensor:
          round_int8(row, cols, input_scale, codes);
          break;
        case ActivationQuant::kInt8PerToken:
          round_int8(row, cols, row_amax(row, cols) / kInt8Max, codes);
          break;
        case ActivationQuant::kNvfp4:
          round_nvfp4(row, cols, input_scale, codes);
          break;
      }
    }
  });
}

Result<std::unique_ptr<WeightMatrix>> make_fake_quant_weight_matrix(
    std::vector<float> w, int64_t rows, int64_t cols, std::string format_name,
    uint64_t storage_bytes, ActivationQuantParams activation) {
  if (rows < 1 || cols < 1 || static_cast<int64_t>(w.size()) != rows * cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "fake-quant weight: {} floats for a [{}, {}] matrix", w.size(), rows, cols);
  }
  if (!activation.pre_quant_scale.empty() &&
      static_cast<int64_t>(activation.pre_quant_scale.size()) != cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pre_quant_scale has {} values; the layer has {} input features",
                      activation.pre_quant_scale.size(), cols);
  }
  if (activation_quant_is_static(activation.kind) &&
      !(std::isfinite(activation.input_scale) && activation.input_scale > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "activation quantization {} needs a finite input_scale > 0, got {}",
                      activation_quant_name(activation.kind), activation.input_scale);
  }
  QF_ASSIGN_OR_RETURN(TensorView view, TensorView::make(static_cast<const void*>(w.data()),
                                                        DType::F32, Shape{rows, cols}));
  // The vector's heap buffer does not move when the vector is moved into the matrix below.
  QF_ASSIGN_OR_RETURN(auto dense, make_dense_weight_matrix(view, format_name));
  return std::unique_ptr<WeightMatrix>(std::make_unique<FakeQuantWeightMatrix>(
      std::move(w), rows, cols, std::move(format_name), storage_bytes, std::move(activation),
      std::move(dense)));
}

Result<std::unique_ptr<WeightMatrix>> make_quantized_weight_matrix(
    const QuantizedMatrix& q, ActivationQuantParams activation) {
  std::vector<float> w(static_cast<size_t>(q.rows * q.cols));
  QF_TRY(dequantize_matrix(q, w.data()));
  return make_fake_quant_weight_matrix(std::move(w), q.rows, q.cols, quant_spec_name(q.spec),
                                       q.storage_bytes(), std::move(activation));
}

}  // namespace qforge
