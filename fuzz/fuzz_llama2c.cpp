// libFuzzer target: the llama2.c checkpoint reader (legacy v0, ak42 v1 and v2) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "qforge/io/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto model = qforge::load_llama2c_bytes(bytes, "fuzz.bin", nullptr);
  if (model.ok()) (void)qforge::validate_model_weights(model->config, model->weights);
  return 0;
}
