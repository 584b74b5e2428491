// pipeline_config.h: the key table, the TOML reader (toml++, Debian libtomlplusplus-dev) and the
// checks. toml++ throws on syntax errors; the exception is caught here and never leaves.
#include "qforge/pipeline/pipeline_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <set>

#include "qforge/calib/observer.h"
#include "qforge/core/dtype.h"
#include "qforge/core/text_file.h"
#include "qforge/eval/multiple_choice.h"
#include "qforge/eval/perplexity.h"
#include "qforge/quant/quant_config.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

constexpr PipelineKey kKeys[] = {
    {"model", "path", "string", "(required)",
     "Model to quantize: a Hugging Face directory, or any model qforge loads (llama2.c .bin, "
     "GGUF, .safetensors), converted to an F32 HF directory first"},
    {"model", "tokenizer", "string", "\"\"",
     "Tokenizer file for a model that has none beside it (copied into the converted HF dir)"},
    {"output", "dir", "string", "\"qforge-pipeline\"",
     "Working directory: steps/ (reusable step results), report.md, report.html, report.json"},
    {"output", "engine", "string", "\"<dir>/model.engine\"",
     "Where the chosen candidate's engine is deployed (written atomically)"},
    {"eval", "dataset", "string", "(required)", "UTF-8 text for perplexity and KL divergence"},
    {"eval", "ctx", "integer", "256", "Tokens per perplexity chunk, BOS included"},
    {"eval", "stride", "integer", "0", "Text ids between chunk starts (0 = non-overlapping)"},
    {"eval", "max_chunks", "integer", "16", "Chunks scored (0 = the whole text)"},
    {"eval", "bos", "bool", "true", "Prepend BOS to every chunk"},
    {"eval", "scoring", "string", "\"all\"", "all, or second-half (tokens past ctx/2 only)"},
    {"eval", "doc_separator", "string", "\"\"",
     "Document mode: split the text on this string, one chunk per document"},
    {"eval", "kld_top_k", "integer", "64",
     "Baseline log-probs kept per token for KL divergence (0 = full vocabulary)"},
    {"eval", "tasks", "array of strings", "[]", "Multiple-choice task files (JSONL)"},
    {"eval", "task_format", "string", "\"jsonl\"", "jsonl or hellaswag"},
    {"eval", "task_limit", "integer", "0", "Examples scored per task (0 = all)"},
    {"eval", "decode_prompt", "string", "\"Once upon a time\"", "Prompt of the tokens/s timing"},
    {"eval", "decode_tokens", "integer", "32", "Greedy tokens generated for the tokens/s timing"},
    {"calibration", "dataset", "array of strings", "[eval.dataset]",
     "Calibration text files or directories (plain text or JSONL with a text field)"},
    {"calibration", "samples", "integer", "32", "Calibration samples (quantize --calib-size)"},
    {"calibration", "batch", "integer", "8", "Samples per batch (quantize --calib-batch-size)"},
    {"calibration", "max_length", "integer", "128", "Tokens per sample, BOS included"},
    {"calibration", "seed", "integer", "1234", "Seed choosing the samples"},
    {"calibration", "amax_method", "string", "\"max\"",
     "Static activation ranges: max, percentile, mse or entropy"},
    {"build", "precision", "string", "\"f16\"", "Dense weights of the engine: f32, f16 or bf16"},
    {"build", "max_input_len", "integer", "256", "Longest prompt (>= eval.ctx)"},
    {"build", "max_seq_len", "integer", "512", "Prompt + generated tokens (>= eval.ctx)"},
    {"build", "max_batch_size", "integer", "4", "Sequences running at once"},
    {"build", "kernel_selection", "bool", "true", "Time candidate kernels, keep the fastest"},
    {"gate", "max_delta_ppl_percent", "float", "0.5",
     "Pass when 100 * (PPL / PPL_base - 1) is below this"},
    {"gate", "max_delta_ppl_percent_by_format", "table", "{}",
     "Per-qformat thresholds, e.g. { int4_awq = 3.0, fp8 = 0.5 }"},
    {"gate", "max_mean_kld", "float", "(off)", "Pass only when the mean KLD is at most this"},
    {"gate", "min_top1_agreement", "float", "(off)",
     "Pass only when the top-1 agreement (a fraction in [0, 1]) is at least this"},
    {"gate", "max_task_acc_drop", "float", "(off)",
     "Pass only when every task's acc drops by at most this (a fraction, 0.02 = 2 points)"},
    {"candidate", "name", "string", "(the qformat)", "Unique name: [A-Za-z0-9_.-]+"},
    {"candidate", "qformat", "string", "(required)",
     "fp8, fp8_pc_pt, int8_wo, int4_wo, int4_awq, int4_gptq, int8_sq, w4a8_awq, nvfp4, mxfp4, ... "
     "(qforge quantize --help lists them)"},
    {"candidate", "kv_cache", "string", "\"none\"", "KV-cache quantization: fp8, int8 or none"},
    {"candidate", "group_size", "integer", "128", "INT4 group size (a power of two >= 16)"},
    {"candidate", "exclude", "array of strings", "[]", "Module globs left unquantized"},
    {"candidate", "exclude_incompatible", "bool", "true",
     "Leave layers unquantized whose input width the format's blocks do not divide"},
    {"candidate", "max_delta_ppl_percent", "float", "(gate's)", "This candidate's ΔPPL % gate"},
};

