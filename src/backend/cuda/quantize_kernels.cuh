// Launchers of the CUDA quantization kernels (one host launcher per kernel family, Marlin style).
// Plain structs only: .cu files include this instead of quantize_cuda.h, because nvcc cannot
// compile fmt (used by qforge's Result/Error) in device translation units.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qforge/formats/blocks.h"

namespace qforge::cuda {

// amax_bits = max over i of (bits(x[i]) & 0x7FFFFFFF): the bit pattern of max|x| for finite x,
// and >= 0x7F800000 exactly when x holds an Inf or NaN. *amax_bits must be 0 before the launch.
struct AmaxParams {
  const float* x;  // x: [n], device
  int64_t n;
  uint32_t* amax_bits;  // device, one word
};
void launch_amax(const AmaxParams& p, cudaStream_t stream);

// codes[i] = e4m3fn(x[i] / scale, satfinite), scale = amax / 448 computed on the device from
// *amax_bits (written by launch_amax); scale == 0 gives all-zero codes. Writes the scale too.
struct QuantizeFp8Params {
  const float* x;  // x: [n], device
  int64_t n;
  const uint32_t* amax_bits;  // device
  uint8_t* codes;             // codes: [n], device
  float* scale;               // device, one float: the dequantization multiplier
};
void launch_quantize_fp8_per_tensor(const QuantizeFp8Params& p, cudaStream_t stream);

// NVFP4 of x: [rows, cols] row-major into blocks: [rows, ceil(cols / 16)] BlockNvfp4, the last
// block of each row zero-padded. Tensor scale s2 = amax / (6 * 448) from *amax_bits; written to
// *tensor_scale.
struct QuantizeNvfp4Params {
  const float* x;
  int64_t rows;
  int64_t cols;
  const uint32_t* amax_bits;
  BlockNvfp4* blocks;
  float* tensor_scale;
};
void launch_quantize_nvfp4(const QuantizeNvfp4Params& p, cudaStream_t stream);

}  // namespace qforge::cuda
