// ChatTemplate (include/qforge/serve/chat_template.h): the public face of the interpreter, and
// reading the chat fields of tokenizer_config.json.
#include "qforge/serve/chat_template.h"

#include <filesystem>

#include "core/json_depth.h"
#include "qforge/core/text_file.h"
#include "serve/chat_template_ast.h"

namespace qforge {

namespace cti = chat_template_internal;

namespace {

Error template_error(const cti::TemplateError& e, std::string_view what) {
  if (e.pos.line == 0)
    return make_error(ErrorCode::kInvalidArgument, "chat template: {}", e.what());
  return make_error(ErrorCode::kInvalidArgument, "chat template {} at line {}, column {}: {}", what,
                    e.pos.line, e.pos.column, e.what());
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source,
                                         const ChatTemplateLimits& limits) {
  if (source.size() > limits.max_template_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template: {} bytes exceeds the {}-byte limit", source.size(),
                      limits.max_template_bytes);
  }
  ChatTemplate t;
  try {
    t.program_ = cti::parse_program(source, limits);
  } catch (const cti::TemplateError& e) {
    return template_error(e, "error");
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: out of memory while parsing");
  }
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (program_ == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: render() on an empty template");
  }
  try {
    return cti::render_program(*program_, context);
  } catch (const cti::TemplateError& e) {
    return template_error(e, "render error");
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: out of memory while rendering");
  }
}

const std::string& ChatTemplate::source() const {
  static const std::string kEmpty;
  return program_ != nullptr ? program_->source : kEmpty;
}

Result<TokenizerChatConfig> parse_tokenizer_chat_config(std::string_view json_text,
                                                        const std::string& source_name,
                                                        const std::string& template_name) {
  QF_TRY(check_json_depth(json_text, source_name));
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: not a JSON object", source_name);
  }
  TokenizerChatConfig c;
  const auto token = [&](const char* key, std::string& out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return ok_status();
    const nlohmann::ordered_json& v = j[key];
    if (v.is_string()) {
      out = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      out = v["content"].get<std::string>();  // AddedToken form
    } else {
      return make_error(ErrorCode::kFormat,
                        "{}: '{}' must be a string or an object with a string 'content'",
                        source_name, key);
    }
    return ok_status();
  };
  QF_TRY(token("bos_token", c.bos_token));
  QF_TRY(token("eos_token", c.eos_token));
  if (!j.contains("chat_template") || j["chat_template"].is_null()) return c;
  const nlohmann::ordered_json& t = j["chat_template"];
  if (t.is_string()) {
    c.chat_template = t.get<std::string>();
    return c;
  }
  if (!t.is_array()) {
    return make_error(ErrorCode::kFormat,
                      "{}: 'chat_template' must be a string or a list of {{name, template}}",
                      source_name);
  }
  const std::string want = template_name.empty() ? "default" : template_name;
  std::string names;
  for (const nlohmann::ordered_json& e : t) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
        !e.contains("template") || !e["template"].is_string()) {
      return make_error(ErrorCode::kFormat,
                        "{}: each 'chat_template' entry must be {{\"name\": string, \"template\": "
                        "string}}",
                        source_name);
    }
    const std::string name = e["name"].get<std::string>();
    if (name == want) {
      c.chat_template = e["template"].get<std::string>();
      return c;
    }
    names += (names.empty() ? "" : ", ") + name;
  }
  return make_error(ErrorCode::kNotFound, "{}: no chat template named '{}' (has: {})", source_name,
                    want, names);
}

Result<TokenizerChatConfig> load_tokenizer_chat_config(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = model_path;
  if (!fs::is_directory(dir, ec)) dir = dir.parent_path();
  TokenizerChatConfig c;
  const fs::path config = dir / "tokenizer_config.json";
  if (fs::is_regular_file(config, ec)) {
    QF_ASSIGN_OR_RETURN(std::string text,
                        read_text_input(config, "tokenizer_config.json", 64 << 20));
    QF_ASSIGN_OR_RETURN(c, parse_tokenizer_chat_config(text, config.string()));
  }
  const fs::path jinja = dir / "chat_template.jinja";
  if (fs::is_regular_file(jinja, ec)) {
    QF_ASSIGN_OR_RETURN(c.chat_template, read_text_input(jinja, "chat_template.jinja", 1 << 20));
  }
  return c;
}

std::string_view default_chat_template() {
  return "{% for message in messages %}"
         "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' "
         "}}"
         "{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

Result<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt, const std::string& bos_token,
                                        const std::string& eos_token,
                                        const nlohmann::ordered_json& extra) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (extra.is_object()) ctx = extra;
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos_token;
  ctx["eos_token"] = eos_token;
  return tmpl.render(ctx);
}

}  // namespace qforge
