// The Tokenizer interface's shared behaviour (qforge/tokenizer/tokenizer.h).
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  int32_t previous = -1;
  for (int32_t id : ids) {
    QF_ASSIGN_OR_RETURN(std::string piece, decode_next(previous, id));
    out += piece;
    previous = id;
  }
  return out;
}

}  // namespace qforge
