// libFuzzer target: the safetensors header parser and validator on arbitrary file bytes.
#include <cstddef>
#include <cstdint>

#include "qforge/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto header = qforge::parse_safetensors_header(bytes, "fuzz.safetensors");
  if (header.ok()) {
    // Every accepted tensor must lie inside the buffer; touch its first and last byte.
    volatile uint8_t sink = 0;
    for (const auto& t : header->tensors) {
      if (t.end > t.begin) {
        sink = sink + data[header->data_offset + t.begin] + data[header->data_offset + t.end - 1];
      }
    }
  }
  return 0;
}
