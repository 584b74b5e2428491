// FP32 -> NVFP4 (ModelOpt/TensorRT-LLM two-level scaling, see src/formats/quantize_rows.h):
//   s2 = amax / (6 * 448); code_b = e4m3fn(amax_b / (6 * s2)); div_b = e4m3fn(code_b) * s2;
//   element = e2m1(x / div_b). One thread quantizes one 16-element block.
#include "backend/cuda/fp8_e2m1_device.cuh"
#include "backend/cuda/quantize_kernels.cuh"

namespace qforge::cuda {
namespace {

constexpr int kBlock = BlockNvfp4::kBlockSize;

__global__ void quantize_nvfp4_kernel(const float* __restrict__ x, int64_t rows, int64_t cols,
                                      const uint32_t* __restrict__ amax_bits,
                                      BlockNvfp4* __restrict__ blocks,
                                      float* __restrict__ tensor_scale_out) {
  const float s2 = __fdiv_rn(__uint_as_float(*amax_bits), 6.0f * 448.0f);
  if (blockIdx.x == 0 && threadIdx.x == 0) *tensor_scale_out = s2;
  const int64_t blocks_per_row = (cols + kBlock - 1) / kBlock;
  const int64_t total = rows * blocks_per_row;
  const bool vector_loads = cols % 4 == 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < total;
       b += stride) {
    const int64_t row = b / blocks_per_row;
    const int64_t col0 = (b % blocks_per_row) * kBlock;
    const float* src = x + row * cols + col0;
    float v[kBlock];
    if (vector_loads && col0 + kBlock <= cols) {
#pragma unroll
      for (int i = 0; i < kBlock / 4; ++i) {
        const float4 q = reinterpret_cast<const float4*>(src)[i];
        v[4 * i] = q.x;
        v[4 * i + 1] = q.y;
        v[4 * i + 2] = q.z;
        v[4 * i + 3] = q.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < kBlock; ++i) v[i] = col0 + i < cols ? src[i] : 0.0f;  // zero padding
    }
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < kBlock; ++i) amax = fmaxf(amax, fabsf(v[i]));

    uint8_t scale_code = 0;
    float divisor = 0.0f;
    if (s2 > 0.0f && amax > 0.0f) {
      scale_code = e4m3fn_from_float(__fdiv_rn(amax, __fmul_rn(6.0f, s2)));
      divisor = __fmul_rn(e4m3fn_to_float_device(scale_code), s2);
    }
    BlockNvfp4& out = blocks[b];
#pragma unroll
    for (int i = 0; i < kBlock / 2; ++i) {
      const uint8_t lo = divisor > 0.0f ? e2m1_from_float(__fdiv_rn(v[2 * i], divisor)) : 0;
      const uint8_t hi = divisor > 0.0f ? e2m1_from_float(__fdiv_rn(v[2 * i + 1], divisor)) : 0;
      out.qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
    out.scale_e4m3 = scale_code;
  }
}

}  // namespace

void launch_quantize_nvfp4(const QuantizeNvfp4Params& p, cudaStream_t stream) {
  constexpr int kThreads = 128;
  const int64_t total = std::max<int64_t>(1, p.rows * ((p.cols + kBlock - 1) / kBlock));
  const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535));
  quantize_nvfp4_kernel<<<blocks, kThreads, 0, stream>>>(p.x, p.rows, p.cols, p.amax_bits, p.blocks,
                                                         p.tensor_scale);
}

}  // namespace qforge::cuda
