// Packed-weight linear layers (engine/packed_linear.h) on a synthetic 1.1B-Llama decoder layer
// (TinyLlama shapes: q/o 2048x2048, k/v 256x2048, gate/up 5632x2048, down 2048x5632), per
// weight format, with the bounds measured in the same run:
//   BM_Decode/<fmt>      m = 1 over enough layers (>= 256 MiB packed) to stream from DRAM:
//                        packed GB/s, read_GBps of a plain read pass over an equal anonymous
//                        buffer, ratio = GB/s / read_GBps, tok_s (one pass of all 22 layers'
//                        bytes at that speed), x_bf16 (speed-up over the dense BF16 decode).
//   BM_Decode8/<fmt>     m = 8: batch_gain = tokens/s at batch 8 / tokens/s at batch 1.
//   BM_Prefill/<fmt>     m = 64 on one layer: GFLOP/s, peak = FMA-only loop on all threads,
//                        ratio = GFLOP/s / peak, x_bf16 (over the BF16 prefill).
//   BM_MmapRead/<mode>   the read probe on a mmapped file: plain, MAP_POPULATE, MADV_HUGEPAGE,
//                        MADV_WILLNEED, MADV_SEQUENTIAL, first and second pass, vs anonymous.
//   BM_DecodePrefetch/<fmt>/<bytes>  software prefetch distance sweep of the decode GEMV.
// Every figure is the best of the iterations (the 2-core machine is shared; the best run is the
// least disturbed). Run: bin/bench_qmatmul (QFORGE_NUM_THREADS=2 by default: all cores).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../bench/bench_qmatmul.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Reads every byte of p: [n] (a multiple of 256 bytes).
float SumBytes(const uint8_t* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto* x = reinterpret_cast<const float*>(p);
  const size_t nf = n / 4;
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  for (size_t i = 0; i + 4 * N <= nf; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + N));
    s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

// FMA-only loop: 12 independent accumulators (FMA latency x throughput on current cores);
// returns the flops done (2 per lane per FMA).
double FmaPeakLoop(int64_t iters) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  V a[12];
  for (int i = 0; i < 12; ++i) a[i] = hn::Set(d, 1.0f + i * 1e-3f);
  const V m = hn::Set(d, 0.999999f), c = hn::Set(d, 1e-7f);
  for (int64_t t = 0; t < iters; ++t) {
    for (int i = 0; i < 12; ++i) a[i] = hn::MulAdd(a[i], m, c);
  }
  V s = a[0];
  for (int i = 1; i < 12; ++i) s = hn::Add(s, a[i]);
  volatile float sink = hn::GetLane(s);
  (void)sink;
  return 2.0 * 12.0 * static_cast<double>(hn::Lanes(d)) * static_cast<double>(iters);
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/qmatmul.h"
#include "hwy/aligned_allocator.h"
#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/engine/packed_linear.h"
#include "qforge/formats/quantize.h"

