// The OpenAI request/response shapes the server speaks: validation of /v1/completions and
// /v1/chat/completions bodies into a prompt and SamplingParams (errors name the field, with the
// HTTP status), and the JSON of responses, stream chunks and errors.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "qforge/runtime/sampling.h"
#include "qforge/runtime/scheduler.h"
#include "qforge/serve/chat_template.h"

namespace qforge::serve_internal {

using Json = nlohmann::ordered_json;

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the offending field ("" when none)
  std::string code;   // e.g. "model_not_found"
};
Json error_body(const ApiError& e);

struct ApiContext {
  std::string model_name;
  int64_t max_tokens_limit = 1024;
  int64_t default_max_tokens = 16;
  int64_t default_chat_max_tokens = 256;
  const ChatTemplate* chat_template = nullptr;
  std::string bos_token;
  std::string eos_token;
};

struct ApiRequest {
  bool chat = false;
  std::string prompt;  // completions: as sent; chat: the rendered template
  bool add_bos = true;
  SamplingParams params;
  bool stream = false;
  bool include_usage = false;
};

// Parses and validates; on failure returns the error (nothing else is meaningful).
std::optional<ApiError> parse_api_request(const std::string& body, bool chat, const ApiContext& ctx,
                                          ApiRequest& out);

const char* openai_finish_reason(FinishReason r);  // "length" or "stop"

Json completion_response(const ApiRequest& req, const std::string& id, int64_t created,
                         const std::string& model, const RequestOutput& out, int64_t prompt_tokens);
// One stream chunk: a text delta (finish_reason null), or the last one (finish set).
Json stream_chunk(const ApiRequest& req, const std::string& id, int64_t created,
                  const std::string& model, const std::string& delta, bool first,
                  const char* finish_reason);
Json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace qforge::serve_internal
