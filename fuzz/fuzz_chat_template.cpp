// libFuzzer target: the chat-template interpreter (src/serve/chat_template*.cpp) on arbitrary
// templates. Input: template text, optionally followed by a NUL byte and a JSON render context;
// without one, a small chat (system/user/assistant messages, bos/eos, add_generation_prompt).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qforge/serve/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view source = input;
  nlohmann::ordered_json context;
  const size_t nul = input.find('\0');
  if (nul != std::string_view::npos) {
    source = input.substr(0, nul);
    context = nlohmann::ordered_json::parse(input.substr(nul + 1), nullptr, false);
    if (context.is_discarded()) return 0;
  } else {
    context = {{"messages",
                {{{"role", "system"}, {"content", "Be brief."}},
                 {{"role", "user"}, {"content", "Hi"}},
                 {{"role", "assistant"}, {"content", "Hello!"}}}},
               {"bos_token", "<s>"},
               {"eos_token", "</s>"},
               {"add_generation_prompt", true}};
  }
  qforge::ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 16;  // keep each run fast; the limits are what is tested
  limits.max_loop_iterations = 10000;
  limits.max_steps = 200000;
  auto tmpl = qforge::ChatTemplate::parse(source, limits);
  if (!tmpl.ok()) return 0;
  (void)tmpl->render(context);
  return 0;
}
