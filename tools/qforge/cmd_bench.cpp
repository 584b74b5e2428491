// `qforge bench --model M`: CPU prefill and decode tokens/s at batch 1, with the memory-bound
// decode limit measured in the same run (weight bytes per decode step / measured read bandwidth).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/core/simd.h"
#include "qforge/runtime/cpu_bench.h"

namespace qforge::cli {
namespace {

struct BenchArgs {
  std::string model;
  ForwardBenchOptions options;
  int threads = 0;
  int64_t bandwidth_mb = 1024;
  bool json = false;
};

void run_bench(BenchArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (a.bandwidth_mb < 1) throw CliFailure("--bandwidth-mb must be >= 1");
  a.options.bandwidth_bytes = static_cast<uint64_t>(a.bandwidth_mb) << 20;
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
                         "CPU prefill/decode tokens/s at batch 1 and the memory-bound decode limit "
                         "measured in the same run");
  static BenchArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
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
