// GPU quantize throughput against the device's own copy bandwidth, measured in the same run.
// Ratio = (bytes the quantizer must move at minimum: FP32 read once + codes written) / time,
// over the device-to-device copy rate (bytes read + written). Prints a table last.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/quantize_cuda.h"
#include "qforge/core/rng.h"

namespace qforge::cuda {
namespace {

constexpr int kRepeats = 20;

// Median milliseconds of `kRepeats` runs of fn, after two warm-up runs, timed with events.
template <typename Fn>
float median_ms(Fn&& fn) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  fn();
  fn();
  std::vector<float> times;
  for (int i = 0; i < kRepeats; ++i) {
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int run() {
  auto info = device_info();
  if (!info.ok()) {
    std::fprintf(stderr, "bench_quantize_cuda: %s\n", info.error().to_string().c_str());
    return 1;
  }
  constexpr int64_t kRows = 16384;
  constexpr int64_t kCols = 16384;  // 256 Mi floats = 1 GiB, far beyond the 50 MB L2
  constexpr int64_t kN = kRows * kCols;
  auto x = DeviceBuffer::allocate(kN * sizeof(float));
  auto copy = DeviceBuffer::allocate(kN * sizeof(float));
  auto codes = DeviceBuffer::allocate(kN);
  auto blocks = DeviceBuffer::allocate(kN / 16 * sizeof(BlockNvfp4));
  auto amax = DeviceBuffer::allocate(sizeof(uint32_t));
  auto scale = DeviceBuffer::allocate(sizeof(float));
  if (!x.ok() || !copy.ok() || !codes.ok() || !blocks.ok() || !amax.ok() || !scale.ok()) {
    std::fprintf(stderr, "bench_quantize_cuda: device allocation failed\n");
    return 1;
  }
  // Real-looking weights (N(0, 0.02^2)): a 16 Mi-float host chunk tiled over the buffer.
  constexpr int64_t kChunk = int64_t{1} << 24;
  std::vector<float> host(kChunk);
  Rng rng(7);
  for (auto& v : host) v = 0.02f * static_cast<float>(rng.normal());
  for (int64_t off = 0; off < kN; off += kChunk) {
    cudaMemcpy(x->as<float>() + off, host.data(), kChunk * sizeof(float), cudaMemcpyHostToDevice);
  }

  const double gb = 1e9;
  const float copy_ms = median_ms([&] {
    cudaMemcpyAsync(copy->as<float>(), x->as<float>(), kN * sizeof(float),
                    cudaMemcpyDeviceToDevice);
  });
  const double copy_bw = 2.0 * kN * sizeof(float) / (copy_ms * 1e-3);  // read + write

  const float amax_ms = median_ms([&] {
    cudaMemsetAsync(amax->as<uint32_t>(), 0, sizeof(uint32_t));
    launch_amax({x->as<float>(), kN, amax->as<uint32_t>()}, nullptr);
  });
  const float fp8_only_ms = median_ms([&] {
    launch_quantize_fp8_per_tensor(
        {x->as<float>(), kN, amax->as<uint32_t>(), codes->as<uint8_t>(), scale->as<float>()},
        nullptr);
  });
  const float nvfp4_only_ms = median_ms([&] {
    launch_quantize_nvfp4({x->as<float>(), kRows, kCols, amax->as<uint32_t>(),
                           blocks->as<BlockNvfp4>(), scale->as<float>()},
                          nullptr);
  });
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) {
    std::fprintf(stderr, "bench_quantize_cuda: %s\n", cudaGetErrorString(err));
    return 1;
  }

  struct Row {
    const char* name;
    double ms;
    double moved_bytes;    // what the kernel(s) actually read + write
    double minimal_bytes;  // FP32 read once + output written once
  };
  const double in = 4.0 * kN;
  const Row rows[] = {
      {"d2d copy (bound)", copy_ms, 2 * in, 2 * in},
      {"amax pass", amax_ms, in, in},
      {"fp8 e4m3 quantize pass", fp8_only_ms, in + kN, in + kN},
      {"fp8 per-tensor (amax+quantize)", amax_ms + fp8_only_ms, 2 * in + kN, in + kN},
      {"nvfp4 quantize pass", nvfp4_only_ms, in + kN * 9.0 / 16, in + kN * 9.0 / 16},
      {"nvfp4 (amax+quantize)", amax_ms + nvfp4_only_ms, 2 * in + kN * 9.0 / 16,
       in + kN * 9.0 / 16},
  };
  std::printf("device: %s (sm_%d%d, %d SMs), tensor [%lld, %lld] fp32 = %.2f GB\n",
              info->name.c_str(), info->compute_major, info->compute_minor, info->multiprocessors,
              static_cast<long long>(kRows), static_cast<long long>(kCols), in / gb);
  std::printf("%-32s %9s %12s %14s\n", "kernel", "ms", "moved GB/s", "ratio vs copy");
  for (const Row& r : rows) {
    const double achieved = r.moved_bytes / (r.ms * 1e-3);
    const double effective = r.minimal_bytes / (r.ms * 1e-3);
    std::printf("%-32s %9.3f %12.1f %14.3f\n", r.name, r.ms, achieved / gb, effective / copy_bw);
  }
  return 0;
}

}  // namespace
}  // namespace qforge::cuda

int main() {
  return qforge::cuda::run();
}
