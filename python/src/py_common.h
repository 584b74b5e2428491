// Shared helpers of the Python bindings: qforge Errors raised as Python exceptions (same message
// as the CLI prints), Ctrl-C checks from C++ hooks that run with the GIL released, and keyword
// tables that give the config classes TensorRT-LLM's keyword names with clear errors.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"

namespace qforge::python {

namespace py = pybind11;

// Creates qforge.QforgeError and its subclasses (one per ErrorCode) in `m`.
void bind_errors(py::module_& m);

// Raises the Python exception of `error` (GIL held): its type follows the ErrorCode
// (InvalidArgumentError is a ValueError, NotFoundError a FileNotFoundError, ...), str() is
// Error::to_string() (what the CLI prints after "qforge: error: "), and the instance carries
// .code, .message (the innermost message) and .context (outer frames first).
[[noreturn]] void raise_error(const Error& error);

template <typename T>
T unwrap(Result<T> result) {
  if (!result.ok()) raise_error(result.error());
  return std::move(result).value();
}
inline void unwrap(const Status& status) {
  if (!status.ok()) raise_error(status.error());
}

// Lets C++ hooks stop a long call (generate, perplexity, quantize) on Ctrl-C or on an exception
// from a Python callback. check() runs with the GIL released: it takes the GIL, runs Python's
// signal handlers (PyErr_CheckSignals; only the main thread sees signals), and on a pending
// exception keeps it and returns an error that makes the C++ call return early. After the call,
// with the GIL held again, rethrow() re-raises the kept exception (KeyboardInterrupt).
class Interrupt {
 public:
  Status check();
  // Keeps a Python exception (GIL held), e.g. one a callback raised; the first one wins.
  void keep(py::error_already_set&& error);
  bool pending() const { return error_ != nullptr; }
  void rethrow();

 private:
  std::shared_ptr<py::error_already_set> error_;
};

// Runs f() with the GIL released.
template <typename F>
auto without_gil(F&& f) {
  py::gil_scoped_release nogil;
  return f();
}

// A NumPy array over a Tensor's memory (no copy): the array keeps the Tensor alive.
// Errors for dtypes NumPy has no type for (BF16, FP8, 4-bit).
py::array tensor_to_numpy(Tensor tensor);
py::array view_to_numpy(const TensorView& view, std::shared_ptr<const void> keep_alive,
                        py::handle owner);

// A str, os.PathLike (pathlib.Path) as a filesystem path string; TypeError otherwise.
std::string path_string(py::handle value, const char* what);

// Keyword fields of a config class: properties with converting setters, __init__(**kwargs) that
// rejects unknown keywords with the list of valid ones, __repr__, __eq__ and to_dict().
template <typename T>
class FieldTable {
 public:
  using Getter = std::function<py::object(py::handle self, T& value)>;
  using Setter = std::function<void(T& value, py::handle v)>;
  struct Field {
    std::string name;
    Getter get;
    Setter set;
    std::string doc;
  };

  explicit FieldTable(std::string class_name) : class_name_(std::move(class_name)) {}
  const std::string& class_name() const { return class_name_; }

  void add(std::string name, Getter get, Setter set, std::string doc) {
    fields_.push_back({std::move(name), std::move(get), std::move(set), std::move(doc)});
  }
  // An extra keyword accepted by __init__ only (an alias such as TensorRT-LLM's random_seed).
  void alias(std::string name, std::string target) {
    aliases_.emplace_back(std::move(name), std::move(target));
  }

  const Field* find(const std::string& name) const {
    for (const auto& f : fields_) {
      if (f.name == name) return &f;
    }
    for (const auto& [a, target] : aliases_) {
      if (a == name) return find(target);
    }
    return nullptr;
  }

  std::string valid_names() const {
    std::string out;
    for (const auto& f : fields_) out += (out.empty() ? "" : ", ") + f.name;
    for (const auto& a : aliases_) out += ", " + a.first + " (= " + a.second + ")";
    return out;
  }

  // Applies the keywords to `value`; TypeError for an unknown keyword (`what` names the
  // callee in the message, default "<class>()").
  void apply(T& value, const py::kwargs& kwargs, const std::string& what = "") const {
    for (const auto& item : kwargs) {
      const std::string key = py::str(item.first);
      const Field* f = find(key);
      if (f == nullptr) {
        throw py::type_error((what.empty() ? class_name_ + "()" : what) +
                             " got an unexpected keyword argument '" + key +
                             "'; valid keywords: " + valid_names());
      }
      f->set(value, item.second);
    }
  }