constexpr const char* kTables[] = {"model", "output", "eval", "calibration", "build", "gate"};

std::string valid_keys(std::string_view table) {
  std::string out;
  for (const PipelineKey& k : kKeys) {
    if (table == k.table) out += (out.empty() ? "" : ", ") + std::string(k.key);
  }
  return out;
}

const char* node_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a bool";
    default:
      return "a date/time";
  }
}

// Reads typed values out of one TOML table, checking every key against the key table.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string name, std::string source, fs::path base)
      : t_(t), name_(std::move(name)), source_(std::move(source)), base_(std::move(base)) {}

  Status check_keys(std::string_view key_table) const {
    for (auto&& [k, v] : t_) {
      bool known = false;
      for (const PipelineKey& pk : kKeys) {
        known = known || (key_table == pk.table && k.str() == pk.key);
      }
      if (!known) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}:{}: unknown key '{}' in [{}]; valid keys: {}", source_,
                          k.source().begin.line, k.str(), name_, valid_keys(key_table));
      }
    }
    return ok_status();
  }

  Status get(const char* key, std::string& out, bool path = false) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return ok_status();
    if (!n->is_string()) return type_error(key, "a string", *n);
    out = **n->as_string();
    if (path && !out.empty()) out = resolve(out);
    return ok_status();
  }
  Status get(const char* key, int64_t& out) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return ok_status();
    if (!n->is_integer()) return type_error(key, "an integer", *n);
    out = **n->as_integer();
    return ok_status();
  }
  Status get(const char* key, int& out) const {
    int64_t v = out;
    QF_TRY(get(key, v));
    if (v < INT32_MIN || v > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument, "{}: {}.{} = {} is out of range", source_,
                        name_, key, v);
    }
    out = static_cast<int>(v);
    return ok_status();
  }
  Status get(const char* key, double& out) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return ok_status();
    if (n->is_integer()) {
      out = static_cast<double>(**n->as_integer());
    } else if (n->is_floating_point()) {
      out = **n->as_floating_point();
    } else {
      return type_error(key, "a number", *n);
    }
    return ok_status();
  }
  Status get(const char* key, std::optional<double>& out) const {
    if (t_.get(key) == nullptr) return ok_status();
    double v = 0;
    QF_TRY(get(key, v));
    out = v;
    return ok_status();
  }
  Status get(const char* key, bool& out) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return ok_status();
    if (!n->is_boolean()) return type_error(key, "true or false", *n);
    out = **n->as_boolean();
    return ok_status();
  }
  Status get(const char* key, std::vector<std::string>& out, bool path = false) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return ok_status();
    if (n->is_string()) {  // a single path is accepted as a one-element list
      out = {path ? resolve(**n->as_string()) : **n->as_string()};
      return ok_status();
    }
    if (!n->is_array()) return type_error(key, "an array of strings", *n);
    out.clear();
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string()) return type_error(key, "an array of strings", e);
      out.push_back(path ? resolve(**e.as_string()) : **e.as_string());
    }
    return ok_status();
  }

 private:
  std::string resolve(const std::string& p) const {
    const fs::path q(p);
    return q.is_absolute() || base_.empty() ? p : (base_ / q).lexically_normal().string();
  }
  Error type_error(const char* key, const char* want, const toml::node& n) const {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: {}.{} must be {}, got {}", source_,
                      n.source().begin.line, name_, key, want, node_type_name(n));
  }

  const toml::table& t_;
  std::string name_, source_;
  fs::path base_;
};

