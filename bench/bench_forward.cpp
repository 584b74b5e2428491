// Micro-benchmarks of the CPU forward-pass kernels at Llama-3.2-1B shapes: BF16/F16/F32 GEMV
// (decode; GB/s of weights streamed, with the plain read bandwidth of the same buffer size
// measured in the same run), the GEMV vs tiled-sgemm crossover for small batches (prefill), and
// decode attention over a KV cache. Run: bin/bench_forward --benchmark_filter=Gemv
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/vector_ops.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

// Weights: BF16 codes of small values from a cheap generator (hundreds of MB are filled per
// benchmark; the values only need to be finite and varied).
std::vector<uint16_t> random_bf16(int64_t n) {
  std::vector<uint16_t> v(static_cast<size_t>(n));
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (auto& x : v) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const float f = static_cast<float>(static_cast<int32_t>(state >> 40) - (1 << 23)) * 2.4e-9f;
    x = float_to_bf16(f);
  }
  return v;
}

std::vector<float> random_f32(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t state = 0xD1B54A32D192ED03ULL;
  for (auto& x : v) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<float>(static_cast<int32_t>(state >> 40) - (1 << 23)) * 1.2e-7f;
  }
  return v;
}

// The bound: one streaming read of a buffer of the same size, with the same threads.
void BM_ReadBandwidth(benchmark::State& state) {
  const int64_t bytes = state.range(0) << 20;
  std::vector<float> buf(static_cast<size_t>(bytes / 4), 1.0f);
  const int threads = num_threads();
  for (auto _ : state) {
    std::vector<float> partial(static_cast<size_t>(threads));
    parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = static_cast<int64_t>(buf.size());
        partial[t] = cpu::sum(buf.data() + n * t / threads, n / threads);
      }
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_ReadBandwidth)->Arg(256)->UseRealTime();

// Copies of a matrix cycled through so that the weights stream from DRAM, not the 32 MB L3.
constexpr int64_t kStreamBytes = int64_t{256} << 20;

// Decode GEMV: y = W x for one token, W BF16 [rows, cols].
void BM_GemvBf16(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const int64_t copies = std::max<int64_t>(1, kStreamBytes / (rows * cols * 2));
  const auto w = random_bf16(copies * rows * cols);
  const auto x = random_f32(cols);
  std::vector<float> y(static_cast<size_t>(rows));
  int64_t i = 0;
  for (auto _ : state) {
    const cpu::WeightView view{w.data() + (i++ % copies) * rows * cols, DType::BF16, rows, cols,
                               cols};
    cpu::matmul(view, x.data(), 1, y.data(), cpu::MatmulPath::kGemv);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 2);
}
BENCHMARK(BM_GemvBf16)
    ->Args({2048, 2048})
    ->Args({8192, 2048})
    ->Args({2048, 8192})
    ->Args({32768, 2048})
    ->UseRealTime();

void BM_GemvF32(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const int64_t copies = std::max<int64_t>(1, kStreamBytes / (rows * cols * 4));
  const auto w = random_f32(copies * rows * cols);
  const auto x = random_f32(cols);
  std::vector<float> y(static_cast<size_t>(rows));
  int64_t i = 0;
  for (auto _ : state) {
    const cpu::WeightView view{w.data() + (i++ % copies) * rows * cols, DType::F32, rows, cols,
                               cols};
    cpu::matmul(view, x.data(), 1, y.data(), cpu::MatmulPath::kGemv);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}
BENCHMARK(BM_GemvF32)->Args({8192, 2048})->UseRealTime();

// Batches: m rows of x through W BF16 [8192, 2048] (gate_proj of the 1B preset, weights from
// DRAM) by each path: 1 = GEMV, 2 = tiled GEMV, 3 = F32 tiles + OpenBLAS sgemm.
void BM_MatmulBf16Path(benchmark::State& state) {
  const int64_t m = state.range(0);
  const auto path = static_cast<cpu::MatmulPath>(state.range(1));
  const int64_t rows = 8192;
  const int64_t cols = 2048;
  const int64_t copies = std::max<int64_t>(1, kStreamBytes / (rows * cols * 2));
  const auto w = random_bf16(copies * rows * cols);
  const auto x = random_f32(m * cols);
  std::vector<float> y(static_cast<size_t>(m * rows));
  int64_t i = 0;
  for (auto _ : state) {
    const cpu::WeightView view{w.data() + (i++ % copies) * rows * cols, DType::BF16, rows, cols,
                               cols};
    cpu::matmul(view, x.data(), m, y.data(), path);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(static_cast<double>(2 * m * rows * cols),
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulBf16Path)
    ->ArgsProduct({{2, 4, 8, 16, 64, 256},
                   {static_cast<int>(cpu::MatmulPath::kGemv),
                    static_cast<int>(cpu::MatmulPath::kTiled),
                    static_cast<int>(cpu::MatmulPath::kSgemm)}})
    ->UseRealTime();

// Decode attention: one token, 32 heads / 8 KV heads, head_dim 64, over `ctx` cached keys.
void BM_AttentionDecode(benchmark::State& state) {
  const int64_t ctx = state.range(0);
  const int64_t heads = 32;
  const int64_t kv_heads = 8;
  const int64_t hd = 64;
  const auto q = random_f32(heads * hd);
  const auto k = random_f32(kv_heads * ctx * hd);
  const auto v = random_f32(kv_heads * ctx * hd);
  std::vector<float> out(static_cast<size_t>(heads * hd));
  cpu::AttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.n_tokens = 1;
  p.n_heads = heads;
  p.n_kv_heads = kv_heads;
  p.head_dim = hd;
  p.capacity = ctx;
  p.pos0 = ctx - 1;
  p.scale = 0.125f;
  for (auto _ : state) {
    cpu::attention(p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * kv_heads * ctx * hd * 4);
}
BENCHMARK(BM_AttentionDecode)->Arg(512)->Arg(4096)->UseRealTime();

}  // namespace
}  // namespace qforge

BENCHMARK_MAIN();
