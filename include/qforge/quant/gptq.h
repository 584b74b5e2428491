// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers") for one linear layer: the reference gptq.py `fasterquant` with lazy
// block updates, writing the exact qforge layouts of quantize.h (INT4 / UINT4 groups, INT8 rows).
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge {

// The GPTQ Hessian of one linear layer, H = 2/N * sum_n x_n x_nᵀ over its N calibration input
// rows, kept as a running mean exactly as the reference `add_batch` does (each add() rescales
// the sum so far by N_old / N_new), accumulated in FP64. Non-finite inputs poison the matrix;
// gptq_quantize then rejects it.
class GptqHessian {
 public:
  // 1 <= cols <= 65536 (the layer's input features); anything else is a programmer error
  // (QF_CHECK).
  explicit GptqHessian(int64_t cols);

  // A Hessian computed elsewhere (e.g. by calib/): matrix: [cols, cols] row-major, symmetric,
  // n_samples rows behind it. Errors: cols <= 0, a matrix of the wrong size, n_samples < 0.
  static Result<GptqHessian> from_matrix(int64_t cols, std::vector<double> matrix,
                                         int64_t n_samples);

  // Adds calibration rows x: [n_rows, cols] row-major (n_rows == 0 is a no-op).
  void add(const float* x, int64_t n_rows);

  int64_t cols() const { return cols_; }
  int64_t n_samples() const { return n_samples_; }
  const std::vector<double>& matrix() const { return h_; }  // [cols, cols] row-major

 private:
  int64_t cols_ = 0;
  int64_t n_samples_ = 0;
  std::vector<double> h_;
};

struct GptqOptions {
  // Dampening: percdamp * mean(diag H) is added to the diagonal before inverting.
  double percdamp = 0.01;
  // Quantize columns in order of descending diag(H) (the reference `--act-order`). The group
  // scales are then computed up front from the original weights (AutoGPTQ's
  // `static_groups=True`), so the output keeps the standard, unpermuted layout and needs no
  // g_idx: column c always belongs to group c / group_size. Every qforge layout allows it, so
  // it is on by default.
  bool act_order = true;
  // Columns per lazy batch update (the reference `blocksize`); >= 1.
  int64_t block_size = 128;
  // MSE-optimal group scales (GPTQ implementations' `mse` option, llama.cpp's imatrix-weighted
  // rounding): each group's amax (UINT4: [lo, hi]) shrunk by 1 - max_shrink * i / grid,
  // i in [0, grid], keeping the factor with the least Hessian-weighted squared error
  // sum_j H[j, j] (w_j - q_j)^2 over the group. grid 0: the plain amax recipe. grid <= 1000,
  // max_shrink in [0, 1).
  int scale_search_grid = 50;
  double scale_search_max_shrink = 0.5;
  // Inside a decoder block, quantize q/k/v, then o, then gate/up, then down, each layer's
  // Hessian taken from inputs that flow through the already-quantized layers before it
  // (the reference `--true-sequential`). false: every Hessian from the float block.
  bool true_sequential = true;
};

struct GptqResult {
  QuantizedMatrix quantized;       // exactly the layout quantize_matrix gives for the spec
  std::vector<float> dequantized;  // [rows, cols]; == dequantize_matrix(quantized) bit for bit
  double error = 0;  // sum over all weights of the GPTQ losses (w - q)^2 / d^2 / 2, as reported
                     // by the reference (d: diagonal of the upper Cholesky factor of H^-1)
};

// Quantizes w: [rows, cols] row-major (a linear layer's weight, out x in) with the Hessian h of
// its inputs into `spec`:
//   INT4_GROUP        symmetric groups (any group size validate_quant_spec accepts, F16 or BF16
//                     scales)
//   UINT4_GROUP       asymmetric groups with zero point
//   INT8_PER_CHANNEL  one FP32 scale per row (W8A16 GPTQ: the group is the whole row)
// Scales follow the docs/FORMATS.md recipes (INT4 amax/7 rounded to the scale type, UINT4
// lo/hi/zero, INT8 amax/127) over the range the scale search picks (GptqOptions; grid 0: the
// recipes exactly). As in the reference, a group's amax (lo, hi) is taken over
// its CURRENT, error-updated weights when the quantizer reaches the group's first column; codes
// may then use the full ranges (-8 for INT4). (For a group that starts inside a lazy batch, the
// reference's find_params reads W, which still lacks that batch's updates so far; qforge applies
// them, so the scales are the unbatched algorithm's and never depend on block_size.) With
// act_order, see GptqOptions. Columns with H[i,i] == 0 (dead inputs) get H[i,i] = 1 and zero
// weights. Columns past `cols` up to padded_cols are zero padding, as in quantize_matrix.
// Errors: kUnsupported for other formats (naming them); kInvalidArgument for bad shapes, a
// Hessian of another size, no calibration samples, non-finite weights or Hessian entries, bad
// options, a group scale that overflows F16, or an H that is not positive definite after
// dampening (raise percdamp).
Result<GptqResult> gptq_quantize(const float* w, int64_t rows, int64_t cols, const GptqHessian& h,
                                 const QuantSpec& spec, const GptqOptions& options = {});

// The test oracle: the same method in its plain O(cols^3) form, column by column with the
// explicit inverse Hessian of the remaining columns and its OBS downdate (no lazy batching, no
// Cholesky), with the same rounding and scale rules. options.block_size is ignored.
Result<GptqResult> gptq_quantize_ref(const float* w, int64_t rows, int64_t cols,
                                     const GptqHessian& h, const QuantSpec& spec,
                                     const GptqOptions& options = {});

}  // namespace qforge
