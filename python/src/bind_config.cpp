// QuantConfig, CalibConfig, BuildConfig and SamplingParams from Python: the C++ structs with
// TensorRT-LLM's keyword names, enum fields given as strings and parsed by the C++ parsers
// (whose errors list the valid values), validated on construction as the C++ API validates.
#include <limits>

#include "bind_modules.h"
#include "py_common.h"
#include "qforge/calib/calib_dataset.h"
#include "qforge/core/dtype.h"
#include "qforge/engine/build_config.h"
#include "qforge/quant/quant_config.h"
#include "qforge/runtime/sampling.h"

namespace qforge::python {
namespace {

constexpr QuantAlgo kLastAlgo = QuantAlgo::W4A16_AWQ_GPTQ;

// "float16" for F16 (the spelling TensorRT-LLM users write), dtype_name otherwise.
std::string precision_name(DType d) {
  switch (d) {
    case DType::F32:
      return "float32";
    case DType::F16:
      return "float16";
    case DType::BF16:
      return "bfloat16";
    default:
      return std::string(dtype_name(d));
  }
}

Result<QuantAlgo> parse_algo(const std::string& s) {
  return parse_quant_algo(s);
}
std::string algo_name(QuantAlgo a) {
  return std::string(quant_algo_name(a));
}

void bind_quant_config(py::module_& m) {
  py::class_<QuantConfig> cls(m, "QuantConfig",
                              "What quantize() does to a model (TensorRT-LLM's QuantConfig). "
                              "quant_algo / kv_cache_quant_algo take QuantAlgo names ('FP8', "
                              "'W4A16_AWQ', 'NVFP4', ...) or qformat short names ('int4_awq').");
  FieldTable<QuantConfig> t("QuantConfig");
  add_enum(t, "quant_algo", &QuantConfig::quant_algo, parse_algo, algo_name,
           "Weight/activation algorithm (QuantAlgo name or qformat).");
  add_enum(t, "kv_cache_quant_algo", &QuantConfig::kv_cache_quant_algo, parse_algo, algo_name,
           "KV cache: 'FP8', 'INT8' or 'NO_QUANT'.");
  add_member(t, "group_size", &QuantConfig::group_size, "INT4 group size (power of two >= 16).");
  add_member(t, "smoothquant_val", &QuantConfig::smoothquant_val, "SmoothQuant alpha in [0, 1].");
  add_member(t, "has_zero_point", &QuantConfig::has_zero_point,
             "Asymmetric INT4 (UINT4 codes with a zero point).");
  t.add(
      "clamp_val",
      [](py::handle, QuantConfig& q) -> py::object {
        return q.clamp_val > 0 ? py::cast(q.clamp_val) : py::none();
      },
      [](QuantConfig& q, py::handle v) {
        q.clamp_val = v.is_none() ? 0.0f : static_cast<float>(to_float(v, "QuantConfig.clamp_val"));
      },
      "Upper bound on calibrated activation amax (None: no clamp).");
  t.add(
      "exclude_modules", [](py::handle, QuantConfig& q) { return py::cast(q.exclude_modules); },
      [](QuantConfig& q, py::handle v) {
        q.exclude_modules = v.is_none() ? std::vector<std::string>{"lm_head"}
                                        : to_str_list(v, "QuantConfig.exclude_modules");
      },
      "Module globs left unquantized (lm_head and the embedding always are).");
  t.add(
      "layer_overrides",
      [](py::handle, QuantConfig& q) {
        py::dict d;
        for (const auto& [pattern, algo] : q.layer_overrides) {
          d[py::str(pattern)] = std::string(quant_algo_name(algo));
        }
        return py::object(d);
      },
      [](QuantConfig& q, py::handle v) {
        q.layer_overrides.clear();
        if (v.is_none()) return;
        if (!py::isinstance<py::dict>(v)) {
          throw py::type_error("QuantConfig.layer_overrides: expected a dict {glob: quant_algo}");
        }
        for (const auto& item : py::reinterpret_borrow<py::dict>(v)) {
          q.layer_overrides.emplace_back(
              to_str(item.first, "QuantConfig.layer_overrides key"),
              unwrap(parse_quant_algo(to_str(item.second, "QuantConfig.layer_overrides value"))));
        }
      },
      "Per-layer algorithms {module glob: quant_algo}; the first matching pattern wins.");
  add_member(t, "auto_quantize_bits", &QuantConfig::auto_quantize_bits,
             "MIXED_PRECISION: average bits per weight budget.");
  t.add(
      "auto_quantize_candidates",
      [](py::handle, QuantConfig& q) {
        py::list l;
        for (QuantAlgo a : q.auto_quantize_candidates) l.append(std::string(quant_algo_name(a)));
        return py::object(l);
      },
      [](QuantConfig& q, py::handle v) {
        q.auto_quantize_candidates.clear();
        for (const auto& s : to_str_list(v, "QuantConfig.auto_quantize_candidates")) {
          q.auto_quantize_candidates.push_back(unwrap(parse_quant_algo(s)));
        }
      },
      "MIXED_PRECISION: candidate algorithms.");
  add_member(t, "kv_cache_per_head", &QuantConfig::kv_cache_per_head,
             "One KV-cache scale per KV head (compressed-tensors export).");
  t.bind(cls, [](const QuantConfig& q) { return validate_quant_config(q); });
  cls.def_property_readonly(
      "qformat", [](const QuantConfig& q) { return std::string(qformat_for_algo(q.quant_algo)); },
      "The --qformat short name of quant_algo ('' when it has none).");
}

// calib_dataset: a path (str or os.PathLike) or a list of in-memory texts (str) and/or paths
// (os.PathLike items).
void set_calib_dataset(CalibConfig& c, py::handle v) {
  c.paths.clear();
  c.texts.clear();
  if (v.is_none()) return;
  py::module_ os = py::module_::import("os");
  if (py::isinstance<py::str>(v) || py::isinstance(v, os.attr("PathLike"))) {
    c.paths.push_back(path_string(v, "CalibConfig.calib_dataset"));
    return;
  }
  if (!py::isinstance<py::sequence>(v)) {
    throw py::type_error(
        "CalibConfig.calib_dataset: expected a path (str or os.PathLike) or a list of texts");
  }
  for (py::handle item : py::reinterpret_borrow<py::sequence>(v)) {
    if (py::isinstance<py::str>(item)) {
      c.texts.push_back(py::cast<std::string>(item));
    } else if (py::isinstance(item, os.attr("PathLike"))) {
      c.paths.push_back(path_string(item, "CalibConfig.calib_dataset[]"));
    } else {
      throw py::type_error(
          "CalibConfig.calib_dataset[]: expected a text (str) or a path (os.PathLike)");
    }
  }
}

py::object get_calib_dataset(const CalibConfig& c) {
  if (c.paths.empty() && c.texts.empty()) return py::none();
  if (c.texts.empty() && c.paths.size() == 1) return py::str(c.paths[0]);
  py::list l;
  py::object path_type = py::module_::import("pathlib").attr("Path");
  for (const auto& p : c.paths) l.append(path_type(p));
  for (const auto& t : c.texts) l.append(t);
  return l;
}

void bind_calib_config(py::module_& m) {
  py::class_<CalibConfig> cls(
      m, "CalibConfig",
      "Calibration data (TensorRT-LLM's CalibConfig). calib_dataset: a file or directory path "
      "(plain text, JSONL), or a list of in-memory texts (each str one document; pathlib.Path "
      "items are read as files).");
  FieldTable<CalibConfig> t("CalibConfig");
  t.add(
      "calib_dataset", [](py::handle, CalibConfig& c) { return get_calib_dataset(c); },
      set_calib_dataset, "A path, or a list of texts (str) / paths (os.PathLike).");
  add_member(t, "calib_size", &CalibConfig::calib_size, "Number of calibration samples.");
  add_member(t, "calib_batch_size", &CalibConfig::calib_batch_size,
             "Accepted for compatibility: samples run one at a time (no effect on results).");
  add_member(t, "calib_max_seq_length", &CalibConfig::calib_max_seq_length,
             "Tokens per sample (BOS included).");
  add_member(t, "random_seed", &CalibConfig::seed, "Seed of the sample choice.");
  add_member(t, "amax_method", &CalibConfig::amax_method,
             "Static input scales: 'max', 'percentile', 'mse' or 'entropy'.");
  add_member(t, "percentile", &CalibConfig::percentile, "Percentile for amax_method='percentile'.");
  add_member(t, "jsonl_text_field", &CalibConfig::jsonl_text_field, "JSONL text field.");
  add_member(t, "mix_evenly", &CalibConfig::mix_evenly,
             "Several sets (paths, the texts): calib_size split evenly across them.");
  // TensorRT-LLM hands calib_batches to ModelOpt as its calib_size (samples).
  t.alias("calib_batches", "calib_size");
  t.alias("seed", "random_seed");
  t.bind(cls, nullptr);
  cls.def(
      "validate", [](const CalibConfig& c) { unwrap(validate_calib_config(c)); },
      "Checks every field; raises InvalidArgumentError.");
}

void bind_build_config(py::module_& m) {
  py::class_<BuildConfig> cls(
      m, "BuildConfig",
      "The limits and choices an engine is built for (TensorRT-LLM's BuildConfig names). "
      "precision: 'float32', 'float16' or 'bfloat16'.");
  FieldTable<BuildConfig> t("BuildConfig");
  add_member(t, "max_input_len", &BuildConfig::max_input_len, "Longest prompt (tokens).");
  add_member(t, "max_seq_len", &BuildConfig::max_seq_len, "Prompt + generated tokens.");
  add_member(t, "max_batch_size", &BuildConfig::max_batch_size, "Sequences running at once.");
  add_member(t, "max_num_tokens", &BuildConfig::max_num_tokens,
             "Tokens per forward step (0: max(max_input_len, max_batch_size)).");
  add_enum(t, "precision", &BuildConfig::precision, parse_dtype, precision_name,
           "Dense weight / activation precision.");
  t.add(
      "quant_config",
      // A copy (a reference into the optional would dangle once it is reset): assign a
      // changed QuantConfig back to change it.
      [](py::handle, BuildConfig& b) -> py::object {
        if (!b.quant_config) return py::none();
        return py::cast(*b.quant_config);
      },
      [](BuildConfig& b, py::handle v) {
        if (v.is_none()) {
          b.quant_config.reset();
        } else if (py::isinstance<QuantConfig>(v)) {
          b.quant_config = v.cast<QuantConfig>();
        } else {
          throw py::type_error("BuildConfig.quant_config: expected a QuantConfig or None");
        }
      },
      "Quantization of an unquantized checkpoint (None: as it is); reading it gives a copy.");
  add_member(t, "kv_cache_block_size", &BuildConfig::kv_cache_block_size,
             "Tokens per KV-cache page.");
  t.add(
      "kv_cache_storage",
      [](py::handle, BuildConfig& b) -> py::object {
        if (!b.kv_cache_storage) return py::none();
        return py::str(std::string(kv_cache_storage_name(*b.kv_cache_storage)));
      },
      [](BuildConfig& b, py::handle v) {
        if (v.is_none()) {
          b.kv_cache_storage.reset();
        } else {
          b.kv_cache_storage =
              unwrap(parse_kv_cache_storage(to_str(v, "BuildConfig.kv_cache_storage")));
        }
      },
      "KV-cache element type 'f32', 'f16', 'bf16', 'fp8', 'int8' (None: the checkpoint's, else "
      "precision).");
  add_member(t, "kv_cache_blocks", &BuildConfig::kv_cache_blocks,
             "Pages in the KV pool (0: enough for max_batch_size x max_seq_len).");
  add_enum(t, "backend", &BuildConfig::backend, parse_backend, backend_name, "'cpu' or 'cuda'.");
  add_member(t, "kernel_selection", &BuildConfig::kernel_selection,
             "Time the candidate kernels per layer shape and keep the fastest.");
  add_member(t, "memory_budget_bytes", &BuildConfig::memory_budget_bytes,
             "Memory the engine may fill (0: physical memory).");
  t.bind(cls, [](const BuildConfig& b) { return validate_build_config(b); });
}

void bind_sampling_params(py::module_& m) {
  py::class_<SamplingParams> cls(
      m, "SamplingParams",
      "How LLM.generate picks tokens (TensorRT-LLM / vLLM names). temperature 0 (the default) is "
      "greedy.");
  FieldTable<SamplingParams> t("SamplingParams");
  add_member(t, "max_tokens", &SamplingParams::max_tokens, "New tokens at most.");
  add_member(t, "temperature", &SamplingParams::temperature, "0 = greedy.");
  add_member(t, "top_k", &SamplingParams::top_k, "Keep the k most likely tokens (0 = all).");
  add_member(t, "top_p", &SamplingParams::top_p, "Nucleus mass in (0, 1].");
  add_member(t, "min_p", &SamplingParams::min_p, "Keep p >= min_p * p(most likely).");
  add_member(t, "repetition_penalty", &SamplingParams::repetition_penalty, "1 = off.");
  add_member(t, "seed", &SamplingParams::seed, "Same seed and inputs, same tokens.");
  add_member(t, "stop", &SamplingParams::stop, "Stop strings (a str or a list).");
  t.add(
      "stop_token_ids", [](py::handle, SamplingParams& p) { return py::cast(p.stop_token_ids); },
      [](SamplingParams& p, py::handle v) {
        p.stop_token_ids = to_int_list(v, "SamplingParams.stop_token_ids");
      },
      "Generation ends after any of these ids.");
  add_member(t, "ignore_eos", &SamplingParams::ignore_eos, "Keep going past EOS.");
  t.add(
      "logprobs",
      [](py::handle, SamplingParams& p) -> py::object {
        return p.logprobs ? py::cast(*p.logprobs) : py::none();
      },
      [](SamplingParams& p, py::handle v) {
        if (v.is_none()) {
          p.logprobs.reset();
        } else {
          p.logprobs = to_int(v, "SamplingParams.logprobs");
        }
      },
      "None, or N: each token's log-probability and the N most likely.");
  t.alias("random_seed", "seed");
  t.bind(cls, [](const SamplingParams& p) { return validate_sampling_params(p); });
}

}  // namespace

void bind_configs(py::module_& m) {
  m.def(
      "quant_algo_names",
      [] {
        std::vector<std::string> out;
        for (int i = 0; i <= static_cast<int>(kLastAlgo); ++i) {
          out.emplace_back(quant_algo_name(static_cast<QuantAlgo>(i)));
        }
        return out;
      },
      "Every QuantAlgo name, in the C++ enum's order.");
  m.def(
      "qformats",
      [] {
        std::vector<std::tuple<std::string, std::string, std::string>> out;
        for (const auto& q : qformat_names()) {
          out.emplace_back(q.qformat, std::string(quant_algo_name(q.algo)), q.description);
        }
        return out;
      },
      "(qformat, QuantAlgo name, description) of every --qformat short name.");
  bind_quant_config(m);
  bind_calib_config(m);
  bind_build_config(m);
  bind_sampling_params(m);
}

}  // namespace qforge::python
