// Log-prob files and the KL-divergence comparison of include/qforge/eval/kl_divergence.h.
#include "qforge/eval/kl_divergence.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

namespace qforge {
namespace {

static_assert(std::endian::native == std::endian::little, "log-prob files are little-endian");

constexpr char kMagic[8] = {'Q', 'F', 'L', 'O', 'G', 'P', 'R', 'B'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedHeaderBytes = 8 + 4 + 4 + 8 + 8 + 4;

// resize + memcpy rather than insert(): GCC 12 warns (falsely) about insert() of a few bytes.
void append_bytes(std::vector<char>& out, const void* p, size_t n) {
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <typename T>
void append(std::vector<char>& out, const T& v) {
  append_bytes(out, &v, sizeof(T));
}

template <typename T>
T read_at(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

size_t record_bytes(int64_t top_k, int64_t vocab) {
  return top_k > 0 ? 12 + 8 * static_cast<size_t>(top_k) : 8 + 4 * static_cast<size_t>(vocab);
}

// logprobs[i] = logits[i] - log_sum_exp(logits).
void log_softmax(const float* logits, int64_t vocab, std::vector<float>& out) {
  const double lse = log_sum_exp(logits, vocab);
  out.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) out[i] = static_cast<float>(logits[i] - lse);
}

// Sum of a probability vector's top-k mass from log-probs, and log(1 - that) (-inf when ~0).
double tail_logprob(double top_mass) {
  const double tail = 1.0 - top_mass;
  return tail > 1e-30 ? std::log(tail) : -std::numeric_limits<double>::infinity();
}

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<size_t>(std::min<double>(
      static_cast<double>(v.size()) - 1, std::floor(q * static_cast<double>(v.size()))));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

Result<std::unique_ptr<LogprobWriter>> LogprobWriter::create(const std::filesystem::path& path,
                                                             int64_t top_k, int64_t vocab,
                                                             int64_t n_tokens,
                                                             const std::string& protocol) {
  if (top_k < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--kld-top-k {} must be >= 0 (0 stores the full vocabulary)", top_k);
  }
  if (top_k >= vocab) top_k = 0;  // the whole vocabulary anyway: store it densely
  QF_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::create(path));
  std::unique_ptr<LogprobWriter> w(new LogprobWriter(std::move(file)));
  w->top_k_ = top_k;
  w->vocab_ = vocab;
  w->expected_ = n_tokens;
  std::vector<char> header;
  append_bytes(header, kMagic, sizeof(kMagic));
  append(header, kVersion);
  append(header, static_cast<uint32_t>(top_k));
  append(header, static_cast<uint64_t>(vocab));
  append(header, static_cast<uint64_t>(n_tokens));
  append(header, static_cast<uint32_t>(protocol.size()));
  append_bytes(header, protocol.data(), protocol.size());
  QF_TRY(w->writer_.write(std::as_bytes(std::span<const char>(header))));
  return w;
}

Status LogprobWriter::score(const float* logits, int64_t vocab, int32_t target) {
  QF_CHECK(vocab == vocab_);
  log_softmax(logits, vocab, logprobs_);
  record_.clear();
  append(record_, target);
  append(record_, logprobs_[static_cast<size_t>(target)]);
  if (top_k_ == 0) {
    append_bytes(record_, logprobs_.data(), logprobs_.size() * sizeof(float));
  } else {
    order_.resize(static_cast<size_t>(vocab));
    std::iota(order_.begin(), order_.end(), 0);
    const auto k = static_cast<std::ptrdiff_t>(top_k_);
    std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), [&](int32_t a, int32_t b) {
      return logprobs_[a] > logprobs_[b] || (logprobs_[a] == logprobs_[b] && a < b);
    });
    double mass = 0;
    for (std::ptrdiff_t i = 0; i < k; ++i)
      mass += std::exp(static_cast<double>(logprobs_[order_[i]]));
    append(record_, static_cast<float>(tail_logprob(mass)));
    for (std::ptrdiff_t i = 0; i < k; ++i) {
      append(record_, order_[i]);
      append(record_, logprobs_[order_[i]]);
    }
  }
  ++written_;
  return writer_.write(std::as_bytes(std::span<const char>(record_)));
}

Status LogprobWriter::commit() {
  if (written_ != expected_) {
    return make_error(ErrorCode::kInternal, "log-prob file '{}': {} tokens written, {} announced",
                      writer_.path().string(), written_, expected_);
  }
  return writer_.commit();
}

Result<std::unique_ptr<KlDivergenceScorer>> KlDivergenceScorer::open(
    const std::filesystem::path& path, int64_t vocab, int64_t n_tokens,
    const std::string& protocol) {
  std::unique_ptr<KlDivergenceScorer> s(new KlDivergenceScorer());
  QF_ASSIGN_OR_RETURN(s->file_, MmapFile::open(path));
  s->path_ = path.string();
  const auto bytes = s->file_.bytes();
  if (bytes.size() < kFixedHeaderBytes || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    return make_error(ErrorCode::kFormat,
                      "'{}' is not a qforge log-prob file (no QFLOGPRB magic; write one with "
                      "`qforge eval ppl --save-logits`)",
                      s->path_);
  }
  const std::byte* p = bytes.data();
  const auto version = read_at<uint32_t>(p + 8);
  if (version != kVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "'{}' is log-prob file version {}; this build reads version {}", s->path_,
                      version, kVersion);
  }
  s->top_k_ = read_at<uint32_t>(p + 12);
  const auto file_vocab = read_at<uint64_t>(p + 16);
  const auto file_tokens = read_at<uint64_t>(p + 24);
  const auto protocol_bytes = read_at<uint32_t>(p + 32);
  if (kFixedHeaderBytes + protocol_bytes > bytes.size()) {
    return make_error(ErrorCode::kFormat, "'{}': truncated header", s->path_);
  }
  const std::string file_protocol(reinterpret_cast<const char*>(p) + kFixedHeaderBytes,
                                  protocol_bytes);
  if (static_cast<int64_t>(file_vocab) != vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}' was written for a vocabulary of {} but this model has {} (KL "
                      "divergence compares models with the same tokenizer)",
                      s->path_, file_vocab, vocab);
  }
  if (file_protocol != protocol || static_cast<int64_t>(file_tokens) != n_tokens) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}' was written under another protocol ({} tokens):\n  base: {}\n  this "
                      "run ({} tokens): {}\n(use the same dataset, --ctx, --stride, BOS, scoring "
                      "and --max-chunks as the baseline run)",
                      s->path_, file_tokens, file_protocol, n_tokens, protocol);
  }
  // top_k 0 stores the full vocabulary; LogprobWriter never writes top_k >= vocab, so a larger
  // one is a corrupt header (and would make every record read past the vocabulary).
  if (s->top_k_ >= vocab) {
    return make_error(ErrorCode::kFormat,
                      "'{}': top_k = {} in the header, expected 0 (full vocabulary) or 1..{} for "
                      "this model's vocabulary of {}",
                      s->path_, s->top_k_, vocab - 1, vocab);
  }
  s->vocab_ = vocab;
  s->expected_ = n_tokens;
  s->offset_ = kFixedHeaderBytes + protocol_bytes;
  // The size check in 128-bit arithmetic: a token count near 2^64 must not wrap around to a
  // product that happens to match the file size.
  const auto need = static_cast<unsigned __int128>(s->offset_) +
                    static_cast<unsigned __int128>(file_tokens) *
                        static_cast<unsigned __int128>(record_bytes(s->top_k_, vocab));
  if (static_cast<unsigned __int128>(bytes.size()) != need) {
    return make_error(
        ErrorCode::kFormat, "'{}' has {} bytes; its header implies {} (truncated or not finished?)",
        s->path_, bytes.size(),
        need > std::numeric_limits<uint64_t>::max() ? std::string("more than 2^64")
                                                    : std::to_string(static_cast<uint64_t>(need)));
  }
  s->kld_.reserve(static_cast<size_t>(n_tokens));
  return s;
}

