// pipeline_json.h: candidate records and report.json.
#include "pipeline/pipeline_json.h"

namespace qforge {

void to_json(nlohmann::json& j, const PipelineCandidate& c) {
  j = {{"name", c.name},         {"qformat", c.qformat},
       {"kv_cache", c.kv_cache}, {"group_size", c.group_size},
       {"exclude", c.exclude},   {"exclude_incompatible", c.exclude_incompatible}};
  if (c.max_delta_ppl_percent) j["max_delta_ppl_percent"] = *c.max_delta_ppl_percent;
}

void from_json(const nlohmann::json& j, PipelineCandidate& c) {
  c.name = j.at("name").get<std::string>();
  c.qformat = j.at("qformat").get<std::string>();
  c.kv_cache = j.value("kv_cache", std::string("none"));
  c.group_size = j.value("group_size", 128);
  c.exclude = j.value("exclude", std::vector<std::string>{});
  c.exclude_incompatible = j.value("exclude_incompatible", true);
  if (j.contains("max_delta_ppl_percent")) {
    c.max_delta_ppl_percent = j.at("max_delta_ppl_percent").get<double>();
  }
}

void to_json(nlohmann::json& j, const CandidateResult& c) {
  j = {{"candidate", c.candidate},
       {"checkpoint", c.checkpoint},
       {"engine", c.engine},
       {"excluded_incompatible", c.excluded_incompatible},
       {"layers", c.layers},
       {"size", c.size},
       {"quantize_seconds", c.quantize_seconds},
       {"build_seconds", c.build_seconds},
       {"ppl", c.ppl},
       {"delta_ppl_percent", c.delta_ppl_percent},
       {"kld", c.kld},
       {"kld_histogram", c.kld_histogram},
       {"tasks", c.tasks},
       {"tokens_per_second", c.tokens_per_second},
       {"ppl_threshold", c.ppl_threshold},
       {"passed", c.passed},
       {"failures", c.failures},
       {"error", c.error}};
}

void from_json(const nlohmann::json& j, CandidateResult& c) {
  c.candidate = j.at("candidate").get<PipelineCandidate>();
  c.checkpoint = j.value("checkpoint", std::string());
  c.engine = j.value("engine", std::string());
  c.excluded_incompatible = j.value("excluded_incompatible", std::vector<std::string>{});
  c.layers = j.value("layers", std::vector<LayerQuantReport>{});
  c.size = j.value("size", SizeSummary{});
  c.quantize_seconds = j.value("quantize_seconds", 0.0);
  c.build_seconds = j.value("build_seconds", 0.0);
  c.ppl = j.value("ppl", PplSummary{});
  c.delta_ppl_percent = j.value("delta_ppl_percent", 0.0);
  c.kld = j.value("kld", KlDivergenceResult{});
  c.kld_histogram = j.value("kld_histogram", KldHistogram{});
  c.tasks = j.value("tasks", std::vector<TaskScore>{});
  c.tokens_per_second = j.value("tokens_per_second", 0.0);
  c.error = j.value("error", std::string());
}

nlohmann::json pipeline_report_json(const PipelineResult& r) {
  const PipelineConfig& c = r.config;
  nlohmann::json j;
  j["qforge_pipeline_report"] = 1;
  j["config"] = {{"source", c.source},
                 {"model", c.model},
                 {"eval_dataset", c.eval_dataset},
                 {"ctx", c.ctx},
                 {"stride", c.stride},
                 {"max_chunks", c.max_chunks},
                 {"scoring", c.scoring},
                 {"bos", c.bos},
                 {"kld_top_k", c.kld_top_k},
                 {"tasks", c.tasks},
                 {"calib_dataset", c.calib_dataset},
                 {"calib_samples", c.calib_samples},
                 {"calib_batch", c.calib_batch},
                 {"calib_max_length", c.calib_max_length},
                 {"precision", c.precision},
                 {"gate_max_delta_ppl_percent", c.gate.max_delta_ppl_percent}};
  j["baseline"] = r.baseline;
  j["calibration"] = r.calibration;
  nlohmann::json cands = nlohmann::json::array();
  for (const CandidateResult& cand : r.candidates) {
    nlohmann::json cj = cand;
    nlohmann::json deltas = nlohmann::json::array();
    for (size_t t = 0; t < cand.tasks.size() && t < r.baseline.tasks.size(); ++t) {
      deltas.push_back({{"task", cand.tasks[t].task},
                        {"delta_acc", cand.tasks[t].acc - r.baseline.tasks[t].acc},
                        {"delta_acc_norm", cand.tasks[t].acc_norm - r.baseline.tasks[t].acc_norm}});
    }
    cj["task_deltas"] = deltas;
    cands.push_back(std::move(cj));
  }
  j["candidates"] = cands;
  j["chosen"] = r.chosen >= 0
                    ? nlohmann::json(r.candidates[static_cast<size_t>(r.chosen)].candidate.name)
                    : nlohmann::json(nullptr);
  j["deployed_engine"] = r.deployed_engine;
  j["exit_code"] = r.exit_code;
  j["steps"] = r.steps;
  return j;
}

}  // namespace qforge
