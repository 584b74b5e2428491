// Error formatting.
#include "qforge/core/error.h"

namespace qforge {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kFormat:
      return "format error";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

std::string Error::to_string() const {
  std::string out;
  for (const auto& frame : context_) {
    out += frame;
    out += ": ";
  }
  out += message_;
  return out;
}

}  // namespace qforge
