// report.md of pipeline_report.h.
#include <fmt/format.h>

#include "pipeline/pipeline_report.h"

namespace qforge::pipeline_internal {
namespace {

std::string mib(uint64_t bytes) {
  return fmt::format("{:.2f}", bytes / 1048576.0);
}

}  // namespace

std::string verdict_text(const CandidateResult& c) {
  if (c.passed) return "PASS";
  std::string out = "FAIL: ";
  for (size_t i = 0; i < c.failures.size(); ++i) out += (i ? "; " : "") + c.failures[i];
  return out;
}

std::string report_markdown(const PipelineResult& r) {
  const PipelineConfig& c = r.config;
  const BaselineResult& b = r.baseline;
  std::string md = "# qforge pipeline report\n\n";
  md += fmt::format("- Model: `{}` (evaluated as `{}`)\n- Config: {}\n", c.model, b.model,
                    c.source.empty() ? "built-in defaults" : c.source);
  md += fmt::format("- Perplexity protocol: {}\n", b.protocol);
  md += fmt::format(
      "- Chosen: **{}**{}\n\n",
      r.chosen >= 0 ? r.candidates[static_cast<size_t>(r.chosen)].candidate.name
                    : std::string("none (no candidate passed the gate)"),
      r.deployed_engine.empty() ? "" : fmt::format(", deployed to `{}`", r.deployed_engine));
  md += "## Baseline (unquantized)\n\n";
  md += fmt::format(
      "PPL {:.4f} ± {:.4f} (mean NLL {:.6f} nats over {} tokens, {} chunks); {:.1f} decode "
      "tokens/s; {} MiB of weights, {:.2f} bits/weight in the decoder layers.\n\n",
      b.ppl.ppl, b.ppl.ppl_stderr, b.ppl.mean_nll, b.ppl.scored_tokens, b.ppl.chunks,
      b.tokens_per_second, mib(b.size.bytes), b.size.bits_per_weight);
  for (const TaskScore& t : b.tasks) {
    md += fmt::format("- task {}: acc {:.4f} ± {:.4f}, acc_norm {:.4f} ± {:.4f} ({} examples)\n",
                      t.task, t.acc, t.acc_stderr, t.acc_norm, t.acc_norm_stderr, t.examples);
  }
  md += "\n## Candidates\n\n";
  md +=
      "| candidate | qformat | KV cache | size MiB | bits/weight | PPL | ΔPPL % | gate ΔPPL % | "
      "mean KLD | top-1 agreement |";
  for (const TaskScore& t : b.tasks) md += fmt::format(" {} Δacc |", t.task);
  md += " tokens/s | verdict |\n|";
  for (size_t i = 0; i < 12 + b.tasks.size(); ++i) md += "---|";
  md += "\n";
  for (const CandidateResult& cand : r.candidates) {
    md += fmt::format(
        "| {} | {} | {} | {} | {:.3f} | {:.4f} | {:+.3f} | < {:.3f} | {:.6f} | "
        "{:.2f}% |",
        cand.candidate.name, cand.candidate.qformat, cand.candidate.kv_cache, mib(cand.size.bytes),
        cand.size.bits_per_weight, cand.ppl.ppl, cand.delta_ppl_percent, cand.ppl_threshold,
        cand.kld.mean_kld, 100 * cand.kld.top1_agreement);
    for (size_t t = 0; t < b.tasks.size(); ++t) {
      md += t < cand.tasks.size() ? fmt::format(" {:+.4f} |", cand.tasks[t].acc - b.tasks[t].acc)
                                  : std::string(" - |");
    }
    md += fmt::format(" {:.1f} | {} |\n", cand.tokens_per_second, verdict_text(cand));
  }
  md += "\nKLD statistics per candidate (median / p99 / max): ";
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const KlDivergenceResult& k = r.candidates[i].kld;
    md += fmt::format("{}{} {:.6f} / {:.6f} / {:.6f}", i ? "; " : "",
                      r.candidates[i].candidate.name, k.median_kld, k.p99_kld, k.max_kld);
  }
  md += ".\n";
  for (const CandidateResult& cand : r.candidates) {
    if (cand.excluded_incompatible.empty()) continue;
    md += fmt::format(
        "\n{}: {} layers left unquantized (the format's blocks do not divide their "
        "input width), e.g. `{}`.\n",
        cand.candidate.name, cand.excluded_incompatible.size(), cand.excluded_incompatible.front());
  }

  md += "\n## Per-layer quantization error (output relative error on calibration inputs)\n\n";
  md += "| layer |";
  for (const CandidateResult& cand : r.candidates) md += " " + cand.candidate.name + " |";
  md += "\n|---|";
  for (size_t i = 0; i < r.candidates.size(); ++i) md += "---|";
  md += "\n";
  if (!r.candidates.empty()) {
    for (size_t l = 0; l < r.candidates[0].layers.size(); ++l) {
      md += "| " + r.candidates[0].layers[l].module + " |";
      for (const CandidateResult& cand : r.candidates) {
        md += l < cand.layers.size()
                  ? fmt::format(" {:.3e} ({}) |", cand.layers[l].output_rel_error,
                                cand.layers[l].format)
                  : std::string(" - |");
      }
      md += "\n";
    }
  }

  const CalibrationResult& k = r.calibration;
  md += fmt::format(
      "\n## Calibration\n\n{} samples × {} tokens from {} documents ({} tokens of text; sample "
      "fingerprint {}); activation statistics in `{}`.\n\n",
      k.samples, k.sample_tokens, k.documents, k.total_tokens, k.fingerprint, k.stats_file);
  md +=
      "| block | attn_in amax | attn_out amax | mlp_in amax | mlp_mid amax | K amax | V amax |\n"
      "|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < k.blocks.size(); ++i) {
    const BlockActivationStats& s = k.blocks[i];
    md += fmt::format("| {} | {:.4g} | {:.4g} | {:.4g} | {:.4g} | {:.4g} | {:.4g} |\n", i,
                      s.amax[0], s.amax[1], s.amax[2], s.amax[3], s.k_amax, s.v_amax);
  }
  md += "\n## Steps\n\n| step | status | seconds | directory |\n|---|---|---|---|\n";
  for (const StepRecord& s : r.steps) {
    md += fmt::format("| {} | {} | {:.1f} | `{}` |\n", s.name, s.reused ? "reused" : "ran",
                      s.seconds, s.dir);
  }
  return md;
}

}  // namespace qforge::pipeline_internal
