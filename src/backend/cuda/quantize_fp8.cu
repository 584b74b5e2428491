// FP32 -> FP8 E4M3FN with one per-tensor scale (TensorRT-LLM/ModelOpt recipe, see
// src/formats/quantize_rows.h): scale = amax / 448, code = e4m3fn(x / scale, satfinite).
#include "backend/cuda/fp8_e2m1_device.cuh"
#include "backend/cuda/quantize_kernels.cuh"

namespace qforge::cuda {
namespace {

__device__ inline float fp8_scale_from_bits(const uint32_t* amax_bits) {
  // IEEE division (no fast-math in this target), as fp8_scale() does on the CPU.
  return __fdiv_rn(__uint_as_float(*amax_bits), 448.0f);
}

// Each thread converts 8 consecutive floats (two 16-byte loads) into one 8-byte store.
__global__ void quantize_fp8_kernel(const float* __restrict__ x, int64_t n,
                                    const uint32_t* __restrict__ amax_bits,
                                    uint8_t* __restrict__ codes, float* __restrict__ scale_out) {
  const float scale = fp8_scale_from_bits(amax_bits);
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  const bool zero = !(scale > 0.0f);
  const int64_t groups = n / 8;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += stride) {
    const float4 a = reinterpret_cast<const float4*>(x)[2 * g];
    const float4 b = reinterpret_cast<const float4*>(x)[2 * g + 1];
    const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      lo |= static_cast<uint32_t>(zero ? 0 : e4m3fn_from_float(__fdiv_rn(v[i], scale))) << (8 * i);
      hi |= static_cast<uint32_t>(zero ? 0 : e4m3fn_from_float(__fdiv_rn(v[i + 4], scale)))
            << (8 * i);
    }
    reinterpret_cast<uint2*>(codes)[g] = make_uint2(lo, hi);
  }
  for (int64_t i = 8 * groups + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    codes[i] = zero ? 0 : e4m3fn_from_float(__fdiv_rn(x[i], scale));
  }
}

}  // namespace

void launch_quantize_fp8_per_tensor(const QuantizeFp8Params& p, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t groups = std::max<int64_t>(1, (p.n + 7) / 8);
  const int blocks = static_cast<int>(std::min<int64_t>((groups + kThreads - 1) / kThreads, 65535));
  quantize_fp8_kernel<<<blocks, kThreads, 0, stream>>>(p.x, p.n, p.amax_bits, p.codes, p.scale);
}

}  // namespace qforge::cuda
