// `qforge synth`: a deterministic synthetic checkpoint in Hugging Face layout (config.json +
// safetensors), in real model shapes, streamed tensor by tensor (a 70B preset needs no 140 GB of
// RAM). The built-in model for demos and benchmarks.
#include <cstdio>
#include <string>

#include "commands.h"
#include "qforge/core/progress.h"
#include "qforge/model/synthetic.h"

namespace qforge::cli {
namespace {

struct SynthArgs {
  std::string preset = "tiny";
  std::string dtype = "bf16";
  std::string output;
  SynthOptions options;
  bool list = false;
};

void run_synth(SynthArgs& a) {
  if (a.list) {
    for (const std::string& name : synthetic_preset_names()) {
      const ModelConfig c = value_or_fail(synthetic_preset(name));
      int64_t params = 0;
      for (const TensorSpec& t : model_tensor_specs(c)) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        params += n;
      }
      std::printf(
          "%-14s %-6s %8.3fB params  hidden %lld, %lld layers, %lld/%lld heads, vocab %lld\n",
          name.c_str(), c.model_type.c_str(), static_cast<double>(params) / 1e9,
          static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_hidden_layers),
          static_cast<long long>(c.num_attention_heads),
          static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.vocab_size));
    }
    return;
  }
  if (a.output.empty()) throw CliFailure("--output DIR is required (or --list)");
  a.options.dtype = value_or_fail(parse_dtype(a.dtype));
  const ModelConfig config = value_or_fail(synthetic_preset(a.preset));
  int64_t total_mb = 0;
  for (const TensorSpec& t : model_tensor_specs(config)) {
    int64_t n = dtype_size(a.options.dtype);
    for (int64_t d : t.shape) n *= d;
    total_mb += n;
  }
  total_mb = total_mb / (1 << 20) + 1;
  ProgressOptions po;
  po.unit = "MB";
  ProgressBar bar("synth " + a.preset, total_mb, po);
  ok_or_fail(write_synthetic_checkpoint(
      config, a.options, a.output,
      [&](int64_t, int64_t, uint64_t bytes) { bar.set(static_cast<int64_t>(bytes >> 20)); }));
  bar.finish();
  std::printf("wrote %s: preset %s, %s weights, seed %llu%s\n", a.output.c_str(), a.preset.c_str(),
              a.dtype.c_str(), static_cast<unsigned long long>(a.options.seed),
              a.options.outlier_channels > 0
                  ? fmt::format(", {} outlier channels", a.options.outlier_channels).c_str()
                  : "");
}

}  // namespace

static void register_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "synth",
      "Write a deterministic synthetic Llama-family checkpoint (HF layout) for demos and "
      "benchmarks");
  static SynthArgs a;
  cmd->add_option(
         "--preset", a.preset,
         "tiny, tiny-qwen2, tiny-qwen3, 1b, tinyllama-1.1b, llama-2-7b, llama-3-8b, llama-3-70b, "
         "qwen2.5-0.5b, qwen3-0.6b (see --list)")
      ->capture_default_str();
  cmd->add_option("--dtype", a.dtype, "Weight dtype: bf16, f16 or f32")->capture_default_str();
  cmd->add_option("--outlier-channels", a.options.outlier_channels,
                  "Hidden channels with 20x norm weights (activation outliers)")
      ->capture_default_str();
  cmd->add_option("--seed", a.options.seed, "Random seed (same seed, same bytes)")
      ->capture_default_str();
  cmd->add_option("--output,-o", a.output, "Output directory");
  cmd->add_flag("--list", a.list, "List the presets and exit");
  cmd->callback([] { run_synth(a); });
}

QF_REGISTER_COMMAND(55, register_synth);

}  // namespace qforge::cli
