// CPU runtime benchmark: prefill and decode throughput at batch 1 on one InferenceSession, and
// the memory-bound limit of decode measured in the same run (bytes of weights one decode step
// reads / a read bandwidth measured with the same threads), so that the ratio is meaningful on
// whatever machine runs it.
#pragma once

#include <cstdint>
#include <memory>

#include "qforge/core/error.h"
#include "qforge/model/model.h"

namespace qforge {

struct ReadBandwidth {
  double gbps = 0;     // best of the repeats, 1e9 bytes/s
  uint64_t bytes = 0;  // buffer size
  int threads = 0;
};

// Streams a freshly allocated (and first-touched) buffer of `bytes` with every qforge thread,
// `repeats` times, and reports the best pass: the memory read bandwidth a GEMV can hope for.
Result<ReadBandwidth> measure_read_bandwidth(uint64_t bytes, int repeats);

// The same probe over memory that already exists (e.g. the mmapped weights), once.
double measure_read_bandwidth_of(const void* data, uint64_t bytes);

struct ForwardBenchOptions {
  int64_t prompt_tokens = 128;  // prefill length
  int64_t decode_tokens = 32;   // decode steps timed after the prefill
  int repeats = 3;              // prefill/decode runs; the best is reported
  uint64_t bandwidth_bytes = uint64_t{1} << 30;
  uint64_t seed = 0;  // the (random) prompt ids
};

struct ForwardBenchResult {
  double prefill_tokens_per_second = 0;
  double decode_tokens_per_second = 0;
  double decode_ms_per_token = 0;
  uint64_t decode_weight_bytes = 0;           // read per decode step
  ReadBandwidth bandwidth;                    // the highest probe of the run
  double decode_bound_tokens_per_second = 0;  // bandwidth / decode_weight_bytes
  double decode_fraction_of_bound = 0;
  double weights_read_gbps = 0;      // the probe over the model's own (mmapped) weights
  double effective_decode_gbps = 0;  // decode_weight_bytes * decode tok/s
  // Memory: the process's peak RSS (VmHWM) after prefill and decode, before the bandwidth probe
  // allocates its buffer, against the model's weight bytes (mmapped) plus the KV cache used.
  uint64_t peak_rss_bytes = 0;
  uint64_t weight_bytes = 0;
  uint64_t kv_cache_bytes_used = 0;
};

// VmHWM of this process from /proc/self/status (0 where unavailable).
uint64_t peak_rss_bytes();

// Warms the model up (one prefill touches every weight page), then times prefill of a random
// prompt and greedy decode of `decode_tokens` tokens, `repeats` times each (best reported),
// probing the read bandwidth before every decode run and once at the end (highest reported: the
// bound is conservative when the machine's bandwidth drifts). Errors: prompt + decode longer
// than the context.
Result<ForwardBenchResult> run_forward_bench(const std::shared_ptr<const Model>& model,
                                             const ForwardBenchOptions& options);

}  // namespace qforge
