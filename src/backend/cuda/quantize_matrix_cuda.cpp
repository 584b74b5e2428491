// Host side of the CUDA quantizers: device queries and the upload -> quantize -> download
// wrapper that returns the same QuantizedMatrix as the CPU path.
#include <cmath>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/quantize_cuda.h"

namespace qforge::cuda {

Result<DeviceInfo> device_info(int device) {
  cudaDeviceProp prop{};
  QF_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.global_memory_bytes = prop.totalGlobalMem;
  info.l2_bytes = static_cast<uint64_t>(prop.l2CacheSize);
  return info;
}

Result<QuantizedMatrix> quantize_matrix_cuda(const float* x, int64_t rows, int64_t cols,
                                             const QuantSpec& spec) {
  const bool fp8 = spec.format == QuantFormat::FP8_PER_TENSOR && spec.fp8 == ScalarFormat::E4M3FN;
  const bool nvfp4 = spec.format == QuantFormat::NVFP4;
  if (!fp8 && !nvfp4) {
    return make_error(ErrorCode::kUnsupported,
                      "quantize_matrix_cuda: no CUDA kernel for format '{}' (supported: fp8 "
                      "with e4m3fn elements, nvfp4)",
                      quant_spec_name(spec));
  }
  if (rows <= 0 || cols <= 0 || rows > (int64_t{1} << 31) / std::max<int64_t>(cols, 1) * 16) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize_matrix_cuda: shape [{}, {}] must be positive and under 2^35 "
                      "elements",
                      rows, cols);
  }
  const int64_t n = rows * cols;
  QF_ASSIGN_OR_RETURN(DeviceBuffer d_x, DeviceBuffer::allocate(n * sizeof(float)));
  QF_ASSIGN_OR_RETURN(DeviceBuffer d_amax, DeviceBuffer::allocate(sizeof(uint32_t)));
  QF_ASSIGN_OR_RETURN(DeviceBuffer d_scale, DeviceBuffer::allocate(sizeof(float)));
  QF_CUDA_TRY(cudaMemcpy(d_x.as<float>(), x, n * sizeof(float), cudaMemcpyHostToDevice));
  QF_CUDA_TRY(cudaMemset(d_amax.as<uint32_t>(), 0, sizeof(uint32_t)));
  launch_amax({d_x.as<float>(), n, d_amax.as<uint32_t>()}, nullptr);
  QF_CUDA_TRY(cudaGetLastError());
  uint32_t amax_bits = 0;
  QF_CUDA_TRY(
      cudaMemcpy(&amax_bits, d_amax.as<uint32_t>(), sizeof(amax_bits), cudaMemcpyDeviceToHost));
  if (amax_bits >= 0x7F800000u) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize_matrix_cuda: input holds {} values; the checkpoint or calibration "
                      "produced non-finite weights",
                      amax_bits == 0x7F800000u ? "Inf" : "NaN");
  }

  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  if (fp8) {
    q.padded_cols = cols;
    q.row_bytes = cols;
    QF_ASSIGN_OR_RETURN(DeviceBuffer d_codes, DeviceBuffer::allocate(n));
    launch_quantize_fp8_per_tensor(
        {d_x.as<float>(), n, d_amax.as<uint32_t>(), d_codes.as<uint8_t>(), d_scale.as<float>()},
        nullptr);
    QF_CUDA_TRY(cudaGetLastError());
    q.data.resize(n);
    q.scales.resize(1);
    QF_CUDA_TRY(cudaMemcpy(q.data.data(), d_codes.as<uint8_t>(), n, cudaMemcpyDeviceToHost));
    QF_CUDA_TRY(
        cudaMemcpy(q.scales.data(), d_scale.as<float>(), sizeof(float), cudaMemcpyDeviceToHost));
    return q;
  }
  const int64_t blocks_per_row = (cols + BlockNvfp4::kBlockSize - 1) / BlockNvfp4::kBlockSize;
  q.padded_cols = blocks_per_row * BlockNvfp4::kBlockSize;
  q.row_bytes = blocks_per_row * static_cast<int64_t>(sizeof(BlockNvfp4));
  const int64_t bytes = rows * q.row_bytes;
  QF_ASSIGN_OR_RETURN(DeviceBuffer d_blocks, DeviceBuffer::allocate(bytes));
  launch_quantize_nvfp4({d_x.as<float>(), rows, cols, d_amax.as<uint32_t>(),
                         d_blocks.as<BlockNvfp4>(), d_scale.as<float>()},
                        nullptr);
  QF_CUDA_TRY(cudaGetLastError());
  q.data.resize(bytes);
  QF_CUDA_TRY(cudaMemcpy(q.data.data(), d_blocks.as<uint8_t>(), bytes, cudaMemcpyDeviceToHost));
  QF_CUDA_TRY(
      cudaMemcpy(&q.tensor_scale, d_scale.as<float>(), sizeof(float), cudaMemcpyDeviceToHost));
  return q;
}

}  // namespace qforge::cuda
