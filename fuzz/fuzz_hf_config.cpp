// libFuzzer target: Hugging Face config.json parsing (and generation_config.json applied to the
// result) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qforge/io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = qforge::parse_hf_config(text, "fuzz/config.json");
  if (config.ok()) {
    qforge::ModelConfig copy = *config;
    (void)qforge::apply_generation_config(text, "fuzz/generation_config.json", &copy);
  }
  return 0;
}
