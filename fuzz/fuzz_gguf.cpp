// libFuzzer target: the GGUF reader (header, metadata of every type, tensor infos), the typed
// accessors, the llama config mapping, and dequantization of every accepted tensor.
#include <cstddef>
#include <cstdint>

#include "qforge/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto g = qforge::GgufFile::parse(bytes, "fuzz.gguf", nullptr);
  if (!g.ok()) return 0;
  for (const auto& [key, value] : g->metadata()) {
    (void)value.to_string();
    (void)g->get_string_array(key);
    (void)g->get_f32_array(key);
    (void)g->get_int_array(key);
    (void)g->get_float(key);
  }
  for (const auto& t : g->tensors()) {
    const auto* info = qforge::gguf_tensor_type_info(t.type);
    // Dequantized copies are bounded by the tensor bytes present in the input.
    if (info != nullptr && info->dequantizable && t.nbytes <= (1u << 20)) {
      (void)g->tensor_to_f32(t);
    }
  }
  (void)qforge::load_gguf_model(*g);
  return 0;
}