const toml::table& empty_table() {
  static const toml::table t;
  return t;
}

Result<const toml::table*> sub_table(const toml::table& root, const char* name,
                                     const std::string& source) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return &empty_table();
  if (!n->is_table()) {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: '{}' must be a table ([{}])", source,
                      n->source().begin.line, name, name);
  }
  return n->as_table();
}

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
         });
}

Status check_positive(const std::string& what, int64_t v, int64_t min = 1) {
  if (v < min) {
    return make_error(ErrorCode::kInvalidArgument, "{} = {} must be >= {}", what, v, min);
  }
  return ok_status();
}

Status parse_into(const toml::table& root, const std::string& source, const fs::path& base,
                  PipelineConfig& c) {
  for (auto&& [k, v] : root) {
    const bool known = k.str() == "candidate" ||
                       std::find_if(std::begin(kTables), std::end(kTables), [&](const char* t) {
                         return k.str() == t;
                       }) != std::end(kTables);
    if (!known) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}:{}: unknown table '{}'; valid tables: [model], [output], [eval], "
                        "[calibration], [build], [gate], [[candidate]]",
                        source, k.source().begin.line, k.str());
    }
  }
  QF_ASSIGN_OR_RETURN(const toml::table* model, sub_table(root, "model", source));
  TableReader m(*model, "model", source, base);
  QF_TRY(m.check_keys("model"));
  QF_TRY(m.get("path", c.model, true));
  QF_TRY(m.get("tokenizer", c.tokenizer, true));

  QF_ASSIGN_OR_RETURN(const toml::table* output, sub_table(root, "output", source));
  TableReader o(*output, "output", source, base);
  QF_TRY(o.check_keys("output"));
  QF_TRY(o.get("dir", c.output_dir, true));
  QF_TRY(o.get("engine", c.engine, true));

  QF_ASSIGN_OR_RETURN(const toml::table* eval, sub_table(root, "eval", source));
  TableReader e(*eval, "eval", source, base);
  QF_TRY(e.check_keys("eval"));
  QF_TRY(e.get("dataset", c.eval_dataset, true));
  QF_TRY(e.get("ctx", c.ctx));
  QF_TRY(e.get("stride", c.stride));
  QF_TRY(e.get("max_chunks", c.max_chunks));
  QF_TRY(e.get("bos", c.bos));
  QF_TRY(e.get("scoring", c.scoring));
  QF_TRY(e.get("doc_separator", c.doc_separator));
  QF_TRY(e.get("kld_top_k", c.kld_top_k));
  QF_TRY(e.get("tasks", c.tasks, true));
  QF_TRY(e.get("task_format", c.task_format));
  QF_TRY(e.get("task_limit", c.task_limit));
  QF_TRY(e.get("decode_prompt", c.decode_prompt));
  QF_TRY(e.get("decode_tokens", c.decode_tokens));

  QF_ASSIGN_OR_RETURN(const toml::table* calib, sub_table(root, "calibration", source));
  TableReader k(*calib, "calibration", source, base);
  QF_TRY(k.check_keys("calibration"));
  QF_TRY(k.get("dataset", c.calib_dataset, true));
  QF_TRY(k.get("samples", c.calib_samples));
  QF_TRY(k.get("batch", c.calib_batch));
  QF_TRY(k.get("max_length", c.calib_max_length));
  int64_t seed = static_cast<int64_t>(c.calib_seed);
  QF_TRY(k.get("seed", seed));
  QF_TRY(check_positive("calibration.seed", seed, 0));
  c.calib_seed = static_cast<uint64_t>(seed);
  QF_TRY(k.get("amax_method", c.amax_method));

  QF_ASSIGN_OR_RETURN(const toml::table* build, sub_table(root, "build", source));
  TableReader b(*build, "build", source, base);
  QF_TRY(b.check_keys("build"));
  QF_TRY(b.get("precision", c.precision));
  QF_TRY(b.get("max_input_len", c.max_input_len));
  QF_TRY(b.get("max_seq_len", c.max_seq_len));
  QF_TRY(b.get("max_batch_size", c.max_batch_size));
  QF_TRY(b.get("kernel_selection", c.kernel_selection));

  QF_ASSIGN_OR_RETURN(const toml::table* gate, sub_table(root, "gate", source));
  TableReader g(*gate, "gate", source, base);
  QF_TRY(g.check_keys("gate"));
  QF_TRY(g.get("max_delta_ppl_percent", c.gate.max_delta_ppl_percent));
  QF_TRY(g.get("max_mean_kld", c.gate.max_mean_kld));
  QF_TRY(g.get("min_top1_agreement", c.gate.min_top1_agreement));
  QF_TRY(g.get("max_task_acc_drop", c.gate.max_task_acc_drop));
  if (const toml::node* by = gate->get("max_delta_ppl_percent_by_format")) {
    if (!by->is_table()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}:{}: gate.max_delta_ppl_percent_by_format must be a table of "
                        "qformat = number",
                        source, by->source().begin.line);
    }
    for (auto&& [fk, fv] : *by->as_table()) {
      if (!fv.is_number()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}:{}: gate.max_delta_ppl_percent_by_format.{} must be a number", source,
                          fk.source().begin.line, fk.str());
      }
      if (!parse_qformat(fk.str()).ok()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}:{}: gate.max_delta_ppl_percent_by_format: '{}' is not a qformat",
                          source, fk.source().begin.line, fk.str());
      }
      c.gate.max_delta_ppl_percent_by_format[std::string(fk.str())] =
          fv.is_integer() ? static_cast<double>(**fv.as_integer()) : **fv.as_floating_point();
    }
  }

  if (const toml::node* cands = root.get("candidate")) {
    if (!cands->is_array_of_tables()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}:{}: 'candidate' must be an array of tables ([[candidate]] blocks)",
                        source, cands->source().begin.line);
    }
    for (const toml::node& n : *cands->as_array()) {
      PipelineCandidate cand;
      TableReader r(*n.as_table(), "candidate", source, base);
      QF_TRY(r.check_keys("candidate"));
      QF_TRY(r.get("qformat", cand.qformat));
      QF_TRY(r.get("name", cand.name));
      if (cand.name.empty()) cand.name = cand.qformat;
      QF_TRY(r.get("kv_cache", cand.kv_cache));
      QF_TRY(r.get("group_size", cand.group_size));
      QF_TRY(r.get("exclude", cand.exclude));
      QF_TRY(r.get("exclude_incompatible", cand.exclude_incompatible));
      QF_TRY(r.get("max_delta_ppl_percent", cand.max_delta_ppl_percent));
      c.candidates.push_back(std::move(cand));
    }
  }
  if (c.calib_dataset.empty() && !c.eval_dataset.empty()) c.calib_dataset = {c.eval_dataset};
  return ok_status();
}

}  // namespace

