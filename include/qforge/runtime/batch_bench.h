// Batched-runtime benchmark: for each batch size B, B random prompts of input_len tokens run
// together through one LLM's scheduler (greedy, output_len tokens each, EOS ignored). Reports
// prefill and decode tokens/s, time to first token, inter-token latency, peak RSS, and the
// memory-bound limit of a decode step measured in the same run: a decode step at batch B reads
// every weight once plus the KV pages of the B sequences, so its bound is
//   B tokens / ((decode_weight_bytes + B * kv_bytes_per_sequence) / read bandwidth).
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/runtime/cpu_bench.h"
#include "qforge/runtime/llm.h"

namespace qforge {

struct BatchBenchOptions {
  std::vector<int64_t> batches = {1, 8, 32};
  int64_t input_len = 128;
  int64_t output_len = 32;
  uint64_t bandwidth_bytes = uint64_t{1} << 30;
  uint64_t seed = 0;
};

struct BatchBenchRow {
  int64_t batch = 0;
  // Prompt tokens / seconds of the steps that ran prefill chunks.
  double prefill_tokens_per_second = 0;
  // Tokens / seconds of the steps that only decoded (every sequence one token).
  double decode_tokens_per_second = 0;
  double ttft_mean_s = 0;  // arrival -> first token, mean over the batch
  double ttft_max_s = 0;
  double itl_mean_s = 0;         // (last token - first token) / (tokens - 1), mean over the batch
  double decode_step_bytes = 0;  // weights + KV pages read by one decode step (mid-generation)
  double decode_bound_tokens_per_second = 0;
  double decode_fraction_of_bound = 0;
  double seconds = 0;  // whole run
  int64_t steps = 0;
};

struct BatchBenchResult {
  std::vector<BatchBenchRow> rows;
  ReadBandwidth bandwidth;  // measured after the runs (its buffer does not count in peak RSS)
  uint64_t decode_weight_bytes = 0;
  uint64_t peak_rss_bytes = 0;  // VmHWM after the runs, before the bandwidth probe
  uint64_t kv_pool_bytes = 0;   // reserved (untouched pages cost no RSS)
  uint64_t kv_bytes_per_token = 0;
};

// Errors: a batch larger than the LLM's max_batch_size, input_len + output_len beyond its
// max_seq_len, input_len beyond max_input_len, or a KV pool too small for one full batch.
Result<BatchBenchResult> run_batch_bench(LLM& llm, const BatchBenchOptions& options);

}  // namespace qforge
