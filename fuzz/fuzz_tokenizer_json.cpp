// libFuzzer target: the tokenizer.json parser on arbitrary bytes, and when a file parses, the
// whole pipeline it describes (added tokens, normalizers, regex pre-tokenizers, BPE, decoders)
// on fixed texts and on the input itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "qforge/tokenizer/tokenizer_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tokenizer = qforge::parse_tokenizer_json(json, "fuzz.json");
  if (!tokenizer.ok()) return 0;
  const qforge::Tokenizer& t = **tokenizer;
  const std::string_view texts[] = {
      "Hello world! 123 naïve café <s> </s> <|endoftext|>\n\n  x",
      "\xE2\x96\x81\xE2\x96\x81 \t\r\n 12345 日本語 😀",
      json.substr(0, 256),
  };
  for (std::string_view text : texts) {
    for (bool bos : {false, true}) {
      auto ids = t.encode(text, bos);
      if (!ids.ok()) continue;
      (void)t.decode(*ids);
      int32_t previous = -1;
      for (int32_t id : *ids) {
        (void)t.decode_next(previous, id);
        (void)t.piece(id);
        (void)t.token_type(id);
        previous = id;
      }
    }
  }
  (void)t.decode_next(-1, t.vocab_size());
  (void)t.decode_next(-1, -1);
  return 0;
}
