// WeightMatrix: how the forward pass reads a linear layer's weight, whatever its storage format.
// The runtime only ever asks a weight for y = x · Wᵀ over a batch of rows and for one row of W
// as F32 (embedding lookups); quantized formats plug in by implementing this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"

namespace qforge {

class WeightMatrix {
 public:
  virtual ~WeightMatrix() = default;

  // W: (rows, cols) = (out_features, in_features).
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  // "f32", "f16", "bf16", or a quantized format's name.
  virtual std::string format_name() const = 0;
  // Bytes one full pass over W reads (the memory-bound cost of a decode step).
  virtual uint64_t storage_bytes() const = 0;

  // y: [m, rows] = x: [m, cols] · Wᵀ, F32 in and out, rows of x and y contiguous.
  // Multi-threaded; the same inputs give bit-identical outputs whatever the thread count.
  virtual void matmul(const float* x, int64_t m, float* y) const = 0;
  // out: [cols] = row `row` of W in F32 (0 <= row < rows()).
  virtual void row_to_f32(int64_t row, float* out) const = 0;
  // True when row i of matmul's y is bit-identical whatever m and the other rows of x (the
  // engine's packed kernels). The batched runtime pads lone rows for matrices without it.
  virtual bool rows_independent_of_batch() const { return false; }
};

// A dense F32/F16/BF16 weight read in place from `view` (a 2-D view with unit column stride,
// typically into an mmapped checkpoint; the memory must outlive the WeightMatrix).
// Other dtypes or shapes: kUnsupported / kInvalidArgument naming `name`.
Result<std::unique_ptr<WeightMatrix>> make_dense_weight_matrix(const TensorView& view,
                                                               const std::string& name);

}  // namespace qforge
