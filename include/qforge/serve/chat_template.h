// Chat templates: the Jinja subset Hugging Face tokenizer_config.json "chat_template" strings use
// (Llama-3, Qwen2/ChatML, Mistral [INST], ...), run by a small sandboxed interpreter (no C++
// Jinja library is packaged in Debian 12). Rendering follows transformers' apply_chat_template:
// an immutable sandbox with trim_blocks and lstrip_blocks on, `raise_exception(msg)`, a tojson
// that writes like Python's json.dumps(ensure_ascii=False).
//
// Supported: {{ }}, {% if/elif/else %}, {% for a[, b] in xs [if cond] %} (loop.index, index0,
// revindex, revindex0, first, last, length, previtem, nextitem) with {% else %}, {% set %}
// (names and namespace attributes), {% generation %}, {# #}, whitespace control {%- -%} {%+;
// literals (strings, numbers, lists, dicts, true/false/none), + - * / // % ** ~, comparisons,
// in / not in, and / or / not, `x if c else y`, subscripts and slices, .attribute on dicts,
// filters (trim, length, count, tojson, upper, lower, default, items, first, last, join, list,
// string, int, float, capitalize, title, replace, reverse, safe, abs, selectattr, rejectattr,
// map), tests (defined, none, string, number, mapping, sequence, ...), string methods (strip,
// lstrip, rstrip, startswith, endswith, split, upper, lower, title, capitalize, replace), dict
// methods (items, keys, values, get), range, namespace, dict, strftime_now.
// Anything else (macros, includes, ...) is an error naming the construct and its line:column.
//
// Sandbox: values are strings, numbers, lists and dicts only (no object attributes); loop
// iterations, output size, value size, nesting depth and template size are bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

struct ChatTemplateLimits {
  size_t max_template_bytes = 1 << 20;
  size_t max_output_bytes = 4 << 20;     // also the largest string a template may build
  int64_t max_loop_iterations = 100000;  // over the whole render
  int64_t max_steps = 10000000;          // expressions and statements evaluated per render
  int max_nesting = 64;                  // blocks, expressions and values nested
  size_t max_list_items = 100000;
};

namespace chat_template_internal {
struct Program;
}

class ChatTemplate {
 public:
  // Lexes and parses `source`; errors name the construct and its line:column.
  static Result<ChatTemplate> parse(std::string_view source, const ChatTemplateLimits& limits = {});
  // Renders with `context` (a JSON object: its keys become the template's variables).
  Result<std::string> render(const nlohmann::ordered_json& context) const;

  const std::string& source() const;

 private:
  std::shared_ptr<const chat_template_internal::Program> program_;
};

// What tokenizer_config.json says about chat: the template (a string, or the "default" entry of
// the list-of-named-templates form, or `template_name` when given), bos_token and eos_token
// (strings or AddedToken objects {"content": ...}). Missing fields are empty.
struct TokenizerChatConfig {
  std::string chat_template;
  std::string bos_token;
  std::string eos_token;
};
Result<TokenizerChatConfig> parse_tokenizer_chat_config(std::string_view json_text,
                                                        const std::string& source_name,
                                                        const std::string& template_name = {});
// tokenizer_config.json in `model_dir` (or next to a model file); a chat_template.jinja file
// there replaces its template (newer transformers save it separately). No file: an empty config.
Result<TokenizerChatConfig> load_tokenizer_chat_config(const std::string& model_path);

// The template used when a model ships none: ChatML (<|im_start|>role\ncontent<|im_end|>\n),
// transformers' historical default.
std::string_view default_chat_template();

// transformers' apply_chat_template(messages, add_generation_prompt=...) as text: messages is
// an array of {"role", "content", ...} objects; `extra` (an object, may be null) adds variables.
Result<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt, const std::string& bos_token,
                                        const std::string& eos_token,
                                        const nlohmann::ordered_json& extra = nullptr);

}  // namespace qforge