Status KlDivergenceScorer::score(const float* logits, int64_t vocab, int32_t target) {
  if (seen_ >= expected_) {
    return make_error(ErrorCode::kInvalidArgument, "'{}': more scored tokens than the base has",
                      path_);
  }
  if (vocab != vocab_ || target < 0 || target >= vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}': scored token {} has target id {} with a vocabulary of {} (the base "
                      "has {})",
                      path_, seen_, target, vocab, vocab_);
  }
  const std::byte* rec = file_.data() + offset_;
  offset_ += record_bytes(top_k_, vocab_);
  const auto base_target = read_at<int32_t>(rec);
  if (base_target != target) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}': scored token {} is id {} in the base but {} here (the texts or "
                      "tokenizers differ)",
                      path_, seen_, base_target, target);
  }
  const double base_nll = -static_cast<double>(read_at<float>(rec + 4));
  // Log-probs are rounded to float exactly as LogprobWriter rounds them, so that a model
  // compared with itself gives bit-identical values (KLD exactly 0).
  const double lse = log_sum_exp(logits, vocab);
  const auto logprob = [&](int64_t i) {
    return static_cast<double>(static_cast<float>(logits[i] - lse));
  };
  const double nll = -logprob(target);
  const int32_t argmax = static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  double kld = 0;
  int32_t base_top = 0;
  if (top_k_ == 0) {
    const std::byte* lp = rec + 8;
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < vocab; ++i) {
      const double base_lp = read_at<float>(lp + 4 * i);
      if (base_lp > best) {
        best = static_cast<float>(base_lp);
        base_top = static_cast<int32_t>(i);
      }
      kld += std::exp(base_lp) * (base_lp - logprob(i));
    }
  } else {
    const double base_tail = read_at<float>(rec + 8);
    const std::byte* entries = rec + 12;
    base_top = read_at<int32_t>(entries);
    double q_mass = 0;
    for (int64_t i = 0; i < top_k_; ++i) {
      const auto id = read_at<int32_t>(entries + 8 * i);
      // Untrusted: an id outside [0, vocab) would index past the logits.
      if (id < 0 || id >= vocab) {
        return make_error(ErrorCode::kFormat,
                          "'{}': scored token {} has top-k entry {} with token id {}, outside "
                          "the vocabulary [0, {}) (corrupt or hostile base file)",
                          path_, seen_, i, id, vocab);
      }
      const double base_lp = read_at<float>(entries + 8 * i + 4);
      const double lq = logprob(id);
      q_mass += std::exp(lq);
      kld += std::exp(base_lp) * (base_lp - lq);
    }
    if (std::isfinite(base_tail)) {
      double q_tail = static_cast<float>(tail_logprob(q_mass));
      if (!std::isfinite(q_tail)) {
        // 1 - q_mass cancelled to <= 0 (a peaked row of a small vocabulary) while the base
        // keeps some tail mass: sum the tail itself, else one token would make the mean KLD inf.
        std::vector<char> in_top(static_cast<size_t>(vocab), 0);
        for (int64_t i = 0; i < top_k_; ++i) in_top[read_at<int32_t>(entries + 8 * i)] = 1;
        double tail = 0;
        for (int64_t i = 0; i < vocab; ++i) {
          if (!in_top[static_cast<size_t>(i)]) tail += std::exp(logprob(i));
        }
        q_tail = std::log(std::max(tail, 1e-300));
      }
      kld += std::exp(base_tail) * (base_tail - q_tail);
    }
  }
  kld_.push_back(static_cast<float>(std::max(kld, 0.0)));  // rounding can give -1e-9
  agree_ += argmax == base_top;
  sum_nll_base_ += base_nll;
  sum_nll_ += nll;
  sum_diff_sq_ += (nll - base_nll) * (nll - base_nll);
  ++seen_;
  return ok_status();
}

