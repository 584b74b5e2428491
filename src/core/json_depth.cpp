// JSON nesting bound (see json_depth.h).
#include "core/json_depth.h"

namespace qforge {

Status check_json_depth(std::string_view text, std::string_view source, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return make_error(ErrorCode::kFormat,
                          "{}: JSON nests deeper than {} levels at byte {} (real files nest a few "
                          "levels; the file is corrupt or hostile)",
                          source, max_depth, i);
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return ok_status();
}

}  // namespace qforge