namespace qforge {
HWY_EXPORT(SumBytes);
HWY_EXPORT(FmaPeakLoop);
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Format {
  const char* name;
  QuantAlgo algo;
  bool zero_point = false;
  DType dense = DType::BF16;  // NO_QUANT only
};

const std::vector<Format> kFormats = {
    {"bf16", QuantAlgo::NO_QUANT, false, DType::BF16},
    {"f16", QuantAlgo::NO_QUANT, false, DType::F16},
    {"int8_wo", QuantAlgo::W8A16},
    {"fp8", QuantAlgo::FP8},
    {"fp8_pc_pt", QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN},
    {"fp8_pb_wo", QuantAlgo::FP8_BLOCK_SCALES},
    {"int4_g128", QuantAlgo::W4A16},
    {"int4_g128_zp", QuantAlgo::W4A16, true},
    {"w4a8_awq", QuantAlgo::W4A8_AWQ},
    {"nvfp4", QuantAlgo::NVFP4},
    {"mxfp4", QuantAlgo::W4A16_MXFP4},
    {"w4a8_mxfp4_fp8", QuantAlgo::W4A8_MXFP4_FP8},
    {"int8_sq", QuantAlgo::W8A8_SQ_PER_CHANNEL},
    {"int8_sq_pt", QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN},
};

struct LayerShape {
  int64_t rows, cols;
};
// One TinyLlama-1.1B decoder layer; 22 of them make the model.
const std::vector<LayerShape> kLayer = {{2048, 2048}, {256, 2048},  {256, 2048}, {2048, 2048},
                                        {5632, 2048}, {5632, 2048}, {2048, 5632}};
constexpr int kModelLayers = 22;

// One packed linear per layer shape (blob bytes kept), quantized from N(0, 0.02) weights.
struct PackedLayer {
  std::vector<PackedLinear> linears;
  uint64_t bytes = 0;
};

PackedLayer pack_layer(const Format& f) {
  PackedLayer out;
  QuantConfig qc;
  qc.has_zero_point = f.zero_point;
  std::map<std::pair<int64_t, int64_t>, PackedLinear> cache;
  for (const LayerShape& s : kLayer) {
    auto key = std::make_pair(s.rows, s.cols);
    if (!cache.count(key)) {
      Rng rng(static_cast<uint64_t>(s.rows * 31 + s.cols));
      std::vector<float> w(static_cast<size_t>(s.rows * s.cols));
      for (float& v : w) v = static_cast<float>(0.02 * rng.normal());
      PackedLinear p;
      if (f.algo == QuantAlgo::NO_QUANT) {
        auto view =
            TensorView::make(static_cast<const void*>(w.data()), DType::F32, Shape{s.rows, s.cols})
                .value();
        p = pack_dense_linear(view, f.dense).value();
      } else {
        QuantizedLinear q;
        q.scheme = scheme_for_algo(f.algo, qc).value();
        q.weight = quantize_matrix(w.data(), s.rows, s.cols, q.scheme.weight).value();
        const float amax = 4.0f;
        if (q.scheme.activation == ActivationQuant::kFp8PerTensor) q.input_scale = amax / 448.0f;
        if (q.scheme.activation == ActivationQuant::kInt8PerTensor) q.input_scale = amax / 127.0f;
        if (q.scheme.activation == ActivationQuant::kNvfp4) q.input_scale = amax / (6 * 448.0f);
        const auto cands = packed_linear_candidates(q.scheme, s.rows, s.cols);
        p = pack_linear(q, cands.front()).value();
      }
      cache.emplace(key, std::move(p));
    }
    out.linears.push_back(cache.at(key));
    out.bytes += out.linears.back().blob.size();
  }
  return out;
}

// `copies` layers of packed blobs in distinct 64-byte aligned buffers, opened.
struct Model {
  std::vector<hwy::AlignedFreeUniquePtr<uint8_t[]>> buffers;
  std::vector<std::unique_ptr<WeightMatrix>> matrices;
  uint64_t bytes = 0;  // bytes the matmuls read (storage_bytes)
  uint64_t layer_bytes = 0;
};

Model build_model(const PackedLayer& layer, int copies) {
  Model m;
  for (int c = 0; c < copies; ++c) {
    for (const PackedLinear& p : layer.linears) {
      auto buf = hwy::AllocateAligned<uint8_t>(p.blob.size());
      std::memcpy(buf.get(), p.blob.data(), p.blob.size());
      m.matrices.push_back(open_packed_linear(p.info, {buf.get(), p.blob.size()}, nullptr).value());
      m.bytes += m.matrices.back()->storage_bytes();
      m.buffers.push_back(std::move(buf));
    }
  }
  m.layer_bytes = m.bytes / copies;
  return m;
}

// Bytes each decode pass streams: beyond every last-level cache (default 1 GiB;
// QFORGE_BENCH_STREAM_MB overrides).
const uint64_t kStreamBytes = [] {
  const char* env = std::getenv("QFORGE_BENCH_STREAM_MB");
  const uint64_t mb = env != nullptr ? std::strtoull(env, nullptr, 10) : 1024;
  return std::max<uint64_t>(mb, 16) << 20;
}();

int copies_for_stream(uint64_t layer_bytes) {
  return static_cast<int>(std::max<uint64_t>(1, (kStreamBytes + layer_bytes - 1) / layer_bytes));
}

// Read bandwidth over p: [n] split over the threads, best of `reps` passes (GB/s).
double read_gbps(const uint8_t* p, uint64_t n, int reps) {
  double best = 0;
  const int64_t chunks = 64;
  const uint64_t chunk = n / chunks / 256 * 256;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
      float s = 0;
      for (int64_t c = b; c < e; ++c) s += HWY_DYNAMIC_DISPATCH(SumBytes)(p + c * chunk, chunk);
      benchmark::DoNotOptimize(s);
    });
    best = std::max(best, static_cast<double>(chunk * chunks) / seconds_since(t0) / 1e9);
  }
  return best;
}

double anonymous_read_gbps(uint64_t n) {
  static std::map<uint64_t, double> cache;
  if (auto it = cache.find(n); it != cache.end()) return it->second;
  auto buf = hwy::AllocateAligned<uint8_t>(n);
  std::memset(buf.get(), 1, n);
  return cache[n] = read_gbps(buf.get(), n, 5);
}

