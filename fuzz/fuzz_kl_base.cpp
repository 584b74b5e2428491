// libFuzzer target: the --kl-divergence-base reader (KlDivergenceScorer) on arbitrary bytes. The
// header's vocabulary, token count and protocol are taken from the input itself (vocab capped at
// 4096), so that the record checks — top-k ids in range, sizes that match — are reached; each
// record is then scored against fixed logits with the file's own target ids.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qforge/eval/kl_divergence.h"

namespace qforge {
// perplexity.cpp (and the model it pulls in) is not part of this target; the scorer only needs
// this one function from it.
double log_sum_exp(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}
}  // namespace qforge

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 36) return 0;
  uint64_t vocab = 0;
  uint64_t tokens = 0;
  uint32_t protocol_bytes = 0;
  std::memcpy(&vocab, data + 16, 8);
  std::memcpy(&tokens, data + 24, 8);
  std::memcpy(&protocol_bytes, data + 32, 4);
  if (vocab == 0 || vocab > 4096 || tokens > 4096 || protocol_bytes > size - 36) return 0;
  const std::string protocol(reinterpret_cast<const char*>(data) + 36, protocol_bytes);
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("fuzz_kl_base_" + std::to_string(::getpid()));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto scorer = qforge::KlDivergenceScorer::open(path, static_cast<int64_t>(vocab),
                                                 static_cast<int64_t>(tokens), protocol);
  if (!scorer.ok()) return 0;
  std::vector<float> logits(vocab);
  for (uint64_t i = 0; i < vocab; ++i) logits[i] = static_cast<float>((i * 37) % 17) * 0.5f;
  uint32_t top_k = 0;
  std::memcpy(&top_k, data + 12, 4);
  const uint64_t record = top_k > 0 ? 12 + 8 * uint64_t{top_k} : 8 + 4 * vocab;
  for (uint64_t t = 0; t < tokens; ++t) {
    // The file's own target for this record (open() checked that every record is in the file),
    // so the scorer gets past the target comparison to the top-k entries.
    int32_t target = 0;
    std::memcpy(&target, data + 36 + protocol_bytes + t * record, 4);
    if (!(*scorer)->score(logits.data(), static_cast<int64_t>(vocab), target).ok()) break;
  }
  (void)(*scorer)->finish();
  return 0;
}
