// `qforge bench --model M`: CPU prefill and decode tokens/s at batch 1, with the memory-bound
// decode limit measured in the same run (weight bytes per decode step / measured read bandwidth).
// `qforge bench --engine E|--model M --batch 1,8,32 --input-len N --output-len N`: the batched
// runtime (LLM + scheduler + paged KV cache) per batch size: prefill/decode tokens/s, time to
// first token, inter-token latency, peak RSS and the decode bound of each batch.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/core/simd.h"
#include "qforge/engine/engine.h"
#include "qforge/runtime/batch_bench.h"
#include "qforge/runtime/cpu_bench.h"
#include "qforge/runtime/llm.h"

namespace qforge::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string engine;
  std::vector<int64_t> batches;
  int64_t input_len = 128;
  int64_t output_len = 32;
  int64_t max_num_tokens = 0;
  int64_t block_size = 32;
  std::string kv_cache;
  bool deterministic = true;
  ForwardBenchOptions options;
  int threads = 0;
  int64_t bandwidth_mb = 1024;
  bool json = false;
};

void print_batch_bench(const BenchArgs& a, const LLM& llm, const BatchBenchResult& r) {
  if (a.json) {
    nlohmann::ordered_json j;
    j["engine"] = a.engine.empty() ? a.model : a.engine;
    j["threads"] = num_threads();
    j["simd_target"] = simd_dispatch_target_name();
    j["input_len"] = a.input_len;
    j["output_len"] = a.output_len;
    j["kv_cache"] = std::string(kv_cache_storage_name(llm.kv_cache_storage()));
    j["deterministic"] = a.deterministic;
    j["decode_weight_bytes"] = r.decode_weight_bytes;
    j["read_bandwidth_gbps"] = r.bandwidth.gbps;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["kv_pool_bytes"] = r.kv_pool_bytes;
    j["batches"] = nlohmann::ordered_json::array();
    for (const BatchBenchRow& row : r.rows) {
      nlohmann::ordered_json b;
      b["batch"] = row.batch;
      b["prefill_tokens_per_second"] = row.prefill_tokens_per_second;
      b["decode_tokens_per_second"] = row.decode_tokens_per_second;
      b["ttft_mean_ms"] = 1e3 * row.ttft_mean_s;
      b["ttft_max_ms"] = 1e3 * row.ttft_max_s;
      b["itl_mean_ms"] = 1e3 * row.itl_mean_s;
      b["decode_bound_tokens_per_second"] = row.decode_bound_tokens_per_second;
      b["decode_fraction_of_bound"] = row.decode_fraction_of_bound;
      b["steps"] = row.steps;
      j["batches"].push_back(b);
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  const ModelConfig& c = llm.model().config();
  std::printf("engine: %s (%s, %.3fB params, %s weights, KV cache %s, %s)\n",
              (a.engine.empty() ? a.model : a.engine).c_str(), c.model_type.c_str(),
              static_cast<double>(llm.model().parameter_count()) / 1e9,
              llm.model().lm_head().format_name().c_str(),
              std::string(kv_cache_storage_name(llm.kv_cache_storage())).c_str(),
              a.deterministic ? "deterministic" : "non-deterministic");
  std::printf("threads: %d, SIMD target: %s, prompts %lld tokens, %lld new tokens each\n",
              num_threads(), simd_dispatch_target_name().c_str(),
              static_cast<long long>(a.input_len), static_cast<long long>(a.output_len));
  std::printf("%6s %12s %12s %10s %10s %10s %12s %8s\n", "batch", "prefill t/s", "decode t/s",
              "TTFT ms", "TTFT max", "ITL ms", "bound t/s", "of bound");
  for (const BatchBenchRow& row : r.rows) {
    std::printf("%6lld %12.1f %12.2f %10.1f %10.1f %10.2f %12.2f %7.1f%%\n",
                static_cast<long long>(row.batch), row.prefill_tokens_per_second,
                row.decode_tokens_per_second, 1e3 * row.ttft_mean_s, 1e3 * row.ttft_max_s,
                1e3 * row.itl_mean_s, row.decode_bound_tokens_per_second,
                100 * row.decode_fraction_of_bound);
  }
  std::printf(
      "decode bound = batch / ((%.3f GB weights + batch x KV of one sequence) / %.2f GB/s read "
      "bandwidth)\n",
      static_cast<double>(r.decode_weight_bytes) / 1e9, r.bandwidth.gbps);
  std::printf("peak RSS: %.3f GB (KV pool %.3f GB reserved, %.1f KB per token)\n",
              static_cast<double>(r.peak_rss_bytes) / 1e9,
              static_cast<double>(r.kv_pool_bytes) / 1e9,
              static_cast<double>(r.kv_bytes_per_token) / 1e3);
}

void run_batch_bench_cli(BenchArgs& a) {
  if (a.batches.empty()) a.batches = {1, 8, 32};
  const int64_t max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  BuildConfig bc;
  bc.max_input_len = a.input_len;
  bc.max_seq_len = a.input_len + a.output_len;
  bc.max_batch_size = max_batch;
  // Default: every prompt of the largest batch prefilled in one step, so that the decode steps
  // that follow carry the whole batch (capped: activations grow with the step's tokens).
  bc.max_num_tokens = a.max_num_tokens > 0
                          ? a.max_num_tokens
                          : std::clamp<int64_t>(max_batch * a.input_len, a.input_len, 8192);
  bc.kv_cache_block_size = a.block_size;
  if (!a.kv_cache.empty()) bc.kv_cache_storage = value_or_fail(parse_kv_cache_storage(a.kv_cache));
  RuntimeOptions ro;
  ro.deterministic = a.deterministic;
  std::optional<LLM> llm;
  if (!a.engine.empty()) {
    Engine engine = value_or_fail(open_engine(a.engine, bc));
    // Runtime limits of the bench: enough sequences and pages for the largest batch.
    BuildConfig& e = engine.build_config;
    e.max_batch_size = std::max(e.max_batch_size, max_batch);
    e.kv_cache_blocks = 0;
    e.max_num_tokens = bc.max_num_tokens;
    if (bc.kv_cache_storage) engine.kv_cache_storage = *bc.kv_cache_storage;
    llm.emplace(value_or_fail(LLM::create(engine, ro)));
  } else {
    auto model = value_or_fail(Model::load(a.model));
    bc.precision = DType::F32;
    llm.emplace(value_or_fail(LLM::create(model, nullptr, bc, ro)));
  }
  BatchBenchOptions o;
  o.batches = a.batches;
  o.input_len = a.input_len;
  o.output_len = a.output_len;
  o.bandwidth_bytes = a.options.bandwidth_bytes;
  o.seed = a.options.seed;
  const BatchBenchResult r = value_or_fail(run_batch_bench(*llm, o));
  print_batch_bench(a, *llm, r);
}

void run_bench(BenchArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (a.bandwidth_mb < 1) throw CliFailure("--bandwidth-mb must be >= 1");
  a.options.bandwidth_bytes = static_cast<uint64_t>(a.bandwidth_mb) << 20;
  if (a.model.empty() == a.engine.empty()) {
    throw CliFailure("bench: give one of --model (a checkpoint) or --engine (an .engine file)");
  }
  if (!a.engine.empty() || !a.batches.empty()) return run_batch_bench_cli(a);
  auto model = value_or_fail(Model::load(a.model));
  const ModelConfig& c = model->config();
  const ForwardBenchResult r = value_or_fail(run_forward_bench(model, a.options));
  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = a.model;
    j["parameters"] = model->parameter_count();
    j["threads"] = num_threads();
    j["simd_target"] = simd_dispatch_target_name();
    j["prompt_tokens"] = a.options.prompt_tokens;
    j["decode_tokens"] = a.options.decode_tokens;
    j["prefill_tokens_per_second"] = r.prefill_tokens_per_second;
    j["decode_tokens_per_second"] = r.decode_tokens_per_second;
    j["decode_weight_bytes"] = r.decode_weight_bytes;
    j["read_bandwidth_gbps"] = r.bandwidth.gbps;
    j["decode_bound_tokens_per_second"] = r.decode_bound_tokens_per_second;
    j["decode_fraction_of_bound"] = r.decode_fraction_of_bound;
    j["weights_read_gbps"] = r.weights_read_gbps;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["weight_bytes"] = r.weight_bytes;
    j["kv_cache_bytes_used"] = r.kv_cache_bytes_used;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("model: %s (%s, %.3fB params, %s weights)\n", a.model.c_str(), c.model_type.c_str(),
              static_cast<double>(model->parameter_count()) / 1e9,
              model->lm_head().format_name().c_str());
  std::printf("threads: %d, SIMD target: %s\n", num_threads(), simd_dispatch_target_name().c_str());
  std::printf("prefill (%lld tokens, batch 1):  %9.1f tok/s\n",
              static_cast<long long>(a.options.prompt_tokens), r.prefill_tokens_per_second);
  std::printf("decode  (%lld tokens, batch 1):  %9.2f tok/s  (%.1f ms/token)\n",
              static_cast<long long>(a.options.decode_tokens), r.decode_tokens_per_second,
              r.decode_ms_per_token);
  std::printf(
      "memory-bound decode limit:       %9.2f tok/s  = %.2f GB/s read bandwidth / %.3f "
      "GB per token\n",
      r.decode_bound_tokens_per_second, r.bandwidth.gbps,
      static_cast<double>(r.decode_weight_bytes) / 1e9);
  std::printf(
      "decode / limit:                  %9.1f %%  (decode streams weights at %.2f GB/s; "
      "a read of the mmapped weights alone: %.2f GB/s)\n",
      100 * r.decode_fraction_of_bound, r.effective_decode_gbps, r.weights_read_gbps);
  const double budget = static_cast<double>(r.weight_bytes + r.kv_cache_bytes_used);
  std::printf(
      "peak RSS:                        %9.3f GB  = %.3f x (weights %.3f GB + KV cache "
      "%.4f GB)\n",
      static_cast<double>(r.peak_rss_bytes) / 1e9,
      budget > 0 ? static_cast<double>(r.peak_rss_bytes) / budget : 0.0,
      static_cast<double>(r.weight_bytes) / 1e9, static_cast<double>(r.kv_cache_bytes_used) / 1e9);
}

}  // namespace

static void register_bench(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("bench",
                         "CPU prefill/decode tokens/s (batch 1, or --batch sizes through the "
                         "batched runtime) and the memory-bound decode limit measured in the same "
                         "run");
  static BenchArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .safetensors, .gguf or llama2.c .bin");
  cmd->add_option("--engine", a.engine,
                  "Engine file (or a checkpoint directory, built and cached): batched runtime");
  cmd->add_option("--batch", a.batches, "Batch sizes of the batched runtime, e.g. 1,8,32")
      ->delimiter(',');
  cmd->add_option("--input-len", a.input_len, "Batched: prompt tokens per sequence (random ids)")
      ->capture_default_str();
  cmd->add_option("--output-len", a.output_len, "Batched: new tokens per sequence")
      ->capture_default_str();
  cmd->add_option("--max-num-tokens", a.max_num_tokens,
                  "Batched: tokens per step (default min(largest batch x input len, 8192))");
  cmd->add_option("--kv-cache", a.kv_cache, "Batched: KV storage f32|f16|bf16|fp8|int8");
  cmd->add_option("--kv-cache-block-size", a.block_size, "Batched: tokens per KV page")
      ->capture_default_str();
  cmd->add_flag("--deterministic,!--no-deterministic", a.deterministic,
                "Batched: batch-invariant logits (default: on)");
  cmd->add_option("--prompt-tokens", a.options.prompt_tokens, "Prefill length (random ids)")
      ->capture_default_str();
  cmd->add_option("--decode-tokens", a.options.decode_tokens, "Decode steps timed")
      ->capture_default_str();
  cmd->add_option("--repeats", a.options.repeats, "Runs of each phase (best reported)")
      ->capture_default_str();
  cmd->add_option("--bandwidth-mb", a.bandwidth_mb,
                  "Buffer streamed to measure the read bandwidth (well beyond the caches)")
      ->capture_default_str();
  cmd->add_option("--threads,-t", a.threads, "CPU threads (default: all cores)");
  cmd->add_flag("--json", a.json, "Print JSON");
  cmd->callback([] { run_bench(a); });
}

QF_REGISTER_COMMAND(60, register_bench);

}  // namespace qforge::cli