Result<KlDivergenceResult> KlDivergenceScorer::finish() const {
  if (seen_ != expected_) {
    return make_error(ErrorCode::kInvalidArgument, "'{}': {} tokens compared, the base has {}",
                      path_, seen_, expected_);
  }
  KlDivergenceResult r;
  const auto n = static_cast<double>(seen_);
  r.tokens = seen_;
  r.top_k = top_k_;
  double sum = 0;
  double sum_sq = 0;
  for (float k : kld_) {
    sum += k;
    sum_sq += static_cast<double>(k) * k;
    r.max_kld = std::max(r.max_kld, static_cast<double>(k));
  }
  r.mean_kld = sum / n;
  const double var = std::max(0.0, sum_sq / n - r.mean_kld * r.mean_kld);
  r.mean_kld_stderr = seen_ > 1 ? std::sqrt(var / (n - 1)) : 0;
  r.median_kld = percentile(kld_, 0.5);
  r.p99_kld = percentile(kld_, 0.99);
  r.top1_agreement = static_cast<double>(agree_) / n;
  r.top1_agreement_stderr =
      seen_ > 1 ? std::sqrt(r.top1_agreement * (1 - r.top1_agreement) / (n - 1)) : 0;
  r.ppl_base = std::exp(sum_nll_base_ / n);
  r.ppl = std::exp(sum_nll_ / n);
  r.ln_ppl_ratio = (sum_nll_ - sum_nll_base_) / n;
  r.ppl_ratio = std::exp(r.ln_ppl_ratio);
  const double dvar = std::max(0.0, sum_diff_sq_ / n - r.ln_ppl_ratio * r.ln_ppl_ratio);
  r.ln_ppl_ratio_stderr = seen_ > 1 ? std::sqrt(dvar / (n - 1)) : 0;
  return r;
}

}  // namespace qforge
