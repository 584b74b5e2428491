// `qforge quantize`: post-training quantization of a Hugging Face model directory into a
// quantized checkpoint (ModelOpt/TensorRT-LLM layout by default, or compressed-tensors), with a
// progress bar per block and a per-layer summary table at the end.
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/quant/quantize.h"
#include "table.h"

namespace qforge::cli {
namespace {

struct QuantizeArgs {
  QuantizeOptions options;
  std::string qformat = "fp8";
  std::string kv_cache = "none";
  std::string export_format = "modelopt";
  std::vector<std::string> exclude;
  std::vector<std::string> overrides;  // PATTERN=QFORMAT
  std::vector<std::string> auto_candidates;
  double max_memory_mb = 0;
  bool quiet = false;
  bool per_head_kv = false;
  int group_size = 128;
  std::string awq_duo = "on";
};

QuantAlgo parse_kv(const std::string& text) {
  if (text == "none" || text == "f32" || text.empty()) return QuantAlgo::NO_QUANT;
  if (text == "fp8") return QuantAlgo::FP8;
  if (text == "int8") return QuantAlgo::INT8;
  throw CliFailure("--kv-cache '" + text +
                   "' is not a KV-cache format; expected fp8, int8 or none");
}

void run_quantize(QuantizeArgs& a) {
  // Large buffers (a block's F32 copies) go back to the OS when freed, so the peak RSS is one
  // block's worth rather than the high-water mark of glibc's grown heap.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  QuantizeOptions& o = a.options;
  QuantConfig& q = o.quant_config;
  q.quant_algo = value_or_fail(parse_qformat(a.qformat));
  q.kv_cache_quant_algo = parse_kv(a.kv_cache);
  q.group_size = a.group_size;
  o.awq_duo_scaling = value_or_fail(parse_awq_duo_scaling(a.awq_duo));
  q.kv_cache_per_head = a.per_head_kv;
  for (const auto& e : a.exclude) q.exclude_modules.push_back(e);
  for (const auto& ov : a.overrides) {
    const auto eq = ov.rfind('=');
    if (eq == std::string::npos || eq == 0) {
      throw CliFailure("--override '" + ov +
                       "': expected PATTERN=QFORMAT (e.g. '*.down_proj=fp8')");
    }
    q.layer_overrides.emplace_back(ov.substr(0, eq),
                                   value_or_fail(parse_qformat(ov.substr(eq + 1))));
  }
  if (!a.auto_candidates.empty()) {
    q.auto_quantize_candidates.clear();
    for (const auto& c : a.auto_candidates) {
      q.auto_quantize_candidates.push_back(value_or_fail(parse_qformat(c)));
    }
  }
  if (q.auto_quantize_bits > 0 && q.quant_algo != QuantAlgo::MIXED_PRECISION) {
    throw CliFailure("--auto-quantize-bits needs --qformat auto");
  }
  o.export_format = value_or_fail(parse_quant_export_format(a.export_format));
  if (a.max_memory_mb < 0) throw CliFailure("--max-memory must be >= 0 MiB");
  o.max_memory = static_cast<uint64_t>(a.max_memory_mb * 1048576.0);
  o.show_progress = !a.quiet;

  const QuantizeReport r = value_or_fail(quantize(o));

  if (!r.auto_quantize_plan.empty()) std::printf("%s\n", r.auto_quantize_plan.c_str());
  Table t({"layer", "format", "algorithm", "weight rel err", "output rel err", "input scale"});
  for (const LayerQuantReport& l : r.layers) {
    t.add_row({l.module, l.format, l.algorithm, fmt::format("{:.3e}", l.weight_rel_error),
               fmt::format("{:.3e}", l.output_rel_error),
               l.input_scale > 0 ? fmt::format("{:.4g}", l.input_scale) : std::string("-")});
  }
  if (!a.quiet) std::printf("%s", t.render().c_str());
  std::printf(
      "wrote %s (%s layout): %.1f MiB of weights, %lld calibration samples x %lld tokens, "
      "%.1f s, peak RSS %.0f MiB%s\n",
      o.output_dir.c_str(), std::string(quant_export_format_name(o.export_format)).c_str(),
      r.output_bytes / 1048576.0, static_cast<long long>(r.calib_samples),
      static_cast<long long>(o.calib.calib_max_seq_length), r.seconds, r.peak_rss_bytes / 1048576.0,
      r.blocks_resumed > 0 ? fmt::format(" (resumed after block {})", r.blocks_resumed - 1).c_str()
                           : "");
}

}  // namespace

static void register_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize",
      "Calibrate and quantize a Hugging Face model (FP8, INT8/INT4 weight-only, AWQ, GPTQ, "
      "SmoothQuant, NVFP4/MXFP4, FP8/INT8 KV cache, auto mixed precision) into a checkpoint "
      "TensorRT-LLM, vLLM and qforge load");
  static QuantizeArgs a;
  QuantizeOptions& o = a.options;
  cmd->add_option("--model,-m", o.model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--output,-o", o.output_dir,
                  "Output directory (written as DIR.partial, renamed when complete)")
      ->required();
  std::string qformats;
  for (const auto& n : qformat_names()) {
    qformats += fmt::format("\n  {:<15} {}", n.qformat, n.description);
  }
  cmd->add_option("--qformat,-q", a.qformat,
                  "Quantization format (or a TensorRT-LLM QuantAlgo name):" + qformats)
      ->capture_default_str();
  cmd->add_option("--kv-cache", a.kv_cache, "KV-cache format: fp8, int8 or none")
      ->capture_default_str();
  cmd->add_flag("--kv-cache-per-head", a.per_head_kv,
                "One KV-cache scale per KV head instead of per layer (compressed-tensors only)");
  cmd->add_option("--calib", o.calib.paths,
                  "Calibration text: plain-text files, JSONL (one object per line with a text "
                  "field) or directories")
      ->required();
  cmd->add_option("--calib-text-field", o.calib.jsonl_text_field, "JSONL text field")
      ->capture_default_str();
  cmd->add_flag("!--calib-concat", o.calib.mix_evenly,
                "Join several --calib paths into one stream (default: each path is a set and "
                "--calib-size is split evenly across the sets)");
  cmd->add_option("--calib-size", o.calib.calib_size, "Number of calibration samples")
      ->capture_default_str();
  cmd->add_option("--calib-batch-size", o.calib.calib_batch_size,
                  "Accepted for ModelOpt compatibility: samples run one at a time (the kernels "
                  "parallelise inside a sample), so it does not change the result")
      ->capture_default_str();
  cmd->add_option("--calib-max-seq-len", o.calib.calib_max_seq_length,
                  "Tokens per calibration sample")
      ->capture_default_str();
  cmd->add_option("--seed", o.calib.seed, "Seed for choosing calibration samples")
      ->capture_default_str();
  cmd->add_option("--amax-method", o.calib.amax_method,
                  "Activation range for static input scales: max, percentile, mse, entropy")
      ->capture_default_str();
  cmd->add_option("--percentile", o.calib.percentile, "Percentile for --amax-method percentile")
      ->capture_default_str();
  cmd->add_option("--group-size", a.group_size, "INT4 group size (32, 64, 128, ...)")
      ->capture_default_str();
  cmd->add_flag("--zero-point", o.quant_config.has_zero_point,
                "Asymmetric INT4 (UINT4 codes with a zero point per group)");
  cmd->add_option("--smoothquant-alpha", o.quant_config.smoothquant_val,
                  "SmoothQuant migration strength alpha in [0, 1]")
      ->capture_default_str();
  cmd->add_option("--clamp-val", o.quant_config.clamp_val,
                  "Upper bound on calibrated activation amax (0 = none)")
      ->capture_default_str();
  cmd->add_option("--exclude", a.exclude,
                  "Module glob left unquantized, repeatable (lm_head is always excluded), e.g. "
                  "'model.layers.0.*'");
  cmd->add_option("--override", a.overrides,
                  "Per-layer format PATTERN=QFORMAT, repeatable, e.g. '*.down_proj=fp8'");
  cmd->add_option("--auto-quantize-bits", o.quant_config.auto_quantize_bits,
                  "With --qformat auto: average bits per weight budget (e.g. 4.8)");
  cmd->add_option("--auto-quantize-formats", a.auto_candidates,
                  "With --qformat auto: candidate qformats (default int4_awq fp8)");
  cmd->add_option("--export-format", a.export_format, "modelopt or compressed-tensors")
      ->capture_default_str();
  cmd->add_option("--max-memory", a.max_memory_mb,
                  "Peak memory budget in MiB: refuse up front when a block and its activations "
                  "do not fit; finished blocks' weights are dropped from memory")
      ->capture_default_str();
  cmd->add_option("--awq-max-tokens", o.awq_max_tokens,
                  "Calibration tokens AWQ's scale search evaluates the block output on")
      ->capture_default_str();
  cmd->add_option("--gptq-damp", o.gptq.percdamp,
                  "GPTQ dampening: this fraction of mean(diag H) is added to the diagonal")
      ->capture_default_str();
  cmd->add_flag("--gptq-act-order,!--no-gptq-act-order", o.gptq.act_order,
                "GPTQ: quantize columns by descending Hessian diagonal (static groups, so the "
                "layout stays standard; on by default)");
  cmd->add_option("--gptq-scale-search", o.gptq.scale_search_grid,
                  "GPTQ: grid steps of the MSE-optimal group scale search over shrink factors "
                  "[1 - --gptq-scale-shrink, 1], scored on the Hessian-weighted error (0 = amax "
                  "scales)")
      ->capture_default_str();
  cmd->add_option("--gptq-scale-shrink", o.gptq.scale_search_max_shrink,
                  "GPTQ: largest shrink of a group's range the scale search tries, in [0, 1)")
      ->capture_default_str();
  cmd->add_flag("--gptq-true-sequential,!--no-gptq-true-sequential", o.gptq.true_sequential,
                "GPTQ: q/k/v, then o, then gate/up, then down, each Hessian taken through the "
                "already-quantized layers (on by default)");
  cmd->add_option("--awq-grid", o.awq_grid, "AWQ: scale grid points per search")
      ->capture_default_str();
  cmd->add_option("--awq-duo-scaling", a.awq_duo,
                  "AWQ: divide the scales by the weights' magnitude too (AutoAWQ/llm-compressor "
                  "duo_scaling): on, off or both (both grids)")
      ->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Replace an existing output directory");
  cmd->add_flag("--resume", o.resume, "Continue an interrupted run from its last finished block");
  cmd->add_flag("--quiet", a.quiet, "No progress bars or layer table");
  cmd->callback([] { run_quantize(a); });
}

QF_REGISTER_COMMAND(35, register_quantize);

}  // namespace qforge::cli
