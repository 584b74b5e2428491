// libFuzzer target: SentencePiece .model loading (the ModelProto walk, the precompiled_charsmap
// validation, then libsentencepiece itself) on arbitrary bytes; a model that loads encodes and
// decodes fixed texts and a slice of the input. Seeds: fuzz/corpus/sentencepiece/ (the real
// tok512.model and a model with a rule charsmap), so mutations reach the charsmap quickly.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "qforge/tokenizer/tokenizer_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tokenizer = qforge::parse_sentencepiece_model(
      std::as_bytes(std::span<const uint8_t>(data, size)), "fuzz.model");
  if (!tokenizer.ok()) return 0;
  const qforge::Tokenizer& t = **tokenizer;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view texts[] = {"ABC abc Quick brown fox", "\xE2\x96\x81 \t\n x\x01\xFF\xFE",
                                    std::string_view("a\0b", 3), input.substr(0, 128)};
  for (std::string_view text : texts) {
    auto ids = t.encode(text, true);
    if (!ids.ok()) continue;
    (void)t.decode(*ids);
    for (int32_t id : *ids) (void)t.piece(id);
  }
  (void)t.decode_next(-1, t.vocab_size());
  return 0;
}
