// `qforge plan`: capacity planning. Weights memory per format (scales included), KV-cache bytes
// per token, activation workspace and the largest batch that fits one GPU (or a --memory-gb
// budget), for a model directory or a published model preset. All sizes are per GPU; 1 GB = 1e9.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/engine/capacity_plan.h"
#include "qforge/io/hf_config.h"
#include "table.h"

namespace qforge::cli {
namespace {

struct PlanArgs {
  std::string model_dir;
  std::string preset;
  std::string gpu;
  double memory_gb = 0;
  double usable_fraction = kDefaultUsableFraction;
  std::string qformat = "bf16";
  std::string quant_algo;
  int group_size = 128;
  bool zero_point = false;
  double auto_quantize_bits = 0;
  std::string dense_dtype = "bf16";
  std::string precision = "float16";
  std::string kv_cache = "f16";
  bool kv_per_head = false;
  int64_t max_seq_len = 8192;
  int64_t max_batch_size = 0;
  int64_t max_num_tokens = 0;
  int64_t kv_block_size = 32;
  int64_t tp = 1;
  bool compare = false;
  bool json = false;
  bool list = false;
};

// The formats --compare lays side by side.
constexpr const char* kCompareFormats[] = {"bf16", "fp8", "int8_wo", "int4_awq", "nvfp4", "mxfp4"};

struct WeightFormat {
  std::string label;  // "bf16", "nvfp4", "W4A16_AWQ"
  QuantAlgo algo = QuantAlgo::NO_QUANT;
  std::optional<DType> dense;  // set for bf16/f16/f32: unquantized linears in that type
};

// "bf16" / "f16" / "f32" (unquantized), a qformat ("nvfp4") or a QuantAlgo name ("W4A16_AWQ").
Result<WeightFormat> parse_weight_format(const std::string& text) {
  WeightFormat w;
  w.label = text;
  if (text == "bf16" || text == "bfloat16") {
    w.dense = DType::BF16;
  } else if (text == "f16" || text == "fp16" || text == "float16") {
    w.dense = DType::F16;
  } else if (text == "f32" || text == "fp32" || text == "float32") {
    w.dense = DType::F32;
  } else {
    auto algo = parse_quant_algo(text);
    if (!algo.ok()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "weight format '{}' is unknown; expected bf16, f16, f32, a qformat (fp8, "
                        "int8_wo, int4_awq, nvfp4, mxfp4, ...) or a QuantAlgo name",
                        text);
    }
    w.algo = algo.value();
  }
  return w;
}

Result<DType> parse_float_dtype(const std::string& flag, const std::string& text) {
  auto d = parse_dtype(text == "float16"    ? "f16"
                       : text == "bfloat16" ? "bf16"
                       : text == "float32"  ? "f32"
                                            : text);
  if (!d.ok() ||
      !(d.value() == DType::F32 || d.value() == DType::F16 || d.value() == DType::BF16)) {
    return make_error(ErrorCode::kInvalidArgument, "{} '{}' is invalid; expected f32, f16 or bf16",
                      flag, text);
  }
  return d.value();
}

std::string gb(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.2f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

std::string params_text(uint64_t n) {
  if (n >= 1000000000) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1000000) return fmt::format("{:.2f}M", n / 1e6);
  return fmt::format("{}", n);
}

std::string verdict(const CapacityPlan& p) {
  if (p.fits) return "fits";
  return "short " + gb(p.shortfall_bytes);
}

struct Setup {
  ModelConfig model;
  std::string model_label;
  std::string memory_label;
  uint64_t budget = 0;
  PlanRequest base;  // everything but the weight format
};

Setup make_setup(const PlanArgs& a) {
  Setup s;
  if (a.model_dir.empty() == a.preset.empty()) {
    throw CliFailure("plan: give exactly one of --model DIR or --preset NAME (see --list)");
  }
  if (!a.preset.empty()) {
    s.model = value_or_fail(model_preset(a.preset));
    for (const ModelPreset& p : model_presets()) {
      if (a.preset == p.name) s.model_label = fmt::format("{} ({})", p.name, p.hf_id);
    }
  } else {
    s.model = value_or_fail(load_hf_config(a.model_dir));
    s.model_label = a.model_dir;
  }
  if (a.gpu.empty() == (a.memory_gb == 0)) {
    throw CliFailure("plan: give exactly one of --gpu NAME or --memory-gb N (see --list)");
  }
  double memory_gb = a.memory_gb;
  std::string device = fmt::format("{} GB", a.memory_gb);
  if (!a.gpu.empty()) {
    const GpuPreset g = value_or_fail(gpu_preset(a.gpu));
    memory_gb = g.memory_gb;
    device = fmt::format("{} ({})", g.name, g.description);
  }
  s.budget = value_or_fail(usable_memory_bytes(memory_gb, a.usable_fraction));
  s.memory_label =
      fmt::format("{}: {} GB x {:.2f} usable = {} per GPU (1 GB = 1e9 bytes){}", device, memory_gb,
                  a.usable_fraction, gb(s.budget),
                  a.tp > 1 ? fmt::format("; tp {}: every size below is per GPU", a.tp) : "");
  PlanRequest& r = s.base;
  r.memory_budget_bytes = s.budget;
  r.dense_dtype = value_or_fail(parse_float_dtype("--dense-dtype", a.dense_dtype));
  r.precision = value_or_fail(parse_float_dtype("--precision", a.precision));
  r.kv_cache = value_or_fail(parse_kv_cache_storage(a.kv_cache));
  r.quant_config.group_size = a.group_size;
  r.quant_config.has_zero_point = a.zero_point;
  r.quant_config.auto_quantize_bits = a.auto_quantize_bits;
  r.quant_config.kv_cache_per_head = a.kv_per_head;
  r.max_seq_len = a.max_seq_len;
  if (a.max_batch_size != 0) r.max_batch_size = a.max_batch_size;
  r.max_num_tokens = a.max_num_tokens;
  r.kv_cache_block_size = a.kv_block_size;
  r.tensor_parallel = a.tp;
  return s;
}

struct FormatPlan {
  WeightFormat format;
  CapacityPlan plan;
};

FormatPlan plan_format(const Setup& s, const std::string& format_text) {
  FormatPlan fp;
  fp.format = value_or_fail(parse_weight_format(format_text));
  PlanRequest r = s.base;
  r.quant_config.quant_algo = fp.format.algo;
  if (fp.format.dense) r.dense_dtype = *fp.format.dense;
  fp.plan = value_or_fail(plan_capacity(s.model, r));
  return fp;
}

nlohmann::ordered_json plan_json(const FormatPlan& fp) {
  const CapacityPlan& p = fp.plan;
  nlohmann::ordered_json j = {
      {"weight_format", fp.format.label},
      {"quant_algo", quant_algo_name(fp.format.algo)},
      {"tensor_parallel", p.tensor_parallel},
      {"params_total", p.params_total},
      {"params_linear", p.params_linear},
      {"weight_bytes", p.weight_bytes},
      {"linear_weight_bytes", p.linear_weight_bytes},
      {"linear_bits_per_weight", p.linear_bits_per_weight},
      {"kv_heads_per_gpu", p.kv_heads_per_gpu},
      {"kv_bytes_per_token", p.kv_bytes_per_token},
      {"kv_tokens_per_sequence", p.kv_tokens_per_sequence},
      {"kv_bytes_per_sequence", p.kv_bytes_per_sequence},
      {"kv_scale_bytes", p.kv_scale_bytes},
      {"batch", p.batch},
      {"max_num_tokens", p.max_num_tokens},
      {"kv_bytes_total", p.kv_bytes_total},
      {"workspace_bytes", p.workspace_bytes},
      {"total_bytes", p.total_bytes},
      {"budget_bytes", p.budget_bytes},
      {"max_batch_that_fits", p.max_batch_that_fits},
      {"fits", p.fits},
      {"shortfall_bytes", p.shortfall_bytes},
  };
  j["breakdown"] = nlohmann::json::array();
  for (const auto& c : p.breakdown) {
    j["breakdown"].push_back({{"name", c.name}, {"bytes", c.bytes}, {"detail", c.detail}});
  }
  j["notes"] = p.notes;
  return j;
}

void print_header(const Setup& s, const PlanArgs& a) {
  const ModelConfig& m = s.model;
  std::printf(
      "Model    %s: %d layers, hidden %lld, %lld heads / %lld KV heads x %lld, "
      "intermediate %lld, vocab %lld%s\n",
      s.model_label.c_str(), static_cast<int>(m.num_hidden_layers),
      static_cast<long long>(m.hidden_size), static_cast<long long>(m.num_attention_heads),
      static_cast<long long>(m.num_key_value_heads), static_cast<long long>(m.head_dim),
      static_cast<long long>(m.intermediate_size), static_cast<long long>(m.vocab_size),
      m.tie_word_embeddings ? ", tied embeddings" : "");
  std::printf("Memory   %s\n", s.memory_label.c_str());
  std::printf("Serving  max_seq_len %lld, KV cache %s in %lld-token pages, activations %s%s\n",
              static_cast<long long>(a.max_seq_len),
              std::string(kv_cache_storage_name(s.base.kv_cache)).c_str(),
              static_cast<long long>(a.kv_block_size),
              std::string(dtype_name(s.base.precision)).c_str(),
              a.max_batch_size ? fmt::format(", batch {}", a.max_batch_size).c_str()
                               : ", batch: the largest that fits");
}

void print_one(const Setup& s, const PlanArgs& a, const FormatPlan& fp) {
  const CapacityPlan& p = fp.plan;
  print_header(s, a);
  std::printf(
      "Weights  %s (%s): %s params, linears at %.3f bits/weight incl. scales; embeddings "
      "%s\n\n",
      fp.format.label.c_str(), std::string(quant_algo_name(fp.format.algo)).c_str(),
      params_text(p.params_total).c_str(), p.linear_bits_per_weight,
      std::string(dtype_name(fp.format.dense ? *fp.format.dense : s.base.dense_dtype)).c_str());
  Table t({"component", "per GPU", "detail"});
  for (const auto& c : p.breakdown) t.add_row({c.name, gb(c.bytes), c.detail});
  t.add_row({"total", gb(p.total_bytes), fmt::format("budget {}", gb(p.budget_bytes))});
  std::printf("%s\n", t.render().c_str());
  std::printf("KV cache: %llu bytes/token, %s per %lld-token sequence\n",
              static_cast<unsigned long long>(p.kv_bytes_per_token),
              gb(p.kv_bytes_per_sequence).c_str(),
              static_cast<long long>(p.kv_tokens_per_sequence));
  std::printf("Largest batch that fits at max_seq_len %lld: %lld\n",
              static_cast<long long>(a.max_seq_len), static_cast<long long>(p.max_batch_that_fits));
  if (p.fits) {
    std::printf("Verdict: fits at batch %lld (%s of %s, %s free)\n",
                static_cast<long long>(p.batch), gb(p.total_bytes).c_str(),
                gb(p.budget_bytes).c_str(), gb(p.budget_bytes - p.total_bytes).c_str());
  } else {
    std::printf("Verdict: does not fit at batch %lld, by %s (needs %s of %s)\n",
                static_cast<long long>(p.batch), gb(p.shortfall_bytes).c_str(),
                gb(p.total_bytes).c_str(), gb(p.budget_bytes).c_str());
  }
  for (const auto& n : p.notes) {
    if (n.rfind("does not fit", 0) != 0) std::printf("Note: %s\n", n.c_str());
  }
}

void print_compare(const Setup& s, const PlanArgs& a, const std::vector<FormatPlan>& plans) {
  print_header(s, a);
  std::printf("\n");
  Table t({"format", "bits/w", "weights", "KV B/token", "KV/seq", "batch", "KV total", "workspace",
           "total", "max batch", "verdict"});
  for (const FormatPlan& fp : plans) {
    const CapacityPlan& p = fp.plan;
    t.add_row({fp.format.label, fmt::format("{:.3f}", p.linear_bits_per_weight), gb(p.weight_bytes),
               std::to_string(p.kv_bytes_per_token), gb(p.kv_bytes_per_sequence),
               std::to_string(p.batch), gb(p.kv_bytes_total), gb(p.workspace_bytes),
               gb(p.total_bytes), std::to_string(p.max_batch_that_fits), verdict(p)});
  }
  std::printf("%s", t.render().c_str());
  std::printf(
      "bits/w: storage bits per linear weight incl. scales (embeddings and lm_head stay "
      "%s); sizes per GPU; budget %s\n",
      std::string(dtype_name(s.base.dense_dtype)).c_str(), gb(s.base.memory_budget_bytes).c_str());
}

void print_list() {
  Table models({"model preset", "hidden", "layers", "heads", "kv", "head_dim", "intermediate",
                "vocab", "tied", "max pos", "source"});
  for (const ModelPreset& p : model_presets()) {
    const ModelConfig& m = p.config;
    models.add_row({p.name, std::to_string(m.hidden_size), std::to_string(m.num_hidden_layers),
                    std::to_string(m.num_attention_heads), std::to_string(m.num_key_value_heads),
                    std::to_string(m.head_dim), std::to_string(m.intermediate_size),
                    std::to_string(m.vocab_size), m.tie_word_embeddings ? "yes" : "no",
                    std::to_string(m.max_position_embeddings), p.hf_id});
  }
  std::printf("%s\n", models.render().c_str());
  Table gpus({"gpu", "memory", "description"});
  for (const GpuPreset& g : gpu_presets()) {
    gpus.add_row({g.name, fmt::format("{:g} GB", g.memory_gb), g.description});
  }
  std::printf("%s", gpus.render().c_str());
}

void run_plan(const PlanArgs& a) {
  if (a.list) {
    print_list();
    return;
  }
  const Setup s = make_setup(a);
  std::vector<FormatPlan> plans;
  if (a.compare) {
    for (const char* f : kCompareFormats) plans.push_back(plan_format(s, f));
  } else {
    plans.push_back(plan_format(s, a.quant_algo.empty() ? a.qformat : a.quant_algo));
  }
  if (a.json) {
    nlohmann::ordered_json out;
    out["model"] = s.model_label;
    out["memory"] = s.memory_label;
    out["budget_bytes"] = s.budget;
    out["max_seq_len"] = a.max_seq_len;
    out["kv_cache"] = kv_cache_storage_name(s.base.kv_cache);
    out["plans"] = nlohmann::json::array();
    for (const auto& fp : plans) out["plans"].push_back(plan_json(fp));
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  if (a.compare) {
    print_compare(s, a, plans);
  } else {
    print_one(s, a, plans.front());
  }
}

}  // namespace

static void register_plan(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plan",
      "Capacity planning: weights memory per format (scales included), KV-cache bytes per "
      "token, activation workspace and the largest batch that fits a GPU. Sizes are per GPU, "
      "1 GB = 1e9 bytes; formulas in docs/CAPACITY.md");
  static PlanArgs a;
  std::string presets, gpus;
  for (const ModelPreset& p : model_presets())
    presets += std::string(presets.empty() ? "" : ", ") + p.name;
  for (const GpuPreset& g : gpu_presets()) {
    gpus += fmt::format("\n  {:<11} {:>3g} GB  {}", g.name, g.memory_gb, g.description);
  }
  std::string qformats;
  for (const auto& n : qformat_names()) {
    qformats += fmt::format("\n  {:<15} {}", n.qformat, n.description);
  }
  cmd->add_option("--model,-m", a.model_dir, "Hugging Face model directory (reads config.json)");
  cmd->add_option("--preset", a.preset, "Published model shape instead of --model: " + presets);
  cmd->add_option("--gpu", a.gpu, "GPU whose memory is the budget (vendor GB figure):" + gpus);
  cmd->add_option("--memory-gb", a.memory_gb,
                  "Memory per GPU in GB (1e9 bytes) instead of --gpu, e.g. 64 for a CPU box");
  cmd->add_option("--usable-fraction", a.usable_fraction,
                  "Share of the memory the plan may fill; the rest is left to the CUDA context, "
                  "allocator and communication buffers")
      ->capture_default_str();
  cmd->add_option("--qformat,-q", a.qformat,
                  "Weight format of the linear layers: bf16, f16, f32 (unquantized) or a "
                  "qformat:" +
                      qformats)
      ->capture_default_str();
  cmd->add_option("--quant-algo", a.quant_algo,
                  "Weight format as a TensorRT-LLM QuantAlgo name (W4A16_AWQ, NVFP4, ...); "
                  "overrides --qformat");
  cmd->add_option("--group-size", a.group_size, "INT4 group size (32, 64, 128, ...)")
      ->capture_default_str();
  cmd->add_flag("--zero-point", a.zero_point, "Asymmetric INT4 (a zero point per group)");
  cmd->add_option("--auto-quantize-bits", a.auto_quantize_bits,
                  "With --qformat auto: the linears' average bits per weight (e.g. 4.8)");
  cmd->add_option("--dense-dtype", a.dense_dtype,
                  "Storage of what stays unquantized (embeddings, lm_head): bf16, f16 or f32")
      ->capture_default_str();
  cmd->add_option("--precision", a.precision,
                  "Activation precision of the workspace: float16, bfloat16 or float32 (logits "
                  "are f32)")
      ->capture_default_str();
  cmd->add_option("--kv-cache", a.kv_cache, "KV-cache element type: f16, bf16, fp8, int8 or f32")
      ->capture_default_str();
  cmd->add_flag("--kv-cache-per-head", a.kv_per_head,
                "FP8/INT8 KV cache with one scale per KV head instead of per layer");
  cmd->add_option("--max-seq-len", a.max_seq_len,
                  "Tokens per sequence held in the KV cache (prompt + output)")
      ->capture_default_str();
  cmd->add_option("--max-batch-size", a.max_batch_size,
                  "Plan for this many concurrent sequences (default: report the largest batch "
                  "that fits)");
  cmd->add_option("--max-num-tokens", a.max_num_tokens,
                  "Tokens per forward step, for the workspace (default max(max_seq_len, batch))");
  cmd->add_option("--kv-block-size", a.kv_block_size,
                  "Tokens per KV-cache page; each sequence rounds up to whole pages")
      ->capture_default_str();
  cmd->add_option("--tp", a.tp,
                  "Tensor-parallel GPUs: weights, KV heads and activations split N ways; every "
                  "size printed is per GPU")
      ->capture_default_str();
  cmd->add_flag("--compare", a.compare,
                "Plan every main format side by side: bf16, fp8, int8_wo, int4_awq, nvfp4, mxfp4");
  cmd->add_flag("--json", a.json, "Print machine-readable JSON (bytes, not GB)");
  cmd->add_flag("--list", a.list, "List the model and GPU presets and exit");
  cmd->callback([] { run_plan(a); });
}

QF_REGISTER_COMMAND(22, register_plan);

}  // namespace qforge::cli
