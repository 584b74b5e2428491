// The work of each pipeline step (pipeline.h), without the caching: each writes its files into
// the step directory it is given and returns what result.json stores.
#pragma once

#include <filesystem>
#include <string>

#include "qforge/calib/calib_dataset.h"
#include "qforge/pipeline/pipeline.h"

namespace qforge::pipeline_internal {

// llama2.c / GGUF / lone safetensors models converted to an F32 HF directory `dir`/hf.
Result<std::string> import_model(const PipelineConfig& config, const std::filesystem::path& dir);

CalibConfig pipeline_calib_config(const PipelineConfig& config);

Result<BaselineResult> run_baseline(const PipelineConfig& config, const std::string& hf_dir,
                                    const std::filesystem::path& dir, bool progress);
Result<CalibrationResult> run_calibration(const PipelineConfig& config, const std::string& hf_dir,
                                          const std::filesystem::path& dir, bool progress);
// quantize() into `dir`/checkpoint, then build_engine() into `dir`/model.engine.
Result<CandidateResult> run_build(const PipelineConfig& config, const PipelineCandidate& cand,
                                  const std::string& hf_dir, const std::filesystem::path& dir,
                                  bool progress);
// Fills the validation fields of `cand` from its engine against the baseline.
Status run_validate(const PipelineConfig& config, const BaselineResult& baseline,
                    CandidateResult& cand, bool progress);

}  // namespace qforge::pipeline_internal