double fma_peak_gflops() {
  static double peak = [] {
    double best = 0;
    const int threads = num_threads();
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      std::vector<double> flops(static_cast<size_t>(threads));
      parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) flops[t] = HWY_DYNAMIC_DISPATCH(FmaPeakLoop)(20'000'000);
      });
      double total = 0;
      for (double f : flops) total += f;
      best = std::max(best, total / seconds_since(t0) / 1e9);
    }
    return best;
  }();
  return peak;
}

// Best time of one pass over every matrix with m x rows.
double best_pass_seconds(benchmark::State& state, const Model& model, int64_t m) {
  int64_t max_cols = 0, max_rows = 0;
  for (const auto& w : model.matrices) {
    max_cols = std::max(max_cols, w->cols());
    max_rows = std::max(max_rows, w->rows());
  }
  std::vector<float> x(static_cast<size_t>(m * max_cols)), y(static_cast<size_t>(m * max_rows));
  Rng rng(1);
  for (float& v : x) v = static_cast<float>(rng.normal());
  double best = 1e30;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (const auto& w : model.matrices) w->matmul(x.data(), m, y.data());
    best = std::min(best, seconds_since(t0));
    benchmark::DoNotOptimize(y.data());
  }
  return best;
}

std::map<std::string, double>& results() {
  static std::map<std::string, double> r;
  return r;
}

void BM_Decode(benchmark::State& state, Format f) {
  const PackedLayer layer = pack_layer(f);
  const Model model = build_model(layer, copies_for_stream(layer.bytes));
  const double t = best_pass_seconds(state, model, 1);
  const double gbps = static_cast<double>(model.bytes) / t / 1e9;
  const double bound = anonymous_read_gbps(model.bytes);
  results()[std::string("decode_") + f.name] = gbps / model.layer_bytes;  // layers per second
  state.counters["GBps"] = gbps;
  state.counters["read_GBps"] = bound;
  state.counters["ratio"] = gbps / bound;
  state.counters["MB_layer"] = model.layer_bytes / 1e6;
  state.counters["tok_s"] = gbps * 1e9 / (model.layer_bytes * double{kModelLayers});
  if (auto it = results().find("decode_bf16"); it != results().end()) {
    state.counters["x_bf16"] = results()[std::string("decode_") + f.name] / it->second;
  }
  state.SetLabel(simd_dispatch_target_name());
}

void BM_Decode8(benchmark::State& state, Format f) {
  const PackedLayer layer = pack_layer(f);
  const Model model = build_model(layer, copies_for_stream(layer.bytes));
  const double t8 = best_pass_seconds(state, model, 8);
  const double gbps = static_cast<double>(model.bytes) / t8 / 1e9;
  state.counters["tok_s"] = 8 * gbps * 1e9 / (model.layer_bytes * double{kModelLayers});
  if (auto it = results().find(std::string("decode_") + f.name); it != results().end()) {
    // tokens/s at batch 8 over tokens/s at batch 1 (passes/s x 8 / passes/s).
    state.counters["batch_gain"] = 8.0 * (gbps / model.layer_bytes) / it->second;
  }
}

void BM_Prefill(benchmark::State& state, Format f) {
  const PackedLayer layer = pack_layer(f);
  const Model model = build_model(layer, 1);
  const int64_t m = 64;
  const double t = best_pass_seconds(state, model, m);
  double flops = 0;
  for (const auto& w : model.matrices) flops += 2.0 * m * w->rows() * w->cols();
  const double gflops = flops / t / 1e9;
  const double peak = fma_peak_gflops();
  results()[std::string("prefill_") + f.name] = gflops;
  state.counters["GFLOPs"] = gflops;
  state.counters["peak"] = peak;
  state.counters["ratio"] = gflops / peak;
  if (auto it = results().find("prefill_bf16"); it != results().end()) {
    state.counters["x_bf16"] = gflops / it->second;
  }
}

// The decoder's compute roof: m = 1 on a [256, 2048] matrix that stays in L2, one thread.
void BM_DecodeInCache(benchmark::State& state, Format f) {
  PackedLayer layer = pack_layer(f);
  PackedLayer small;
  small.linears.push_back(layer.linears[1]);  // [256, 2048]
  small.bytes = small.linears[0].blob.size();
  const Model model = build_model(small, 1);
  set_num_threads(1);
  std::vector<float> x(2048, 0.5f), y(256);
  double best = 1e30;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (int r = 0; r < 50; ++r) model.matrices[0]->matmul(x.data(), 1, y.data());
    best = std::min(best, seconds_since(t0) / 50);
  }
  set_num_threads(0);
  state.counters["GBps_1thread"] = static_cast<double>(model.bytes) / best / 1e9;
  state.counters["weights_per_ns"] = 256.0 * 2048 / best / 1e9;
}

