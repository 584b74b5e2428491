// Max-abs reduction over a float array, as integer bit patterns: one pass yields both the amax
// and whether any element is Inf/NaN (their |bits| are >= 0x7F800000, above every finite value).
#include "backend/cuda/quantize_kernels.cuh"

namespace qforge::cuda {
namespace {

__global__ void amax_bits_kernel(const float* __restrict__ x, int64_t n, uint32_t* amax_bits) {
  uint32_t local = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t n4 = n / 4;
  // 16-byte loads when the base is aligned (cudaMalloc guarantees 256 B); the tail is scalar.
  const float4* x4 = reinterpret_cast<const float4*>(x);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += stride) {
    const float4 v = x4[i];
    local = max(local, __float_as_uint(v.x) & 0x7FFFFFFFu);
    local = max(local, __float_as_uint(v.y) & 0x7FFFFFFFu);
    local = max(local, __float_as_uint(v.z) & 0x7FFFFFFFu);
    local = max(local, __float_as_uint(v.w) & 0x7FFFFFFFu);
  }
  for (int64_t i = 4 * n4 + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    local = max(local, __float_as_uint(x[i]) & 0x7FFFFFFFu);
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    local = max(local, __shfl_xor_sync(0xFFFFFFFFu, local, offset));
  }
  __shared__ uint32_t warp_max[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) warp_max[warp] = local;
  __syncthreads();
  if (warp == 0) {
    local = lane < static_cast<int>(blockDim.x / 32) ? warp_max[lane] : 0;
    for (int offset = 16; offset > 0; offset /= 2) {
      local = max(local, __shfl_xor_sync(0xFFFFFFFFu, local, offset));
    }
    if (lane == 0) atomicMax(amax_bits, local);
  }
}

}  // namespace

void launch_amax(const AmaxParams& p, cudaStream_t stream) {
  constexpr int kThreads = 256;
  int device = 0;
  int sms = 1;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  // A few waves of blocks cover the array with grid-stride loops; more blocks only add atomics.
  const int64_t needed = (p.n / 4 + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(needed, 8 * sms)));
  amax_bits_kernel<<<blocks, kThreads, 0, stream>>>(p.x, p.n, p.amax_bits);
}

}  // namespace qforge::cuda
