// The parts of the qforge Python module, each bound in its own file (module.cpp calls them).
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "qforge/model/model.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge::python {

void bind_configs(pybind11::module_& m);   // bind_config.cpp
void bind_models(pybind11::module_& m);    // bind_llm.cpp: Tokenizer, Model, LLM, outputs
void bind_quantize(pybind11::module_& m);  // bind_quantize.cpp: quantize, convert, build
void bind_eval(pybind11::module_& m);      // bind_eval.cpp: perplexity, kl_divergence

// The Python Tokenizer and Model hold shared pointers to the immutable C++ objects.
struct PyTokenizer {
  std::shared_ptr<const Tokenizer> tokenizer;
};
struct PyModel {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when none was found
  std::string path;
  bool is_engine = false;
};

// The model behind a Python argument: a Model, an LLM, or a path (loaded as Model(path)).
PyModel model_from_arg(pybind11::handle value, const char* what);

}  // namespace qforge::python