void BM_DecodePrefetch(benchmark::State& state, Format f) {
  cpu::qmatmul_set_prefetch_bytes(state.range(0));
  const PackedLayer layer = pack_layer(f);
  const Model model = build_model(layer, copies_for_stream(layer.bytes));
  const double t = best_pass_seconds(state, model, 1);
  const double gbps = static_cast<double>(model.bytes) / t / 1e9;
  state.counters["GBps"] = gbps;
  state.counters["ratio"] = gbps / anonymous_read_gbps(model.bytes);
  cpu::qmatmul_set_prefetch_bytes(cpu::kDefaultPrefetchBytes);
}

// The read probe on a mmapped file of kStreamBytes (written once, then in the page cache).
enum MmapMode { kPlain, kPopulate, kHugepage, kWillneed, kSequential, kAnonHuge };

void BM_MmapRead(benchmark::State& state) {
  const auto mode = static_cast<MmapMode>(state.range(0));
  const uint64_t n = kStreamBytes;
  const std::string path = "/tmp/qforge_bench_qmatmul.bin";
  static bool written = false;
  if (!written) {
    std::vector<uint8_t> chunk(1 << 20, 1);
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    for (uint64_t off = 0; off < n; off += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) break;
    }
    ::close(fd);
    written = true;
  }
  double first = 0, second = 0;
  for (auto _ : state) {
    const uint8_t* p = nullptr;
    void* addr = nullptr;
    if (mode == kAnonHuge) {
      addr = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ::madvise(addr, n, MADV_HUGEPAGE);
      const int fd = ::open(path.c_str(), O_RDONLY);
      for (uint64_t off = 0; off < n;) {
        const ssize_t r = ::pread(fd, static_cast<uint8_t*>(addr) + off, n - off, off);
        if (r <= 0) break;
        off += r;
      }
      ::close(fd);
    } else {
      const int fd = ::open(path.c_str(), O_RDONLY);
      addr = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | (mode == kPopulate ? MAP_POPULATE : 0), fd,
                    0);
      ::close(fd);
      if (mode == kHugepage) ::madvise(addr, n, MADV_HUGEPAGE);
      if (mode == kWillneed) ::madvise(addr, n, MADV_WILLNEED);
      if (mode == kSequential) ::madvise(addr, n, MADV_SEQUENTIAL);
    }
    p = static_cast<const uint8_t*>(addr);
    first = std::max(first, read_gbps(p, n, 1));
    second = std::max(second, read_gbps(p, n, 3));
    ::munmap(addr, n);
  }
  state.counters["first_GBps"] = first;
  state.counters["warm_GBps"] = second;
  state.counters["anon_GBps"] = anonymous_read_gbps(n);
}

void register_all() {
  for (const Format& f : kFormats) {
    benchmark::RegisterBenchmark((std::string("BM_Decode/") + f.name).c_str(), BM_Decode, f)
        ->Iterations(5)
        ->Unit(benchmark::kMillisecond);
  }
  for (const Format& f : kFormats) {
    if (std::string(f.name) != "bf16" && std::string(f.name) != "int4_g128" &&
        std::string(f.name) != "fp8" && std::string(f.name) != "int8_wo") {
      continue;
    }
    benchmark::RegisterBenchmark((std::string("BM_Decode8/") + f.name).c_str(), BM_Decode8, f)
        ->Iterations(5)
        ->Unit(benchmark::kMillisecond);
  }
  for (const Format& f : kFormats) {
    benchmark::RegisterBenchmark((std::string("BM_Prefill/") + f.name).c_str(), BM_Prefill, f)
        ->Iterations(3)
        ->Unit(benchmark::kMillisecond);
  }
  for (const Format& f : kFormats) {
    benchmark::RegisterBenchmark((std::string("BM_DecodeInCache/") + f.name).c_str(),
                                 BM_DecodeInCache, f)
        ->Iterations(20)
        ->Unit(benchmark::kMicrosecond);
  }
  for (const Format& f : {kFormats[0], kFormats[6]}) {
    benchmark::RegisterBenchmark((std::string("BM_DecodePrefetch/") + f.name).c_str(),
                                 BM_DecodePrefetch, f)
        ->Arg(0)
        ->Arg(256)
        ->Arg(512)
        ->Arg(1024)
        ->Arg(2048)
        ->Arg(4096)
        ->Iterations(5)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("BM_MmapRead", BM_MmapRead)
      ->ArgName("mode")
      ->DenseRange(kPlain, kAnonHuge)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace qforge

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  qforge::register_all();
  benchmark::AddCustomContext("simd_target", qforge::simd_dispatch_target_name());
  benchmark::AddCustomContext("threads", std::to_string(qforge::num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  ::unlink("/tmp/qforge_bench_qmatmul.bin");
  return 0;
}
#endif  // HWY_ONCE
