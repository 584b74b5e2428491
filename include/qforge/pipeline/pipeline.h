// `qforge pipeline`: the production quantization workflow in five steps, each a directory under
// <output_dir>/steps/ keyed by a hash of the configuration it depends on and the identity (size,
// mtime) of its input files, with a done-marker written last, so a rerun reuses finished steps:
//   1. baseline     perplexity (fixed protocol), task accuracy, decode tokens/s and the stored
//                   log-probs for KL divergence, on the unquantized model (reference runtime);
//   2. calibration  the calibration samples quantize() draws and per-block activation statistics
//                   (amax and RMS of every linear group's input, K/V amax), saved as JSON;
//   3. build        per candidate: quantize() to a checkpoint, then build_engine();
//   4. validate     per candidate, on its engine: ΔPPL %, mean KLD, top-1 agreement, task
//                   accuracy, tokens/s, size and bits/weight; the gate's verdict;
//   5. deploy       the chosen engine (passing, smallest, ties by ΔPPL) copied atomically to the
//                   configured path.
// Then report.md, report.html (inline SVG, no scripts or external assets) and report.json.
// A model that is not a Hugging Face directory is first converted to one (step "import").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/eval/kl_divergence.h"
#include "qforge/pipeline/pipeline_config.h"
#include "qforge/quant/quantize.h"

namespace qforge {

// Exit codes of `qforge pipeline`: 0 a candidate passed (and was deployed), 1 an error (also
// when every candidate failed to build or validate), kPipelineGateFailed when candidates were
// measured and none passed the gate.
inline constexpr int kPipelineGateFailed = 2;

struct PplSummary {
  double ppl = 0, ppl_stderr = 0, mean_nll = 0;
  int64_t scored_tokens = 0, chunks = 0;
  double seconds = 0;
};

struct TaskScore {
  std::string task;
  int64_t examples = 0;
  double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;
};

struct SizeSummary {
  uint64_t bytes = 0;          // engine file (candidates) or safetensors files (baseline)
  uint64_t layer_bytes = 0;    // tensors of the decoder layers' linears, scales included
  int64_t layer_weights = 0;   // their weights (elements of the unquantized matrices)
  double bits_per_weight = 0;  // 8 * layer_bytes / layer_weights
};

struct BaselineResult {
  std::string model;  // the evaluated HF directory
  std::string protocol;
  std::string logprobs;  // the stored log-probs (KL divergence base)
  PplSummary ppl;
  std::vector<TaskScore> tasks;
  double tokens_per_second = 0;
  SizeSummary size;
};

struct BlockActivationStats {
  // Per linear group input (attn_in, attn_out, mlp_in, mlp_mid): amax and RMS.
  std::array<double, 4> amax{};
  std::array<double, 4> rms{};
  double k_amax = 0, v_amax = 0;
};

struct CalibrationResult {
  int64_t samples = 0, sample_tokens = 0, total_tokens = 0, documents = 0;
  std::string fingerprint;  // of the sample ids (hex)
  std::string stats_file;   // calib_stats.json
  std::vector<BlockActivationStats> blocks;
};

struct KldHistogram {
  // Bin 0: KLD < 10^log10_min (including 0); bin i >= 1: [10^(log10_min + (i-1) w),
  // 10^(log10_min + i w)), w = bin_width; the last bin is open above.
  double log10_min = -6, bin_width = 0.25;
  std::vector<int64_t> counts;
};

struct CandidateResult {
  PipelineCandidate candidate;
  std::string checkpoint, engine;
  std::vector<std::string> excluded_incompatible;  // modules left unquantized automatically
  std::vector<LayerQuantReport> layers;
  SizeSummary size;
  double quantize_seconds = 0, build_seconds = 0;
  // Validation (on the engine).
  PplSummary ppl;
  double delta_ppl_percent = 0;
  KlDivergenceResult kld;
  KldHistogram kld_histogram;
  std::vector<TaskScore> tasks;
  double tokens_per_second = 0;
  // Gate.
  double ppl_threshold = 0;
  bool passed = false;
  std::vector<std::string> failures;  // why it failed (empty when it passed)
  std::string error;  // the build or validation error (the candidate then fails the gate)
};

struct StepRecord {
  std::string name;  // "baseline", "build fp8", ...
  std::string dir;
  bool reused = false;
  double seconds = 0;
};

struct PipelineResult {
  PipelineConfig config;
  BaselineResult baseline;
  CalibrationResult calibration;
  std::vector<CandidateResult> candidates;
  int chosen = -1;  // index into candidates, -1 when none passed
  std::string deployed_engine;
  std::vector<StepRecord> steps;
  std::string report_md, report_html, report_json;
  int exit_code = 0;
};

struct PipelineRunOptions {
  bool show_progress = true;
  // Receives each progress line ("[2/5] calibration: reused steps/calib-..."); default: stderr.
  std::function<void(std::string_view)> log;
};

Result<PipelineResult> run_pipeline(const PipelineConfig& config,
                                    const PipelineRunOptions& options = {});

// Applies the gate to validated candidates and picks the deployed one (sets passed, failures,
// ppl_threshold, chosen, exit_code); exposed so tests can re-gate results.
void apply_pipeline_gate(PipelineResult& result);

}  // namespace qforge
