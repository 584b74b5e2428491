// PCRE2-backed Pattern (see pretokenize_regex.h). Match data, match context and JIT stack are
// per thread, so one compiled pattern serves concurrent encode() calls.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize_regex.h"

#include <pcre2.h>

#include "tokenizer/utf8.h"

namespace qforge::tokenizer {
namespace {

constexpr uint32_t kMatchLimit = 10'000'000;
constexpr uint32_t kDepthLimit = 100'000;
constexpr size_t kMaxPatternBytes = 1 << 16;

struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context != nullptr) {
      pcre2_set_match_limit(context, kMatchLimit);
      pcre2_set_depth_limit(context, kDepthLimit);
      if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return fmt::format("code {}", code);
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

Result<Pattern> Pattern::regex(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return make_error(ErrorCode::kFormat, "regex of {} bytes exceeds the {} byte limit",
                      pattern.size(), kMaxPatternBytes);
  }
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return make_error(ErrorCode::kFormat, "regex '{}' does not compile at offset {}: {}",
                      pattern.substr(0, 200), error_offset, pcre2_message(error_code));
  }
  // JIT is an optimisation: without it (unsupported CPU) the interpreter gives the same matches.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Pattern p;
  p.source_ = std::string(pattern);
  p.code_ =
      std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
  return p;
}

Result<Pattern> Pattern::literal(std::string_view text) {
  if (text.empty())
    return make_error(ErrorCode::kFormat, "an empty String pattern matches nothing");
  Pattern p;
  p.source_ = std::string(text);
  return p;
}

Status Pattern::find_all(std::string_view text, std::vector<MatchRange>& out) const {
  if (code_ == nullptr) {
    size_t pos = 0;
    while ((pos = text.find(source_, pos)) != std::string_view::npos) {
      out.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + source_.size())});
      pos += source_.size();
    }
    return ok_status();
  }
  ThreadMatchState& state = thread_state();
  if (state.data == nullptr || state.context == nullptr) {
    return make_error(ErrorCode::kInternal, "regex: out of memory creating match data");
  }
  auto* code = static_cast<pcre2_code*>(code_.get());
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, state.data,
                               state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "regex '{}' failed at byte {} of a {}-byte text: {}",
                        source_.substr(0, 200), start, text.size(), pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
      start = e;
    } else {
      // An empty match yields nothing (as in HF); step over one character.
      if (b >= text.size()) break;
      start = b + utf8_char_length(text, b);
    }
  }
  return ok_status();
}

Status Pattern::replace_all(std::string_view text, std::string_view content, std::string& out,
                            size_t max_out) const {
  std::vector<MatchRange> matches;
  QF_TRY(find_all(text, matches));
  const auto grow = [&](std::string_view piece) -> Status {
    if (piece.size() > max_out || out.size() > max_out - piece.size()) {
      return make_error(ErrorCode::kFormat,
                        "Replace '{}': the text grows from {} bytes past the {}-byte limit (a "
                        "replacement chain that multiplies the text: hostile tokenizer.json?)",
                        source_.substr(0, 40), text.size(), max_out);
    }
    out.append(piece);
    return ok_status();
  };
  size_t prev = 0;
  for (const MatchRange& m : matches) {
    QF_TRY(grow(text.substr(prev, m.begin - prev)));
    QF_TRY(grow(content));
    prev = m.end;
  }
  return grow(text.substr(prev));
}

}  // namespace qforge::tokenizer
