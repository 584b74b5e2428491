// JSON forms of the pipeline's results: what steps store in result.json (and read back when
// reused) and what report.json holds. Reading throws nlohmann::json::exception on a damaged file;
// callers catch it (it never leaves the library).
#pragma once

#include <nlohmann/json.hpp>

#include "qforge/pipeline/pipeline.h"

namespace qforge {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PplSummary, ppl, ppl_stderr, mean_nll,
                                                scored_tokens, chunks, seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TaskScore, task, examples, acc, acc_stderr,
                                                acc_norm, acc_norm_stderr)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SizeSummary, bytes, layer_bytes, layer_weights,
                                                bits_per_weight)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BaselineResult, model, protocol, logprobs, ppl,
                                                tasks, tokens_per_second, size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BlockActivationStats, amax, rms, k_amax, v_amax)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CalibrationResult, samples, sample_tokens,
                                                total_tokens, documents, fingerprint, stats_file,
                                                blocks)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KlDivergenceResult, tokens, mean_kld,
                                                mean_kld_stderr, median_kld, p99_kld, max_kld,
                                                top1_agreement, top1_agreement_stderr, ppl_base,
                                                ppl, ppl_ratio, ln_ppl_ratio, ln_ppl_ratio_stderr,
                                                top_k)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KldHistogram, log10_min, bin_width, counts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LayerQuantReport, module, format, algorithm,
                                                weight_rel_error, output_rel_error, input_scale,
                                                calib_tokens, calib_documents)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StepRecord, name, dir, reused, seconds)

void to_json(nlohmann::json& j, const PipelineCandidate& c);
void from_json(const nlohmann::json& j, PipelineCandidate& c);
void to_json(nlohmann::json& j, const CandidateResult& c);
void from_json(const nlohmann::json& j, CandidateResult& c);

// report.json: the configuration summary, baseline, calibration, candidates (with task deltas),
// the chosen one and the steps.
nlohmann::json pipeline_report_json(const PipelineResult& r);

}  // namespace qforge
