// py_common.h: the exception classes, Ctrl-C checks, NumPy views and argument conversions.
#include "py_common.h"

#include <map>

namespace qforge::python {
namespace {

// Exception classes by ErrorCode, created once in bind_errors.
std::map<ErrorCode, py::object>& error_types() {
  static auto* types = new std::map<ErrorCode, py::object>();  // never destroyed: interpreter owns
  return *types;
}

py::object make_exception_type(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  const std::string full = std::string("qforge.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  py::object t = py::reinterpret_steal<py::object>(type);
  m.attr(name) = t;
  return t;
}

std::string type_name(py::handle v) {
  return py::str(py::type::handle_of(v).attr("__name__"));
}

}  // namespace

void bind_errors(py::module_& m) {
  py::object base = make_exception_type(
      m, "QforgeError",
      "Base class of every error qforge's C++ library reports. str(e) is the full message (what "
      "the qforge CLI prints); e.code names the kind, e.message is the innermost message and "
      "e.context the frames around it (outermost first).",
      py::make_tuple(py::handle(PyExc_Exception)));
  auto& types = error_types();
  types[ErrorCode::kInvalidArgument] = make_exception_type(
      m, "InvalidArgumentError", "A value is out of range or malformed (also a ValueError).",
      py::make_tuple(base, py::handle(PyExc_ValueError)));
  types[ErrorCode::kNotFound] = make_exception_type(
      m, "NotFoundError", "A file, tensor, key or name does not exist (also a FileNotFoundError).",
      py::make_tuple(base, py::handle(PyExc_FileNotFoundError)));
  types[ErrorCode::kIo] =
      make_exception_type(m, "IoError", "The operating system refused a read/write/map.",
                          py::make_tuple(base, py::handle(PyExc_OSError)));
  types[ErrorCode::kFormat] = make_exception_type(
      m, "FormatError", "A file's contents violate its format (also a ValueError).",
      py::make_tuple(base, py::handle(PyExc_ValueError)));
  types[ErrorCode::kUnsupported] = make_exception_type(
      m, "UnsupportedError", "A valid request this build or format cannot serve.",
      py::make_tuple(base, py::handle(PyExc_NotImplementedError)));
  types[ErrorCode::kInternal] =
      make_exception_type(m, "InternalError", "A qforge bug reported as an error.",
                          py::make_tuple(base, py::handle(PyExc_RuntimeError)));
}

void raise_error(const Error& error) {
  const auto it = error_types().find(error.code());
  py::handle type = it != error_types().end() ? it->second : py::handle(PyExc_RuntimeError);
  const std::string text = error.to_string();
  py::object instance = type(text);
  instance.attr("code") = error_code_name(error.code());
  instance.attr("message") = error.message();
  instance.attr("context") = py::cast(error.context());
  PyErr_SetObject(type.ptr(), instance.ptr());
  throw py::error_already_set();
}

Status Interrupt::check() {
  py::gil_scoped_acquire gil;
  if (error_ != nullptr) return make_error(ErrorCode::kInternal, "interrupted");
  if (PyErr_CheckSignals() != 0) {
    keep(py::error_already_set());
    return make_error(ErrorCode::kInternal, "interrupted");
  }
  return ok_status();
}

void Interrupt::keep(py::error_already_set&& error) {
  if (error_ == nullptr) error_ = std::make_shared<py::error_already_set>(std::move(error));
}

void Interrupt::rethrow() {
  if (error_ == nullptr) return;
  auto e = std::move(error_);
  error_.reset();
  throw py::error_already_set(*e);
}

py::array view_to_numpy(const TensorView& view, std::shared_ptr<const void> keep_alive,
                        py::handle owner) {
  py::dtype dtype;
  switch (view.dtype()) {
    case DType::F64:
      dtype = py::dtype::of<double>();
      break;
    case DType::F32:
      dtype = py::dtype::of<float>();
      break;
    case DType::F16:
      dtype = py::dtype("float16");
      break;
    case DType::I64:
      dtype = py::dtype::of<int64_t>();
      break;
    case DType::I32:
      dtype = py::dtype::of<int32_t>();
      break;
    case DType::I16:
      dtype = py::dtype::of<int16_t>();
      break;
    case DType::I8:
      dtype = py::dtype::of<int8_t>();
      break;
    case DType::U8:
      dtype = py::dtype::of<uint8_t>();
      break;
    case DType::BOOL:
      dtype = py::dtype::of<bool>();
      break;
    default:
      raise_error(make_error(ErrorCode::kUnsupported,
                             "NumPy has no dtype for {} (tensor of shape {}); only F64, F32, F16 "
                             "and integer tensors are returned as arrays",
                             dtype_name(view.dtype()), view.shape().to_string()));
  }
  std::vector<py::ssize_t> shape, strides;
  const auto item = static_cast<py::ssize_t>(dtype.itemsize());
  for (int i = 0; i < view.ndim(); ++i) {
    shape.push_back(view.dim(i));
    strides.push_back(static_cast<py::ssize_t>(view.stride(i)) * item);
  }
  py::object base = owner ? py::reinterpret_borrow<py::object>(owner) : py::none();
  if (keep_alive) {
    auto* holder = new std::shared_ptr<const void>(std::move(keep_alive));
    base =
        py::capsule(holder, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
  }
  py::array a(dtype, shape, strides, view.data(), base);
  if (!view.writable()) {
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  }
  return a;
}

py::array tensor_to_numpy(Tensor tensor) {
  auto owned = std::make_shared<Tensor>(std::move(tensor));
  const TensorView view = owned->view();
  return view_to_numpy(view, owned, py::handle());
}

std::string path_string(py::handle value, const char* what) {
  py::module_ os = py::module_::import("os");
  if (py::isinstance<py::str>(value) || py::isinstance(value, os.attr("PathLike"))) {
    return py::str(os.attr("fspath")(value));
  }
  throw py::type_error(std::string(what) + ": expected a path (str or os.PathLike), got " +
                       type_name(value));
}

int64_t to_int(py::handle v, const std::string& field) {
  if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v)) {
    if (!py::hasattr(v, "__index__") || py::isinstance<py::bool_>(v)) {
      throw py::type_error(field + ": expected int, got " + type_name(v) + " " +
                           std::string(py::repr(v)));
    }
  }
  try {
    return py::cast<int64_t>(v);
  } catch (const py::cast_error&) {
    throw py::value_error(field + ": " + std::string(py::repr(v)) + " does not fit in int64");
  }
}

double to_float(py::handle v, const std::string& field) {
  if (py::isinstance<py::bool_>(v) ||
      !(py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v) ||
        py::hasattr(v, "__float__"))) {
    throw py::type_error(field + ": expected float, got " + type_name(v) + " " +
                         std::string(py::repr(v)));
  }
  return py::cast<double>(v);
}

