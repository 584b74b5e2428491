// Single-threaded encoding throughput (MB/s of UTF-8 input) of each tokenizer kind on WikiText-2
// raw test (1.29 MB, encoded as one text, as the perplexity protocol does; BM_EncodePerLine*
// encode it line by line), with
// ratio_vs_sentencepiece = MB/s / libsentencepiece's MB/s on the same text in the same run
// (a peer measured alongside) and x_target = MB/s / 5 MB/s (the byte-level BPE target).
// Byte-level and tokenizer.json SentencePiece-style vocabularies are the 32,000-piece Llama-2
// vocabulary from the shared GGUF, exported with export_tokenizer_json (no vocab is committed).
// Run: QFORGE_SHARED_DIR=../shared build/<dir>/bin/bench_tokenizer [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "qforge/tokenizer/tokenizer.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

constexpr double kTargetBytesPerSecond = 5e6;

// $QFORGE_SHARED_DIR, else the first "shared" directory found walking up from the working
// directory (next to the checkout, as ../shared).
fs::path shared_dir() {
  if (const char* env = std::getenv("QFORGE_SHARED_DIR"); env != nullptr && *env != '\0')
    return env;
  for (fs::path p = fs::current_path(); !p.empty(); p = p.parent_path()) {
    if (fs::exists(p / "shared" / "models")) return p / "shared";
    if (fs::exists(p / ".." / "shared" / "models")) return p / ".." / "shared";
    if (p == p.root_path()) break;
  }
  return "../shared";
}

const std::string& wikitext() {
  static const std::string text = [] {
    const fs::path path = shared_dir() / "data" / "wikitext-2-raw" / "wiki.test.raw";
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (ss.str().empty()) {
      std::fprintf(stderr, "bench_tokenizer: cannot read %s (set QFORGE_SHARED_DIR)\n",
                   path.string().c_str());
      std::exit(1);
    }
    return ss.str();
  }();
  return text;
}

std::unique_ptr<Tokenizer> load(const fs::path& path) {
  auto t = load_tokenizer(path.string());
  if (!t.ok()) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", t.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(t).value();
}

const Tokenizer& llama2_gguf() {
  static const auto t =
      load(shared_dir() / "models" / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf");
  return *t;
}

const std::string& exported_json(TokenizerJsonStyle style) {
  static const std::string byte_level =
      export_tokenizer_json(llama2_gguf(), TokenizerJsonStyle::kByteLevelBpe).value();
  static const std::string spm =
      export_tokenizer_json(llama2_gguf(), TokenizerJsonStyle::kSentencePieceBpe).value();
  return style == TokenizerJsonStyle::kByteLevelBpe ? byte_level : spm;
}

std::unique_ptr<Tokenizer> parse_exported(TokenizerJsonStyle style) {
  auto t = parse_tokenizer_json(exported_json(style), "llama-2 vocabulary (exported)");
  if (!t.ok()) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", t.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(t).value();
}

double encode_seconds(const Tokenizer& t, size_t* n_tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ids = t.encode(wikitext(), true);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  if (!ids.ok()) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", ids.error().to_string().c_str());
    std::exit(1);
  }
  *n_tokens = ids->size();
  benchmark::DoNotOptimize(ids->data());
  return dt.count();
}

// libsentencepiece on llama-mix-16m's tokenizer.model: the peer every ratio is taken against,
// measured once before any benchmark (median of 5 runs after 1 untimed).
double sentencepiece_bytes_per_second() {
  static const double rate = [] {
    const auto t = load(shared_dir() / "models" / "llama-mix-16m" / "tokenizer.model");
    size_t n = 0;
    encode_seconds(*t, &n);
    std::vector<double> rates;
    for (int i = 0; i < 5; ++i) rates.push_back(wikitext().size() / encode_seconds(*t, &n));
    std::nth_element(rates.begin(), rates.begin() + 2, rates.end());
    return rates[2];
  }();
  return rate;
}

void run(benchmark::State& state, const Tokenizer& t) {
  double seconds = 0;
  size_t tokens = 0;
  for (auto _ : state) {
    const double dt = encode_seconds(t, &tokens);
    state.SetIterationTime(dt);
    seconds += dt;
  }
  const double bytes = static_cast<double>(state.iterations()) * wikitext().size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["ratio_vs_sentencepiece"] = bytes / seconds / sentencepiece_bytes_per_second();
  state.counters["x_target"] = bytes / seconds / kTargetBytesPerSecond;
}

