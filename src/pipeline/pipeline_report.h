// The human-readable pipeline reports: Markdown, and a self-contained HTML page (inline CSS and
// SVG charts: no scripts, no external assets) with the comparison table, the per-layer
// quantization error and the KL divergence distribution.
#pragma once

#include <string>

#include "qforge/pipeline/pipeline.h"

namespace qforge::pipeline_internal {

std::string report_markdown(const PipelineResult& r);
std::string report_html(const PipelineResult& r);

// Shared wording: "PASS" / "FAIL: reasons".
std::string verdict_text(const CandidateResult& c);

}  // namespace qforge::pipeline_internal