  template <typename Class>
  void bind(Class& cls, std::function<Status(const T&)> validate) {
    auto self = std::make_shared<FieldTable>(*this);
    for (const auto& f : fields_) {
      const Getter get = f.get;
      const Setter set = f.set;
      cls.def_property(
          f.name.c_str(), [get](py::object o) { return get(o, o.cast<T&>()); },
          [set](T& v, py::object value) { set(v, value); }, f.doc.c_str());
    }
    cls.def(py::init([self, validate](const py::kwargs& kwargs) {
              T value{};
              self->apply(value, kwargs);
              if (validate) unwrap(validate(value));
              return value;
            }),
            ("Keywords: " + valid_names() + ". Unknown keywords raise TypeError.").c_str());
    cls.def("to_dict", [self](py::object o) {
      py::dict d;
      T& v = o.cast<T&>();
      for (const auto& f : self->fields_) {
        py::object x = f.get(o, v);
        if (py::hasattr(x, "to_dict")) x = x.attr("to_dict")();
        d[py::str(f.name)] = x;
      }
      return d;
    });
    cls.def("__repr__", [self](py::object o) {
      std::string out = self->class_name_ + "(";
      T& v = o.cast<T&>();
      for (size_t i = 0; i < self->fields_.size(); ++i) {
        out += (i ? ", " : "") + self->fields_[i].name + "=" +
               std::string(py::repr(self->fields_[i].get(o, v)));
      }
      return out + ")";
    });
    cls.def("__eq__", [](py::object a, py::object b) {
      if (!py::isinstance(b, a.get_type())) return false;
      return a.attr("to_dict")().equal(b.attr("to_dict")());
    });
    cls.def(
        "_update",
        [self](T& v, const std::string& what, const py::kwargs& kwargs) {
          self->apply(v, kwargs, what);
        },
        "Sets the given keywords (as __init__ does, without validation).");
    cls.def("__copy__", [](const T& v) { return T(v); });
    cls.def("__deepcopy__", [](const T& v, py::dict) { return T(v); });
    if (validate) {
      cls.def(
          "validate", [validate](const T& v) { unwrap(validate(v)); },
          "Checks every field (the checks the C++ API runs); raises InvalidArgumentError.");
    }
  }

 private:
  std::string class_name_;
  std::vector<Field> fields_;
  std::vector<std::pair<std::string, std::string>> aliases_;
};

// Conversions with errors that name the field ("QuantConfig.group_size: expected int, got str").
int64_t to_int(py::handle v, const std::string& field);
double to_float(py::handle v, const std::string& field);
bool to_bool(py::handle v, const std::string& field);
std::string to_str(py::handle v, const std::string& field);
// A str (one item) or a sequence of str.
std::vector<std::string> to_str_list(py::handle v, const std::string& field);
std::vector<int32_t> to_int_list(py::handle v, const std::string& field);

// Plain member fields (int, float, bool, str, list[str]).
template <typename T, typename M>
void add_member(FieldTable<T>& table, const std::string& name, M T::*member,
                const std::string& doc) {
  const std::string field = table.class_name() + "." + name;
  table.add(
      name, [member](py::handle, T& v) { return py::cast(v.*member); },
      [member, field](T& v, py::handle x) {
        if constexpr (std::is_same_v<M, bool>) {
          v.*member = to_bool(x, field);
        } else if constexpr (std::is_integral_v<M>) {
          const int64_t i = to_int(x, field);
          if (i < static_cast<int64_t>(std::numeric_limits<M>::min()) ||
              static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<M>::max())) {
            throw py::value_error(field + ": " + std::to_string(i) + " is out of range");
          }
          v.*member = static_cast<M>(i);
        } else if constexpr (std::is_floating_point_v<M>) {
          v.*member = static_cast<M>(to_float(x, field));
        } else if constexpr (std::is_same_v<M, std::string>) {
          v.*member = to_str(x, field);
        } else {
          v.*member = to_str_list(x, field);
        }
      },
      doc);
}

// Enum fields given as strings, parsed by the C++ parser (whose error lists the valid values).
template <typename T, typename E, typename Parse, typename Name>
void add_enum(FieldTable<T>& table, const std::string& name, E T::*member, Parse parse,
              Name to_name, const std::string& doc) {
  const std::string field = table.class_name() + "." + name;
  table.add(
      name,
      [member, to_name](py::handle, T& v) { return py::cast(std::string(to_name(v.*member))); },
      [member, parse, field](T& v, py::handle x) { v.*member = unwrap(parse(to_str(x, field))); },
      doc);
}

}  // namespace qforge::python