std::span<const PipelineKey> pipeline_config_keys() {
  return kKeys;
}

std::string pipeline_config_help() {
  std::string out;
  std::string table;
  for (const PipelineKey& k : kKeys) {
    if (table != k.table) {
      table = k.table;
      out += table == "candidate" ? "\n[[candidate]]  (one block per candidate)\n"
                                  : "\n[" + table + "]\n";
    }
    out += fmt::format("  {:<32} {:<17} default {}\n      {}\n", k.key, k.type, k.default_value,
                       k.help);
  }
  return out;
}

Result<PipelineConfig> parse_pipeline_config(std::string_view toml_text, const std::string& source,
                                             const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}:{}: TOML syntax error: {}", source,
                      e.source().begin.line, e.source().begin.column, e.description());
  }
  PipelineConfig c;
  c.candidates.clear();
  c.source = source;
  QF_TRY(parse_into(root, source, base_dir, c));
  QF_TRY(validate_pipeline_config(c).context(source));
  return c;
}

Result<PipelineConfig> load_pipeline_config(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(path, "--config", uint64_t{1} << 20));
  QF_TRY(check_utf8_text(text, fmt::format("--config '{}'", path.string())));
  return parse_pipeline_config(text, path.string(), fs::absolute(path).parent_path());
}

PipelineConfig default_pipeline_config(const std::string& model, const std::string& dataset) {
  PipelineConfig c;
  c.model = model;
  c.eval_dataset = dataset;
  c.calib_dataset = {dataset};
  PipelineCandidate fp8;
  fp8.name = "fp8";
  fp8.qformat = "fp8";
  fp8.kv_cache = "fp8";
  PipelineCandidate awq;
  awq.name = "int4_awq";
  awq.qformat = "int4_awq";
  PipelineCandidate w8;
  w8.name = "w8a16";
  w8.qformat = "int8_wo";
  c.candidates = {fp8, awq, w8};
  // INT4 loses more than half a percent on small models; its own gate says what is acceptable.
  c.gate.max_delta_ppl_percent_by_format["int4_awq"] = 5.0;
  c.source = "built-in defaults";
  return c;
}

