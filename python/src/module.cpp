// The qforge._qforge extension module; the package qforge/__init__.py re-exports it.
#include "bind_modules.h"
#include "py_common.h"

PYBIND11_MODULE(_qforge, m) {
  m.doc() = "qforge: LLM quantization and CPU inference (C++ library bindings)";
  qforge::python::bind_errors(m);
  qforge::python::bind_configs(m);
  qforge::python::bind_models(m);
  qforge::python::bind_quantize(m);
  qforge::python::bind_eval(m);
}