bool to_bool(py::handle v, const std::string& field) {
  if (!py::isinstance<py::bool_>(v) && type_name(v) != "bool_") {
    throw py::type_error(field + ": expected bool, got " + type_name(v) + " " +
                         std::string(py::repr(v)));
  }
  return py::cast<bool>(v);
}

std::string to_str(py::handle v, const std::string& field) {
  if (!py::isinstance<py::str>(v)) {
    throw py::type_error(field + ": expected str, got " + type_name(v) + " " +
                         std::string(py::repr(v)));
  }
  return py::cast<std::string>(v);
}

std::vector<std::string> to_str_list(py::handle v, const std::string& field) {
  if (py::isinstance<py::str>(v)) return {py::cast<std::string>(v)};
  if (v.is_none()) return {};
  if (!py::isinstance<py::sequence>(v)) {
    throw py::type_error(field + ": expected a str or a list of str, got " + type_name(v));
  }
  std::vector<std::string> out;
  for (py::handle item : py::reinterpret_borrow<py::sequence>(v)) {
    out.push_back(to_str(item, field + "[]"));
  }
  return out;
}

std::vector<int32_t> to_int_list(py::handle v, const std::string& field) {
  if (v.is_none()) return {};
  if (!py::isinstance<py::sequence>(v) && !py::isinstance<py::array>(v)) {
    throw py::type_error(field + ": expected a list of int, got " + type_name(v));
  }
  std::vector<int32_t> out;
  for (py::handle item : py::reinterpret_borrow<py::iterable>(v)) {
    const int64_t i = to_int(item, field + "[]");
    if (i < INT32_MIN || i > INT32_MAX) {
      throw py::value_error(field + ": token id " + std::to_string(i) + " is out of int32 range");
    }
    out.push_back(static_cast<int32_t>(i));
  }
  return out;
}

}  // namespace qforge::python
