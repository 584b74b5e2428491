// Parsers on huge-but-valid hostile inputs (issue 15, causes 8 and 9), 10^6 entries each: one
// JSON object with 10^6 members (safetensors header of zero-size tensors, config.json, shard
// index with 10^6 metadata objects) and a GGUF with 10^6 zero-size tensors. Each must run in
// under 2 s (the JSON parser was quadratic: 80k members took 76 s).
//   build/<dir>/bin/bench_hostile_parsers --benchmark_min_time=0.01
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "../tests/io/hostile_scale.h"
#include "io/hf_index.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_config.h"
#include "qforge/io/safetensors.h"

namespace {

constexpr int64_t kEntries = 1'000'000;

void BM_SafetensorsHeaderMillionTensors(benchmark::State& state) {
  const auto bytes = qforge::hostile_scale::safetensors_zero_tensors(kEntries);
  for (auto _ : state) {
    auto h = qforge::parse_safetensors_header(bytes, "million.safetensors");
    if (!h.ok() || h->tensors.size() != static_cast<size_t>(kEntries)) {
      state.SkipWithError("parse failed");
    }
  }
  state.counters["entries"] = static_cast<double>(kEntries);
}

void BM_ConfigMillionMembers(benchmark::State& state) {
  const std::string json = qforge::hostile_scale::config_with_members(kEntries);
  for (auto _ : state) {
    if (!qforge::parse_hf_config(json, "config.json").ok()) state.SkipWithError("parse failed");
  }
}

void BM_IndexMillionEntries(benchmark::State& state) {
  const auto path = std::filesystem::temp_directory_path() / "qforge_bench_million.index.json";
  std::ofstream(path) << qforge::hostile_scale::index_with_entries(kEntries);
  for (auto _ : state) {
    auto m = qforge::io_detail::read_shard_index(path);
    if (!m.ok() || m->size() != static_cast<size_t>(kEntries)) state.SkipWithError("failed");
  }
  std::filesystem::remove(path);
}

void BM_GgufMillionZeroSizeTensors(benchmark::State& state) {
  const auto bytes = qforge::hostile_scale::gguf_zero_tensors(kEntries);
  for (auto _ : state) {
    auto g = qforge::GgufFile::parse(bytes, "million.gguf", nullptr);
    if (!g.ok()) state.SkipWithError(g.error().message().c_str());
  }
}

BENCHMARK(BM_SafetensorsHeaderMillionTensors)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_ConfigMillionMembers)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_IndexMillionEntries)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_GgufMillionZeroSizeTensors)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
