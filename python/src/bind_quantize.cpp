// quantize(), convert() and build() from Python. quantize() takes the calibration data as
// in-memory texts (CalibConfig::texts) or paths; it releases the GIL and checks for Ctrl-C after
// every decoder block (an interrupted run leaves <output_dir>.partial, which resume=True
// continues).
#include "bind_modules.h"
#include "py_common.h"
#include "qforge/engine/engine.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/quant/quantize.h"

namespace qforge::python {
namespace {

QuantizeReport run_quantize(py::handle model_dir, py::handle output_dir, py::object quant_config,
                            py::object calib_config, const std::string& export_format,
                            bool overwrite, bool resume, uint64_t max_memory,
                            int64_t awq_max_tokens, int awq_grid, bool show_progress,
                            py::object on_block, const py::kwargs& calib) {
  QuantizeOptions o;
  o.model_dir = path_string(model_dir, "quantize: model_dir");
  o.output_dir = path_string(output_dir, "quantize: output_dir");
  if (!quant_config.is_none()) {
    if (!py::isinstance<QuantConfig>(quant_config)) {
      throw py::type_error("quantize: quant_config: expected a QuantConfig or None");
    }
    o.quant_config = quant_config.cast<QuantConfig>();
  }
  py::object cc = calib_config.is_none()
                      ? py::module_::import("qforge._qforge").attr("CalibConfig")()
                      : py::module_::import("copy").attr("copy")(calib_config);
  if (!py::isinstance<CalibConfig>(cc)) {
    throw py::type_error("quantize: calib_config: expected a CalibConfig or None");
  }
  // calib_dataset=..., calib_batch_size=..., ...: CalibConfig keywords on top of calib_config.
  cc.attr("_update")("quantize()", **calib);
  o.calib = cc.cast<CalibConfig>();
  o.export_format = unwrap(parse_quant_export_format(export_format));
  o.overwrite = overwrite;
  o.resume = resume;
  o.max_memory = max_memory;
  o.awq_max_tokens = awq_max_tokens;
  o.awq_grid = awq_grid;
  o.show_progress = show_progress;
  if (!on_block.is_none() && !PyCallable_Check(on_block.ptr())) {
    throw py::type_error("quantize: on_block must be callable");
  }
  Interrupt interrupt;
  // After each block is durably written: the caller's progress callback, then Ctrl-C.
  o.after_block = [&interrupt, &on_block](int64_t block) {
    if (!on_block.is_none()) {
      py::gil_scoped_acquire gil;
      try {
        on_block(block);
      } catch (py::error_already_set& err) {
        interrupt.keep(std::move(err));
      }
    }
    return interrupt.check();
  };
  Result<QuantizeReport> r = without_gil([&] { return quantize(o); });
  interrupt.rethrow();
  return unwrap(std::move(r));
}

std::vector<std::string> run_convert(py::handle model, py::handle output_dir,
                                     const std::string& dtype, py::object tokenizer,
                                     bool overwrite) {
  const std::string src = path_string(model, "convert: model");
  const std::string out = path_string(output_dir, "convert: output_dir");
  HfExportOptions o;
  o.dtype = unwrap(parse_dtype(dtype));
  o.overwrite = overwrite;
  if (!tokenizer.is_none()) o.tokenizer_path = path_string(tokenizer, "convert: tokenizer");
  HfExportReport report;
  unwrap(without_gil([&]() -> Status {
    QF_ASSIGN_OR_RETURN(LoadedModel loaded, load_model(src));
    return export_hf_checkpoint(loaded, out, o, &report);
  }));
  return report.files;
}

EngineBuildReport run_build(py::handle checkpoint_dir, py::handle output, py::object build_config) {
  const std::string dir = path_string(checkpoint_dir, "build: checkpoint_dir");
  const std::string out = path_string(output, "build: output");
  const BuildConfig bc = build_config.is_none() ? BuildConfig{} : build_config.cast<BuildConfig>();
  return unwrap(without_gil([&] { return build_engine(dir, bc, out); }));
}

}  // namespace

void bind_quantize(py::module_& m) {
  py::class_<LayerQuantReport>(m, "LayerQuantReport", "What quantize() did to one linear layer.")
      .def_readonly("module", &LayerQuantReport::module)
      .def_readonly("format", &LayerQuantReport::format)
      .def_readonly("algorithm", &LayerQuantReport::algorithm)
      .def_readonly("weight_rel_error", &LayerQuantReport::weight_rel_error)
      .def_readonly("output_rel_error", &LayerQuantReport::output_rel_error)
      .def_readonly("input_scale", &LayerQuantReport::input_scale)
      .def_readonly("calib_tokens", &LayerQuantReport::calib_tokens)
      .def("__repr__", [](const LayerQuantReport& l) {
        return "LayerQuantReport(module='" + l.module + "', format='" + l.format +
               "', algorithm='" + l.algorithm + "')";
      });
  py::class_<QuantizeReport>(m, "QuantizeReport", "What quantize() wrote.")
      .def_readonly("layers", &QuantizeReport::layers)
      .def_readonly("auto_quantize_plan", &QuantizeReport::auto_quantize_plan)
      .def_readonly("calib_samples", &QuantizeReport::calib_samples)
      .def_readonly("calib_tokens", &QuantizeReport::calib_tokens)
      .def_readonly("calib_documents", &QuantizeReport::calib_documents)
      .def_readonly("blocks_resumed", &QuantizeReport::blocks_resumed)
      .def_readonly("output_bytes", &QuantizeReport::output_bytes)
      .def_readonly("peak_rss_bytes", &QuantizeReport::peak_rss_bytes)
      .def_readonly("seconds", &QuantizeReport::seconds);
  m.def("quantize", &run_quantize, py::arg("model_dir"), py::arg("output_dir"),
        py::arg("quant_config") = py::none(), py::arg("calib_config") = py::none(), py::kw_only(),
        py::arg("export_format") = "modelopt", py::arg("overwrite") = false,
        py::arg("resume") = false, py::arg("max_memory") = 0, py::arg("awq_max_tokens") = 2048,
        py::arg("awq_grid") = 20, py::arg("show_progress") = false,
        py::arg("on_block") = py::none(),
        "Calibrates and quantizes a Hugging Face model directory into a ModelOpt/TensorRT-LLM "
        "(export_format='modelopt') or compressed-tensors checkpoint. Other keywords are "
        "CalibConfig's (calib_dataset=[texts...] or a path, calib_size, calib_batch_size, "
        "calib_max_seq_length, random_seed, ...). on_block(index) is called after each decoder "
        "block is written; an exception from it, or Ctrl-C, stops the run there (the "
        "<output_dir>.partial directory is kept for resume=True).");
  py::class_<EngineBuildReport>(m, "EngineBuildReport", "What build() wrote.")
      .def_readonly("file_bytes", &EngineBuildReport::file_bytes)
      .def_readonly("seconds", &EngineBuildReport::seconds)
      .def_readonly("kernel_choices", &EngineBuildReport::kernel_choices);
  m.def("convert", &run_convert, py::arg("model"), py::arg("output_dir"),
        py::arg("dtype") = "float32", py::arg("tokenizer") = py::none(),
        py::arg("overwrite") = false,
        "Writes any model qforge reads (llama2.c .bin, GGUF, HF) as a Hugging Face checkpoint "
        "directory (what quantize() takes). Returns the file names written.");
  m.def("build", &run_build, py::arg("checkpoint_dir"), py::arg("output"),
        py::arg("build_config") = py::none(),
        "Builds a checkpoint into one .engine file (`qforge build`).");
}

}  // namespace qforge::python