// Byte-level BPE (GPT-2 regex + ByteLevel), steady state: the pre-token cache is warm.
void BM_EncodeHfByteLevel(benchmark::State& state) {
  static const auto t = parse_exported(TokenizerJsonStyle::kByteLevelBpe);
  size_t n = 0;
  encode_seconds(*t, &n);  // warm the cache
  run(state, *t);
}
BENCHMARK(BM_EncodeHfByteLevel)->Unit(benchmark::kMillisecond)->UseManualTime();

// Byte-level BPE, first pass: a fresh tokenizer (empty cache) per iteration.
void BM_EncodeHfByteLevelColdCache(benchmark::State& state) {
  double seconds = 0;
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto t = parse_exported(TokenizerJsonStyle::kByteLevelBpe);
    state.ResumeTiming();
    const double dt = encode_seconds(*t, &tokens);
    state.SetIterationTime(dt);
    seconds += dt;
  }
  const double bytes = static_cast<double>(state.iterations()) * wikitext().size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["ratio_vs_sentencepiece"] = bytes / seconds / sentencepiece_bytes_per_second();
  state.counters["x_target"] = bytes / seconds / kTargetBytesPerSecond;
}
BENCHMARK(BM_EncodeHfByteLevelColdCache)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(3);

// tokenizer.json SentencePiece-style BPE (Llama-2 layout: no pre-tokenizer, one word per text).
void BM_EncodeHfSentencePieceStyle(benchmark::State& state) {
  static const auto t = parse_exported(TokenizerJsonStyle::kSentencePieceBpe);
  run(state, *t);
}
BENCHMARK(BM_EncodeHfSentencePieceStyle)->Unit(benchmark::kMillisecond)->UseManualTime();

// libsentencepiece itself (llama-mix-16m tokenizer.model, 8,000 pieces).
void BM_EncodeSentencePieceModel(benchmark::State& state) {
  static const auto t = load(shared_dir() / "models" / "llama-mix-16m" / "tokenizer.model");
  run(state, *t);
}
BENCHMARK(BM_EncodeSentencePieceModel)->Unit(benchmark::kMillisecond)->UseManualTime();

// GGUF "llama" vocabulary (Llama-2, 32,000 pieces), SPM-style BPE by scores.
void BM_EncodeGgufLlama(benchmark::State& state) {
  run(state, llama2_gguf());
}
BENCHMARK(BM_EncodeGgufLlama)->Unit(benchmark::kMillisecond)->UseManualTime();

// The same text encoded line by line (2,891 non-empty lines), as a dataset loader would: a
// fairer view of libsentencepiece, whose BPE is slow on one long string.
void run_per_line(benchmark::State& state, const Tokenizer& t) {
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> out;
    std::istringstream in(wikitext());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }();
  double seconds = 0;
  size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::string& line : lines) {
      auto ids = t.encode(line, false);
      if (!ids.ok()) std::exit(1);
      tokens += ids->size();
      benchmark::DoNotOptimize(ids->data());
    }
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    state.SetIterationTime(dt.count());
    seconds += dt.count();
  }
  const double bytes = static_cast<double>(state.iterations()) * wikitext().size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["ratio_vs_sentencepiece"] = bytes / seconds / sentencepiece_bytes_per_second();
  state.counters["x_target"] = bytes / seconds / kTargetBytesPerSecond;
}

void BM_EncodePerLineHfByteLevel(benchmark::State& state) {
  static const auto t = parse_exported(TokenizerJsonStyle::kByteLevelBpe);
  run_per_line(state, *t);
}
BENCHMARK(BM_EncodePerLineHfByteLevel)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_EncodePerLineSentencePieceModel(benchmark::State& state) {
  static const auto t = load(shared_dir() / "models" / "llama-mix-16m" / "tokenizer.model");
  run_per_line(state, *t);
}
BENCHMARK(BM_EncodePerLineSentencePieceModel)->Unit(benchmark::kMillisecond)->UseManualTime();

// llama2.c tokenizer.bin (stories260K tok512.bin, 512 pieces: many merges per byte).
void BM_EncodeLlama2c(benchmark::State& state) {
  static const auto t = load(shared_dir() / "models" / "stories260K" / "tok512.bin");
  run(state, *t);
}
BENCHMARK(BM_EncodeLlama2c)->Unit(benchmark::kMillisecond)->UseManualTime();

}  // namespace
}  // namespace qforge

BENCHMARK_MAIN();
