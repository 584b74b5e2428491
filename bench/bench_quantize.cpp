// Single-thread throughput of FP32 -> FP8 E4M3FN (per-tensor scale), INT4 g128 and NVFP4 on a
// 64 MiB buffer (far beyond L2), with ratio_vs_read = quantize B/s / the B/s of a plain read
// pass over the same buffer in the same run. Run: bin/bench_quantize --benchmark_repetitions=5

#undef HWY_TARGET_INCLUDE
// Resolved through the src/ include directory that bench/CMakeLists.txt adds (src/../bench/).
#define HWY_TARGET_INCLUDE "../bench/bench_quantize.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of x: [n] (n a multiple of 4 vectors): the cheapest pass that reads every byte.
float SumFloats(const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  for (size_t i = 0; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + N));
    s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/formats/quantize.h"

namespace qforge {
HWY_EXPORT(SumFloats);
namespace {

constexpr int64_t kFloats = int64_t{16} << 20;  // 64 MiB of FP32
constexpr double kBytes = static_cast<double>(kFloats) * sizeof(float);

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(static_cast<size_t>(kFloats));
    Rng rng(2024);
    for (float& f : v) f = static_cast<float>(0.02 * rng.normal());
    return v;
  }();
  return x;
}

float read_pass(const std::vector<float>& x) {
  return HWY_DYNAMIC_DISPATCH(SumFloats)(x.data(), x.size());
}

// Seconds of CPU time of the calling thread. Every pass is timed in thread CPU time rather than
// wall time so that preemption on a shared machine does not count against a kernel (memory
// traffic of other processes still does; run on a quiet machine for final numbers).
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Read bandwidth of this run, measured once before any benchmark and used as the denominator
// of every ratio: the best of 15 timed sum passes after 3 untimed ones (the bound: the fastest
// this machine streamed the buffer in this run; a median wanders with a busy neighbour).
double read_bytes_per_second() {
  static const double bw = [] {
    const std::vector<float>& x = input();
    for (int rep = 0; rep < 3; ++rep) benchmark::DoNotOptimize(read_pass(x));
    double best = 0;
    for (int rep = 0; rep < 15; ++rep) {
      const double t0 = thread_seconds();
      benchmark::DoNotOptimize(read_pass(x));
      best = std::max(best, kBytes / (thread_seconds() - t0));
    }
    return best;
  }();
  return bw;
}

// Times fn per iteration (manual time = thread CPU time), then reports input bytes/s and
// ratio_vs_read = (input bytes/s) / (read bytes/s of this run).
template <class Fn>
void run_timed(benchmark::State& state, const Fn& fn) {
  double seconds = 0;
  for (auto _ : state) {
    const double t0 = thread_seconds();
    fn();
    const double dt = thread_seconds() - t0;
    state.SetIterationTime(dt);
    seconds += dt;
  }
  const double bytes = static_cast<double>(state.iterations()) * kBytes;
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["ratio_vs_read"] = bytes / seconds / read_bytes_per_second();
}

void BM_ReadSumFp32(benchmark::State& state) {
  const std::vector<float>& x = input();
  run_timed(state, [&] { benchmark::DoNotOptimize(read_pass(x)); });
}
BENCHMARK(BM_ReadSumFp32)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_QuantizeRowFp8E4m3PerTensorScale(benchmark::State& state) {
  const std::vector<float>& x = input();
  std::vector<uint8_t> codes(static_cast<size_t>(kFloats));
  const float scale = row_amax(x.data(), kFloats) / 448.0f;
  run_timed(state, [&] {
    quantize_row_fp8(x.data(), kFloats, scale, ScalarFormat::E4M3FN, codes.data());
    benchmark::DoNotOptimize(codes.data());
  });
}
BENCHMARK(BM_QuantizeRowFp8E4m3PerTensorScale)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_QuantizeRowInt4G128(benchmark::State& state) {
  const std::vector<float>& x = input();
  std::vector<uint8_t> blocks(static_cast<size_t>(kFloats / 128 * int4_block_bytes(128)));
  run_timed(state, [&] {
    quantize_row_int4(x.data(), kFloats, 128, ScaleType::F16, blocks.data());
    benchmark::DoNotOptimize(blocks.data());
  });
}
BENCHMARK(BM_QuantizeRowInt4G128)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_QuantizeRowNvfp4(benchmark::State& state) {
  const std::vector<float>& x = input();
  std::vector<BlockNvfp4> blocks(static_cast<size_t>(kFloats / 16));
  const float s2 = nvfp4_tensor_scale(row_amax(x.data(), kFloats));
  run_timed(state, [&] {
    quantize_row_nvfp4(x.data(), kFloats, s2, blocks.data());
    benchmark::DoNotOptimize(blocks.data());
  });
}
BENCHMARK(BM_QuantizeRowNvfp4)->Unit(benchmark::kMillisecond)->UseManualTime();

// The whole-matrix API on one thread, [4096, 4096]: includes the validation / amax pass (a
// second read of the input for per-tensor scales) and the allocation of the result.
void BM_QuantizeMatrix(benchmark::State& state, QuantFormat format) {
  const std::vector<float>& x = input();
  set_num_threads(1);
  run_timed(state, [&] {
    auto q = quantize_matrix(x.data(), 4096, kFloats / 4096, default_quant_spec(format));
    benchmark::DoNotOptimize(q.ok());
  });
  set_num_threads(0);
}
BENCHMARK_CAPTURE(BM_QuantizeMatrix, fp8_per_tensor, QuantFormat::FP8_PER_TENSOR)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_QuantizeMatrix, int4_g128, QuantFormat::INT4_GROUP)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_QuantizeMatrix, nvfp4, QuantFormat::NVFP4)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

}  // namespace
}  // namespace qforge

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("simd_target", qforge::simd_dispatch_target_name());
  benchmark::AddCustomContext("read_GBps", std::to_string(qforge::read_bytes_per_second() / 1e9));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
#endif  // HWY_ONCE
