// `qforge build`: a checkpoint (HF directory, quantized ModelOpt / compressed-tensors checkpoint)
// -> one .engine file with every weight prepacked for the CPU kernels, the kernel variant per
// layer shape chosen by timing, the tokenizer, the build config and checksums.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "qforge/core/progress.h"
#include "qforge/engine/engine.h"

namespace qforge::cli {
namespace {

struct BuildArgs {
  std::string checkpoint;
  std::string output;
  std::string precision = "float16";
  std::string kv_cache;
  BuildConfig config;
  bool no_kernel_selection = false;
  double memory_gb = 0;
  bool verbose = false;
};

void run_build(BuildArgs& a) {
  BuildConfig c = a.config;
  c.precision = value_or_fail(parse_dtype(a.precision));
  if (!a.kv_cache.empty()) c.kv_cache_storage = value_or_fail(parse_kv_cache_storage(a.kv_cache));
  c.kernel_selection = !a.no_kernel_selection;
  if (a.memory_gb < 0) throw CliFailure("--memory-gb must be >= 0");
  c.memory_budget_bytes = static_cast<uint64_t>(a.memory_gb * 1e9);
  ok_or_fail(validate_build_config(c));
  std::unique_ptr<ProgressBar> bar;
  BuildProgress progress;
  progress.on_step = [&](int64_t done, int64_t total, const std::string&) {
    if (!bar) bar = std::make_unique<ProgressBar>("build " + a.checkpoint, total);
    bar->set(done);
  };
  const EngineBuildReport r = value_or_fail(build_engine(a.checkpoint, c, a.output, progress));
  if (bar) bar->finish();
  if (a.verbose) {
    for (const std::string& line : r.kernel_choices) std::printf("kernel %s\n", line.c_str());
  }
  std::printf("wrote %s: %.1f MiB in %.1f s (%zu kernel selections; -v lists them)\n",
              a.output.c_str(), static_cast<double>(r.file_bytes) / (1 << 20), r.seconds,
              r.kernel_choices.size());
}

}  // namespace

static void register_build(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "build",
      "Build an engine: pack a checkpoint's weights for the CPU kernels into one checksummed, "
      "mmap-able .engine file");
  static BuildArgs a;
  cmd->add_option("--checkpoint", a.checkpoint,
                  "Hugging Face checkpoint directory (unquantized, or from qforge quantize / "
                  "ModelOpt / compressed-tensors)")
      ->required();
  cmd->add_option("--output,-o", a.output, "Engine file to write (e.g. model.engine)")->required();
  cmd->add_option("--max-input-len", a.config.max_input_len, "Longest prompt in tokens")
      ->capture_default_str();
  cmd->add_option("--max-seq-len", a.config.max_seq_len,
                  "Longest sequence (prompt + generated tokens)")
      ->capture_default_str();
  cmd->add_option("--max-batch-size", a.config.max_batch_size,
                  "Sequences decoded together (more requests are queued)")
      ->capture_default_str();
  cmd->add_option("--max-num-tokens", a.config.max_num_tokens,
                  "Tokens per forward step over all sequences (0 = max(max-input-len, "
                  "max-batch-size))")
      ->capture_default_str();
  cmd->add_option("--precision", a.precision,
                  "Unquantized weights and activations: float32, float16 or bfloat16 (the CPU "
                  "computes in F32)")
      ->capture_default_str();
  cmd->add_option("--kv-cache", a.kv_cache,
                  "KV-cache element type: f32, f16, bf16, fp8, int8 (default: the checkpoint's "
                  "calibrated FP8/INT8 cache, else the precision)");
  cmd->add_option("--kv-cache-block-size", a.config.kv_cache_block_size,
                  "Tokens per KV-cache page (a power of two)")
      ->capture_default_str();
  cmd->add_option("--kv-cache-blocks", a.config.kv_cache_blocks,
                  "Pages in the KV pool (0 = max-batch-size sequences of max-seq-len)")
      ->capture_default_str();
  cmd->add_option("--memory-gb", a.memory_gb,
                  "Memory the engine may fill (weights + KV pool + workspace), 1 GB = 1e9 bytes; "
                  "0 = this machine's RAM. Limits that do not fit are refused, saying by how much")
      ->capture_default_str();
  cmd->add_flag("--no-kernel-selection", a.no_kernel_selection,
                "Take each layer's first candidate kernel instead of timing them");
  cmd->add_flag("-v,--verbose", a.verbose, "List the kernel chosen per layer shape with timings");
  cmd->callback([] { run_build(a); });
}

QF_REGISTER_COMMAND(37, register_build);

}  // namespace qforge::cli
