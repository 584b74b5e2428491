// KL divergence of a model against a baseline, as llama.cpp's perplexity tool reports it
// (--kl-divergence-base): the baseline run saves its log-probabilities per scored token; the
// compared run reads them back token by token and accumulates KL(P_base || Q), top-1 agreement
// and the paired PPL ratio.
//
// Log-prob file, version 1 (little-endian):
//   header: char magic[8] = "QFLOGPRB"; uint32 version = 1; uint32 top_k (0 = full vocabulary);
//           uint64 vocab; uint64 n_tokens; uint32 protocol_bytes; then protocol_bytes of UTF-8
//           (the PplDataset protocol line: a compared run must have the same one).
//   per scored token: int32 target; float target_logprob; then
//     top_k > 0: float tail_logprob = log(1 - sum of the top-k probabilities) (-inf if none),
//                top_k x { int32 id; float logprob } sorted by decreasing logprob;
//     top_k = 0: vocab x float logprob.
// With top_k < vocab, KL is computed over the top-k ids of the baseline plus one "tail" bin
// holding the rest of the mass (exact for the top-k part; the tail bin merges the remaining ids,
// which can only lower the KL: log-sum inequality). top_k = 0 stores every log-prob (exact KL,
// vocab x 4 bytes per token).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/mmap_file.h"
#include "qforge/eval/perplexity.h"

namespace qforge {

inline constexpr int64_t kDefaultKldTopK = 64;

// Writes the baseline's log-probs while perplexity runs (a TokenScorer). commit() makes the file
// appear atomically; a writer destroyed without commit() leaves no file behind.
class LogprobWriter final : public TokenScorer {
 public:
  static Result<std::unique_ptr<LogprobWriter>> create(const std::filesystem::path& path,
                                                       int64_t top_k, int64_t vocab,
                                                       int64_t n_tokens,
                                                       const std::string& protocol);
  Status score(const float* logits, int64_t vocab, int32_t target) override;
  // Fails if fewer or more tokens were scored than the header announced.
  Status commit();

 private:
  LogprobWriter(AtomicFileWriter writer) : writer_(std::move(writer)) {}

  AtomicFileWriter writer_;
  int64_t top_k_ = 0;
  int64_t vocab_ = 0;
  int64_t expected_ = 0;
  int64_t written_ = 0;
  std::vector<float> logprobs_;
  std::vector<int32_t> order_;
  std::vector<char> record_;
};

struct KlDivergenceResult {
  int64_t tokens = 0;
  double mean_kld = 0;
  double mean_kld_stderr = 0;
  double median_kld = 0;
  double p99_kld = 0;
  double max_kld = 0;
  double top1_agreement = 0;  // fraction in [0, 1]
  double top1_agreement_stderr = 0;
  double ppl_base = 0;
  double ppl = 0;
  double ppl_ratio = 0;     // PPL(Q) / PPL(base)
  double ln_ppl_ratio = 0;  // mean(NLL_Q - NLL_base)
  double ln_ppl_ratio_stderr = 0;
  int64_t top_k = 0;  // of the base file (0 = full vocabulary)
};

// Reads a baseline file and compares each scored row against it (a TokenScorer).
class KlDivergenceScorer final : public TokenScorer {
 public:
  // Errors: not a log-prob file, another version, a vocabulary or protocol that differs from
  // this run's (the message shows both protocol lines), a token count that differs.
  static Result<std::unique_ptr<KlDivergenceScorer>> open(const std::filesystem::path& path,
                                                          int64_t vocab, int64_t n_tokens,
                                                          const std::string& protocol);
  Status score(const float* logits, int64_t vocab, int32_t target) override;
  Result<KlDivergenceResult> finish() const;
  // KL(P_base || Q) of every token scored so far, in dataset order (for distributions).
  const std::vector<float>& token_klds() const { return kld_; }

 private:
  KlDivergenceScorer() = default;

  MmapFile file_;
  std::string path_;
  uint64_t offset_ = 0;
  int64_t top_k_ = 0;
  int64_t vocab_ = 0;
  int64_t expected_ = 0;
  int64_t seen_ = 0;
  int64_t agree_ = 0;
  std::vector<float> kld_;
  double sum_nll_base_ = 0;
  double sum_nll_ = 0;
  double sum_diff_sq_ = 0;  // sum of (NLL_Q - NLL_base)^2
};

}  // namespace qforge
