// CUDA bulk quantizers for FP8 (per-tensor E4M3FN) and NVFP4: the GPU twins of the CPU row
// kernels in include/qforge/formats/quantize.h, with the same scale recipes op for op, so that a
// GPU-quantized matrix equals quantize_matrix_ref's bit for bit (tests/cuda).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/quantize_kernels.cuh"
#include "qforge/core/error.h"
#include "qforge/formats/quantize.h"

namespace qforge::cuda {

struct DeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  uint64_t global_memory_bytes = 0;
  uint64_t l2_bytes = 0;
};
Result<DeviceInfo> device_info(int device = 0);

// Host convenience for tests and tools: copies x: [rows, cols] (host) to the device, quantizes
// with the kernels of quantize_kernels.cuh and returns the same QuantizedMatrix that
// quantize_matrix returns. Supports FP8_PER_TENSOR (E4M3FN) and NVFP4; other specs are an
// kUnsupported error naming them.
Result<QuantizedMatrix> quantize_matrix_cuda(const float* x, int64_t rows, int64_t cols,
                                             const QuantSpec& spec);

}  // namespace qforge::cuda
