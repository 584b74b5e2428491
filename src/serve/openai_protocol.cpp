// OpenAI request validation and response JSON (openai_protocol.h). Unknown fields are ignored
// (clients send many); known fields with the wrong type, out of range, or asking for a feature
// this server does not have (n > 1, logprobs, tools, penalties, ...) are a 400 naming the field.
#include "serve/openai_protocol.h"

#include <fmt/format.h>

#include <cmath>

#include "core/json_depth.h"

namespace qforge::serve_internal {
namespace {

ApiError bad(std::string param, std::string message) {
  return ApiError{400, std::move(message), std::move(param), ""};
}

const char* type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

// Present and not null.
const Json* field(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> get_number(const Json& j, const char* key, double lo, double hi,
                                   float& out) {
  const Json* v = field(j, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    return bad(key, fmt::format("'{}' must be a number, not {}", key, type_name(*v)));
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return bad(key, fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, d));
  }
  out = static_cast<float>(d);
  return std::nullopt;
}

std::optional<ApiError> get_int(const Json& j, const char* key, int64_t lo, int64_t hi,
                                int64_t& out) {
  const Json* v = field(j, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    return bad(key, fmt::format("'{}' must be an integer, not {}", key, type_name(*v)));
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return bad(key, fmt::format("'{}' must be in [{}, {}]", key, lo, hi));
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    return bad(key, fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, x));
  }
  out = x;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const Json& j, const char* key, bool& out) {
  const Json* v = field(j, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    return bad(key, fmt::format("'{}' must be a boolean, not {}", key, type_name(*v)));
  }
  out = v->get<bool>();
  return std::nullopt;
}

// Fields this server does not implement: a 400 when they ask for anything but the default.
std::optional<ApiError> reject_unsupported(const Json& j, bool chat) {
  for (const char* key : {"tools", "tool_choice", "functions", "function_call", "response_format",
                          "logit_bias", "suffix", "prediction", "audio", "modalities"}) {
    const Json* v = field(j, key);
    if (v == nullptr) continue;
    if ((v->is_object() || v->is_array() || v->is_string()) && v->empty()) continue;
    return bad(key, fmt::format("'{}' is not supported by this server", key));
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    const Json* v = field(j, key);
    if (v == nullptr) continue;
    if (!v->is_number()) {
      return bad(key, fmt::format("'{}' must be a number, not {}", key, type_name(*v)));
    }
    if (v->get<double>() != 0) {
      return bad(key, fmt::format("'{}' is not supported (use repetition_penalty)", key));
    }
  }
  if (const Json* v = field(j, "n"); v != nullptr && !(v->is_number_integer() && *v == 1)) {
    return bad("n", "'n' must be 1 (one choice per request)");
  }
  if (const Json* v = field(j, "best_of"); v != nullptr && !(v->is_number_integer() && *v == 1)) {
    return bad("best_of", "'best_of' must be 1");
  }
  if (const Json* v = field(j, "echo"); v != nullptr && !(v->is_boolean() && !v->get<bool>())) {
    return bad("echo", "'echo' is not supported");
  }
  if (const Json* v = field(j, "logprobs"); v != nullptr && !(v->is_boolean() && !v->get<bool>())) {
    return bad("logprobs", "'logprobs' is not supported by this server");
  }
  if (chat) {
    if (const Json* v = field(j, "top_logprobs"); v != nullptr) {
      return bad("top_logprobs", "'top_logprobs' is not supported by this server");
    }
  }
  return std::nullopt;
}

// messages[i].content: a string, null, or text parts joined.
std::optional<ApiError> message_content(const Json& m, size_t i, std::string& out) {
  const std::string where = fmt::format("messages[{}].content", i);
  const auto it = m.find("content");
  if (it == m.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    out = it->get<std::string>();
    return std::nullopt;
  }
  if (!it->is_array()) {
    return bad(where, fmt::format("'{}' must be a string or an array of text parts, not {}", where,
                                  type_name(*it)));
  }
  for (size_t k = 0; k < it->size(); ++k) {
    const Json& part = (*it)[k];
    const std::string pw = fmt::format("{}[{}]", where, k);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return bad(pw, fmt::format("'{}' must be an object with a string 'type'", pw));
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      return bad(pw, fmt::format("'{}': content parts of type '{}' are not supported (text only)",
                                 pw, type));
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return bad(pw, fmt::format("'{}.text' must be a string", pw));
    }
    out += part["text"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

Json error_body(const ApiError& e) {
  Json err;
  err["message"] = e.message;
  err["type"] = e.status == 401   ? "authentication_error"
                : e.status == 429 ? "rate_limit_error"
                : e.status >= 500 ? "server_error"
                                  : "invalid_request_error";
  err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  err["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
  Json j;
  j["error"] = err;
  return j;
}

std::optional<ApiError> parse_api_request(const std::string& body, bool chat, const ApiContext& ctx,
                                          ApiRequest& out) {
  // Hostile nesting is refused before the parser (and the destructor) recurse into it.
  if (Status st = check_json_depth(body, "request body"); !st.ok()) {
    return bad("", st.error().to_string());
  }
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::exception& e) {
    return bad("", fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) {
    return bad("", fmt::format("the request body must be a JSON object, not {}", type_name(j)));
  }
  out.chat = chat;
  if (const Json* m = field(j, "model")) {
    if (!m->is_string()) {
      return bad("model", fmt::format("'model' must be a string, not {}", type_name(*m)));
    }
    if (m->get<std::string>() != ctx.model_name) {
      return ApiError{404,
                      fmt::format("the model '{}' does not exist (this server has '{}')",
                                  m->get<std::string>(), ctx.model_name),
                      "model", "model_not_found"};
    }
  }
  if (auto e = reject_unsupported(j, chat)) return e;
  SamplingParams& p = out.params;
  p.temperature = 1.0f;  // OpenAI's default
  p.max_tokens = chat ? ctx.default_chat_max_tokens : ctx.default_max_tokens;
  if (auto e = get_number(j, "temperature", 0, 2, p.temperature)) return e;
  if (auto e = get_number(j, "top_p", 0, 1, p.top_p)) return e;
  if (field(j, "top_p") != nullptr && p.top_p <= 0) return bad("top_p", "'top_p' must be > 0");
  if (auto e = get_number(j, "min_p", 0, 1, p.min_p)) return e;
  if (auto e = get_number(j, "repetition_penalty", 1e-3, 100, p.repetition_penalty)) return e;
  if (auto e = get_int(j, "top_k", -1, 1 << 30, p.top_k)) return e;
  if (p.top_k < 0) p.top_k = 0;  // vLLM spells "all" as -1
  int64_t seed = 0;
  if (auto e = get_int(j, "seed", INT64_MIN, INT64_MAX, seed)) return e;
  p.seed = static_cast<uint64_t>(seed);
  const char* max_key =
      chat && field(j, "max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens";
  if (auto e = get_int(j, max_key, 0, INT64_MAX, p.max_tokens)) return e;
  if (p.max_tokens > ctx.max_tokens_limit) {
    return bad(max_key, fmt::format("'{}' is {}, above this server's limit of {}", max_key,
                                    p.max_tokens, ctx.max_tokens_limit));
  }
  if (auto e = get_bool(j, "ignore_eos", p.ignore_eos)) return e;
  if (auto e = get_bool(j, "stream", out.stream)) return e;
  if (const Json* so = field(j, "stream_options")) {
    if (!so->is_object()) return bad("stream_options", "'stream_options' must be an object");
    if (auto e = get_bool(*so, "include_usage", out.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  if (const Json* stop = field(j, "stop")) {
    if (stop->is_string()) {
      if (!stop->get<std::string>().empty()) p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) return bad("stop", "'stop' may hold at most 16 strings");
      for (const Json& s : *stop) {
        if (!s.is_string()) return bad("stop", "'stop' must be a string or an array of strings");
        if (!s.get<std::string>().empty()) p.stop.push_back(s.get<std::string>());
      }
    } else {
      return bad("stop", fmt::format("'stop' must be a string or an array of strings, not {}",
                                     type_name(*stop)));
    }
  }
  if (Status st = validate_sampling_params(p); !st.ok()) return bad("", st.error().to_string());

  if (!chat) {
    const Json* prompt = field(j, "prompt");
    if (prompt == nullptr) return bad("prompt", "'prompt' is required");
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
      prompt = &(*prompt)[0];
    if (!prompt->is_string()) {
      return bad("prompt", fmt::format("'prompt' must be a string (one prompt per request), not {}",
                                       type_name(*prompt)));
    }
    out.prompt = prompt->get<std::string>();
    if (out.prompt.empty()) return bad("prompt", "'prompt' must not be empty");
    out.add_bos = true;
    return std::nullopt;
  }

  const Json* messages = field(j, "messages");
  if (messages == nullptr) return bad("messages", "'messages' is required");
  if (!messages->is_array() || messages->empty()) {
    return bad("messages", "'messages' must be a non-empty array of {role, content} objects");
  }
  Json normalized = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    if (!m.is_object()) {
      return bad(fmt::format("messages[{}]", i),
                 fmt::format("'messages[{}]' must be an object, not {}", i, type_name(m)));
    }
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return bad(fmt::format("messages[{}].role", i),
                 fmt::format("'messages[{}].role' must be a string", i));
    }
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "developer") {
      return bad(
          fmt::format("messages[{}].role", i),
          fmt::format("'messages[{}].role' is '{}': expected system, user or assistant", i, r));
    }
    std::string content;
    if (auto e = message_content(m, i, content)) return e;
    normalized.push_back({{"role", r == "developer" ? "system" : r}, {"content", content}});
  }
  bool add_generation_prompt = true;
  if (auto e = get_bool(j, "add_generation_prompt", add_generation_prompt)) return e;
  auto rendered = apply_chat_template(*ctx.chat_template, normalized, add_generation_prompt,
                                      ctx.bos_token, ctx.eos_token);
  if (!rendered.ok()) {
    return bad("messages", "applying the chat template: " + rendered.error().to_string());
  }
  out.prompt = std::move(rendered).value();
  // The template writes BOS as text; encode it as the BOS id instead (as HF tokenizers do).
  out.add_bos = false;
  if (!ctx.bos_token.empty() && out.prompt.starts_with(ctx.bos_token)) {
    out.prompt.erase(0, ctx.bos_token.size());
    out.add_bos = true;
  }
  if (out.prompt.empty() && !out.add_bos) return bad("messages", "the chat prompt is empty");
  return std::nullopt;
}

const char* openai_finish_reason(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

Json completion_response(const ApiRequest& req, const std::string& id, int64_t created,
                         const std::string& model, const RequestOutput& out,
                         int64_t prompt_tokens) {
  Json choice;
  choice["index"] = 0;
  if (req.chat) {
    choice["message"] = Json{{"role", "assistant"}, {"content", out.text}};
  } else {
    choice["text"] = out.text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = openai_finish_reason(out.finish_reason);
  Json j;
  j["id"] = id;
  j["object"] = req.chat ? "chat.completion" : "text_completion";
  j["created"] = created;
  j["model"] = model;
  j["choices"] = Json::array({choice});
  j["usage"] = usage_json(prompt_tokens, static_cast<int64_t>(out.output_ids.size()));
  return j;
}

Json stream_chunk(const ApiRequest& req, const std::string& id, int64_t created,
                  const std::string& model, const std::string& delta, bool first,
                  const char* finish_reason) {
  Json choice;
  choice["index"] = 0;
  if (req.chat) {
    Json d = Json::object();
    if (first) d["role"] = "assistant";
    if (finish_reason == nullptr || !delta.empty()) d["content"] = delta;
    choice["delta"] = d;
  } else {
    choice["text"] = delta;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason ? Json(finish_reason) : Json(nullptr);
  Json j;
  j["id"] = id;
  j["object"] = req.chat ? "chat.completion.chunk" : "text_completion";
  j["created"] = created;
  j["model"] = model;
  j["choices"] = Json::array({choice});
  return j;
}

}  // namespace qforge::serve_internal
