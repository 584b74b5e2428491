// The configuration of `qforge pipeline` (a TOML file, docs/PIPELINE.md): the model, how the
// baseline and the candidates are evaluated (a fixed perplexity protocol, task files, a decode
// timing), the calibration samples, the engine build limits, the quality gate and the candidate
// quantizations. Every key is listed in pipeline_config_keys(), which both the parser (unknown
// keys are errors naming the valid ones) and `qforge pipeline --help` read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

struct PipelineCandidate {
  std::string name;                  // unique, [A-Za-z0-9_.-]+ (a directory name)
  std::string qformat;               // a `qforge quantize --qformat` name or a QuantAlgo name
  std::string kv_cache = "none";     // fp8, int8 or none
  int group_size = 128;              // INT4 group formats
  std::vector<std::string> exclude;  // module globs left unquantized (lm_head always is)
  bool exclude_incompatible = true;  // leave layers the format's blocks do not divide
  std::optional<double> max_delta_ppl_percent;  // overrides the gate's threshold
};

struct PipelineGate {
  double max_delta_ppl_percent = 0.5;  // pass: 100 * (PPL / PPL_base - 1) < this
  std::map<std::string, double> max_delta_ppl_percent_by_format;  // qformat -> threshold
  std::optional<double> max_mean_kld;                             // pass: mean KLD <= this
  std::optional<double> min_top1_agreement;  // pass: agreement (fraction) >= this
  std::optional<double> max_task_acc_drop;   // pass: acc_base - acc <= this (per task)
};

struct PipelineConfig {
  // [model]
  std::string model;      // HF directory, or any model qforge loads (converted to HF first)
  std::string tokenizer;  // empty: the one next to the model
  // [output]
  std::string output_dir = "qforge-pipeline";
  std::string engine;  // the deployed engine; empty: <output_dir>/model.engine
  // [eval]
  std::string eval_dataset;
  int64_t ctx = 256;
  int64_t stride = 0;
  int64_t max_chunks = 16;  // 0 = all
  bool bos = true;
  std::string scoring = "all";
  std::string doc_separator;
  int64_t kld_top_k = 64;
  std::vector<std::string> tasks;
  std::string task_format = "jsonl";
  int64_t task_limit = 0;
  std::string decode_prompt = "Once upon a time";
  int64_t decode_tokens = 32;
  // [calibration]
  std::vector<std::string> calib_dataset;  // empty: the eval dataset
  int64_t calib_samples = 32;
  int64_t calib_batch = 8;
  int64_t calib_max_length = 128;
  uint64_t calib_seed = 1234;
  std::string amax_method = "max";
  // [build]
  std::string precision = "f16";
  int64_t max_input_len = 256;
  int64_t max_seq_len = 512;
  int64_t max_batch_size = 4;
  bool kernel_selection = true;
  // [gate]
  PipelineGate gate;
  // [[candidate]]
  std::vector<PipelineCandidate> candidates;

  std::string source;  // the TOML file ("" for built-in defaults), for messages
};

// One documented key: `table` "eval", `key` "ctx" -> TOML `[eval] ctx = 256`.
struct PipelineKey {
  const char* table;  // "model", "output", "eval", "calibration", "build", "gate", "candidate"
  const char* key;
  const char* type;  // "string", "integer", "float", "bool", "array of strings", "table"
  const char* default_value;
  const char* help;
};
std::span<const PipelineKey> pipeline_config_keys();
// Every key as aligned text, grouped by table (for --help and docs).
std::string pipeline_config_help();

// Parses TOML text. Relative paths resolve against `base_dir` (the config file's directory).
// Errors: TOML syntax (line and column), an unknown table or key (naming it and listing the
// valid ones), a value of the wrong type, and validate_pipeline_config's checks.
Result<PipelineConfig> parse_pipeline_config(std::string_view toml_text, const std::string& source,
                                             const std::filesystem::path& base_dir);
Result<PipelineConfig> load_pipeline_config(const std::filesystem::path& path);

// The built-in settings for `qforge pipeline --model DIR` without --config: candidates fp8 (FP8
// KV cache), int4_awq and w8a16; `dataset` for calibration and evaluation.
PipelineConfig default_pipeline_config(const std::string& model, const std::string& dataset);

// Ranges and relations: a model and dataset, at least one candidate, unique valid names, known
// qformats / KV formats / scoring / precision / amax method, positive counts, ctx within the
// build's max_input_len (the engine evaluates chunks of ctx tokens).
Status validate_pipeline_config(const PipelineConfig& config);

// The ΔPPL % threshold of a candidate: its own, else the by-format one, else the default.
double candidate_ppl_threshold(const PipelineConfig& config, const PipelineCandidate& candidate);

}  // namespace qforge
