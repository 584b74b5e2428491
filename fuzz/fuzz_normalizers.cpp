// libFuzzer target: tokenizer.json normalizer chains. The input describes up to 8 steps
// (Replace with fuzzed pattern and content, Prepend, NFC/NFD/NFKC/NFKD, Lowercase, Strip) and a
// text; they are put into a small valid tokenizer.json (nlohmann escapes the strings) whose
// pipeline then encodes the text. Checks that no chain crashes or grows without bound (each
// step's output is capped at kMaxNormalizerGrowth x the input).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "qforge/tokenizer/tokenizer_formats.h"

namespace {

constexpr const char* kBase = R"({
  "version": "1.0", "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}],
  "pre_tokenizer": null,
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "\u2581": 5, "ab": 6},
    "merges": ["a b"]}
})";

// Takes up to `max` bytes from the input, as a string.
std::string take(const uint8_t*& p, const uint8_t* end, size_t max) {
  if (p >= end) return {};
  const size_t n =
      std::min<size_t>(static_cast<size_t>(*p++) % (max + 1), static_cast<size_t>(end - p));
  std::string s(reinterpret_cast<const char*>(p), n);
  p += n;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  if (size < 2) return 0;
  const int n_steps = 1 + *p++ % 8;
  nlohmann::json steps = nlohmann::json::array();
  for (int i = 0; i < n_steps && p < end; ++i) {
    const int kind = *p++ % 9;
    nlohmann::json step;
    switch (kind) {
      case 0:
      case 1: {
        std::string from = take(p, end, 8);
        if (from.empty()) from = "a";
        const std::string to = take(p, end, 255);
        step = {{"type", "Replace"}, {"pattern", {{"String", from}}}, {"content", to}};
        break;
      }
      case 2:
        step = {{"type", "Prepend"}, {"prepend", take(p, end, 16)}};
        break;
      case 3:
        step = {{"type", "NFC"}};
        break;
      case 4:
        step = {{"type", "NFD"}};
        break;
      case 5:
        step = {{"type", "NFKC"}};
        break;
      case 6:
        step = {{"type", "NFKD"}};
        break;
      case 7:
        step = {{"type", "Lowercase"}};
        break;
      default:
        step = {{"type", "Strip"}, {"left", true}, {"right", true}};
        break;
    }
    steps.push_back(std::move(step));
  }
  nlohmann::json j = nlohmann::json::parse(kBase);
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", steps}};
  const std::string text(reinterpret_cast<const char*>(p), static_cast<size_t>(end - p));
  const std::string json = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto tokenizer = qforge::parse_tokenizer_json(json, "fuzz_normalizers.json");
  if (!tokenizer.ok()) return 0;
  for (bool bos : {false, true}) {
    auto ids = (*tokenizer)->encode(text, bos);
    if (ids.ok()) (void)(*tokenizer)->decode(*ids);
  }
  return 0;
}