Status validate_pipeline_config(const PipelineConfig& c) {
  if (c.model.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no model: set [model] path or pass --model DIR");
  }
  if (c.eval_dataset.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "no evaluation text: set [eval] dataset");
  }
  if (c.output_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "[output] dir is empty");
  }
  if (c.candidates.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no candidates: add at least one [[candidate]] block with a qformat");
  }
  QF_TRY(check_positive("eval.ctx", c.ctx, 2));
  QF_TRY(check_positive("eval.stride", c.stride, 0));
  QF_TRY(check_positive("eval.max_chunks", c.max_chunks, 0));
  QF_TRY(check_positive("eval.kld_top_k", c.kld_top_k, 0));
  QF_TRY(check_positive("eval.task_limit", c.task_limit, 0));
  QF_TRY(check_positive("eval.decode_tokens", c.decode_tokens, 1));
  QF_TRY(check_positive("calibration.samples", c.calib_samples));
  QF_TRY(check_positive("calibration.batch", c.calib_batch));
  QF_TRY(check_positive("calibration.max_length", c.calib_max_length, 2));
  QF_TRY(check_positive("build.max_input_len", c.max_input_len));
  QF_TRY(check_positive("build.max_seq_len", c.max_seq_len));
  QF_TRY(check_positive("build.max_batch_size", c.max_batch_size));
  if (c.ctx > c.max_input_len || c.ctx > c.max_seq_len) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval.ctx = {} exceeds build.max_input_len = {} or build.max_seq_len = {} "
                      "(the engines evaluate whole chunks)",
                      c.ctx, c.max_input_len, c.max_seq_len);
  }
  QF_TRY(parse_ppl_scoring(c.scoring).context("eval.scoring"));
  QF_TRY(parse_mc_format(c.task_format).context("eval.task_format"));
  QF_TRY(parse_amax_method(c.amax_method).context("calibration.amax_method"));
  if (c.precision != "f32" && c.precision != "f16" && c.precision != "bf16") {
    return make_error(ErrorCode::kInvalidArgument,
                      "build.precision = '{}': expected f32, f16 or bf16", c.precision);
  }
  if (!(c.gate.max_delta_ppl_percent == c.gate.max_delta_ppl_percent)) {
    return make_error(ErrorCode::kInvalidArgument, "gate.max_delta_ppl_percent is NaN");
  }
  std::set<std::string> names;
  for (const PipelineCandidate& cand : c.candidates) {
    if (cand.qformat.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "candidate '{}' has no qformat", cand.name);
    }
    QF_ASSIGN_OR_RETURN(
        QuantAlgo algo,
        parse_qformat(cand.qformat).context(fmt::format("candidate '{}'", cand.name)));
    if (algo == QuantAlgo::NO_QUANT || algo == QuantAlgo::MIXED_PRECISION) {
      return make_error(ErrorCode::kInvalidArgument,
                        "candidate '{}': qformat '{}' is not supported by the pipeline (pick a "
                        "uniform format)",
                        cand.name, cand.qformat);
    }
    if (!valid_name(cand.name)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "candidate name '{}' must be 1-64 characters of [A-Za-z0-9_.-]", cand.name);
    }
    if (!names.insert(cand.name).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        "two candidates are named '{}'; give each a unique name", cand.name);
    }
    if (cand.kv_cache != "none" && cand.kv_cache != "fp8" && cand.kv_cache != "int8") {
      return make_error(ErrorCode::kInvalidArgument,
                        "candidate '{}': kv_cache = '{}': expected fp8, int8 or none", cand.name,
                        cand.kv_cache);
    }
  }
  return ok_status();
}

double candidate_ppl_threshold(const PipelineConfig& config, const PipelineCandidate& candidate) {
  if (candidate.max_delta_ppl_percent) return *candidate.max_delta_ppl_percent;
  auto it = config.gate.max_delta_ppl_percent_by_format.find(candidate.qformat);
  if (it != config.gate.max_delta_ppl_percent_by_format.end()) return it->second;
  return config.gate.max_delta_ppl_percent;
}

}  // namespace qforge
