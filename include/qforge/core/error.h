// Error and Result<T>: how every fallible qforge function reports failure.
// The library never aborts on bad input; it returns an Error whose message names the bad value,
// what was expected and a hint, wrapped in context ("loading model: reading shard 2: ...").
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace qforge {

enum class ErrorCode {
  kInvalidArgument,  // a caller-supplied value is out of range or malformed
  kNotFound,         // a file, tensor, key or name does not exist
  kIo,               // the operating system refused a read/write/map
  kFormat,           // a file's contents violate its format
  kUnsupported,      // valid request that this build or format cannot serve
  kInternal,         // a qforge bug surfaced as an error instead of a crash
};

const char* error_code_name(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  // The innermost message, without context.
  const std::string& message() const { return message_; }
  // Context frames, outermost first.
  const std::vector<std::string>& context() const { return context_; }

  // Adds an outer frame: "what we were doing when this happened".
  Error& add_context(std::string frame) {
    context_.insert(context_.begin(), std::move(frame));
    return *this;
  }

  // "outer: inner: message".
  std::string to_string() const;

 private:
  ErrorCode code_;
  std::string message_;
  std::vector<std::string> context_;
};

template <typename... Args>
Error make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error(code, fmt::format(format, std::forward<Args>(args)...));
}

// Result<T> holds a T or an Error. [[nodiscard]] so that an ignored failure is a compile warning.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : storage_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return storage_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return checked_value(); }
  const T& value() const& { return const_cast<Result*>(this)->checked_value(); }
  T&& value() && { return std::move(checked_value()); }
  T* operator->() { return &checked_value(); }
  const T* operator->() const { return &const_cast<Result*>(this)->checked_value(); }
  T& operator*() & { return checked_value(); }
  const T& operator*() const& { return const_cast<Result*>(this)->checked_value(); }

  const Error& error() const& { return std::get<1>(storage_); }
  Error&& error() && { return std::get<1>(std::move(storage_)); }

  T value_or(T fallback) const& { return ok() ? std::get<0>(storage_) : std::move(fallback); }

  // Adds a context frame to the error (no-op on success) and passes the result on. Returns by
  // value so that `f().context("...")` never hands out a reference into a dead temporary.
  Result context(std::string frame) && {
    if (!ok()) std::get<1>(storage_).add_context(std::move(frame));
    return std::move(*this);
  }

 private:
  T& checked_value() {
    if (!ok()) {
      // Reading the value of a failed Result is a programming error, not an input error.
      std::fprintf(stderr, "qforge: value() on a failed Result: %s\n",
                   std::get<1>(storage_).to_string().c_str());
      std::abort();
    }
    return std::get<0>(storage_);
  }

  std::variant<T, Error> storage_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

  Result context(std::string frame) && {
    if (failed_) error_.add_context(std::move(frame));
    return std::move(*this);
  }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok_status() {
  return Status();
}

}  // namespace qforge

#define QF_INTERNAL_CONCAT2(a, b) a##b
#define QF_INTERNAL_CONCAT(a, b) QF_INTERNAL_CONCAT2(a, b)

// QF_TRY(expr): evaluates a Result/Status; on failure returns its Error from the enclosing
// function.
#define QF_TRY(expr)                                                    \
  do {                                                                  \
    auto qf_try_result_ = (expr);                                       \
    if (!qf_try_result_.ok()) return std::move(qf_try_result_).error(); \
  } while (0)

// QF_ASSIGN_OR_RETURN(lhs, expr): `lhs = value of expr`, or return its Error.
#define QF_ASSIGN_OR_RETURN(lhs, expr) \
  QF_INTERNAL_ASSIGN_OR_RETURN(QF_INTERNAL_CONCAT(qf_result_, __LINE__), lhs, expr)
#define QF_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).error();      \
  lhs = std::move(tmp).value()

// QF_CHECK guards programmer errors (broken invariants), never input validation.
#define QF_CHECK(cond)                                                                         \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "qforge: internal check failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                     \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
