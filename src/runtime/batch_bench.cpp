// The batched-runtime benchmark of include/qforge/runtime/batch_bench.h: one scheduler run per
// batch size, timed step by step (prefill-carrying steps and pure decode steps apart).
#include "qforge/runtime/batch_bench.h"

#include <algorithm>

#include "qforge/core/rng.h"

namespace qforge {

Result<BatchBenchResult> run_batch_bench(LLM& llm, const BatchBenchOptions& o) {
  Scheduler& s = llm.scheduler();
  const SchedulerConfig& sc = s.config();
  const ModelConfig& c = llm.model().config();
  if (o.input_len < 1 || o.output_len < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "bench: --input-len {} must be >= 1 and --output-len {} >= 2", o.input_len,
                      o.output_len);
  }
  if (o.input_len > sc.max_input_len || o.input_len + o.output_len > sc.max_seq_len) {
    return make_error(ErrorCode::kInvalidArgument,
                      "bench: --input-len {} + --output-len {} do not fit max_input_len {} / "
                      "max_seq_len {}",
                      o.input_len, o.output_len, sc.max_input_len, sc.max_seq_len);
  }
  const PagedKvCache& kv = s.kv_cache();
  for (int64_t b : o.batches) {
    if (b < 1 || b > sc.max_batch_size) {
      return make_error(ErrorCode::kInvalidArgument,
                        "bench: batch {} is outside [1, max_batch_size = {}]", b,
                        sc.max_batch_size);
    }
    const int64_t need = b * kv.blocks_for(o.input_len + o.output_len - 1);
    if (need > kv.total_blocks()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "bench: batch {} needs {} KV pages but the pool has {}", b, need,
                        kv.total_blocks());
    }
  }
  BatchBenchResult result;
  result.decode_weight_bytes = llm.model().decode_weight_bytes();
  result.kv_pool_bytes = kv.pool_bytes();
  result.kv_bytes_per_token = kv.bytes_per_token();
  SamplingParams params;
  params.max_tokens = o.output_len;
  params.ignore_eos = true;
  Rng rng(o.seed);
  const auto prompt = [&] {
    std::vector<int32_t> p(static_cast<size_t>(o.input_len));
    for (int32_t& id : p) id = static_cast<int32_t>(rng.uniform_int(c.vocab_size));
    return p;
  };
  // Warm-up: every weight page read once, scratch buffers grown.
  {
    SamplingParams warm = params;
    warm.max_tokens = 2;
    QF_TRY(s.add_request(prompt(), warm));
    while (s.has_unfinished()) QF_TRY(s.step());
    s.take_finished();
  }
  for (int64_t b : o.batches) {
    BatchBenchRow row;
    row.batch = b;
    for (int64_t i = 0; i < b; ++i) QF_TRY(s.add_request(prompt(), params));
    double prefill_s = 0, decode_s = 0;
    int64_t prefill_tokens = 0, decode_tokens = 0;
    while (s.has_unfinished()) {
      QF_TRY(s.step());
      const StepStats& st = s.last_step();
      ++row.steps;
      row.seconds += st.seconds;
      if (st.prefill_tokens > 0) {
        prefill_s += st.seconds;
        prefill_tokens += st.prefill_tokens;
      } else if (st.decode_tokens == b) {  // the whole batch decoding
        decode_s += st.seconds;
        decode_tokens += st.decode_tokens;
      }
    }
    const std::vector<RequestOutput> outs = s.take_finished();
    for (const RequestOutput& r : outs) {
      const double ttft = r.first_token_time - r.arrival_time;
      row.ttft_mean_s += ttft / static_cast<double>(outs.size());
      row.ttft_max_s = std::max(row.ttft_max_s, ttft);
      const auto n = static_cast<double>(r.output_ids.size());
      if (n > 1) {
        row.itl_mean_s +=
            (r.finish_time - r.first_token_time) / (n - 1) / static_cast<double>(outs.size());
      }
    }
    row.prefill_tokens_per_second =
        prefill_s > 0 ? static_cast<double>(prefill_tokens) / prefill_s : 0;
    row.decode_tokens_per_second = decode_s > 0 ? static_cast<double>(decode_tokens) / decode_s : 0;
    // A decode step midway through generation reads every weight once and each sequence's K/V
    // for about input_len + output_len / 2 positions.
    row.decode_step_bytes = static_cast<double>(result.decode_weight_bytes) +
                            static_cast<double>(b) *
                                static_cast<double>(o.input_len + o.output_len / 2) *
                                static_cast<double>(result.kv_bytes_per_token);
    result.rows.push_back(row);
  }
  result.peak_rss_bytes = peak_rss_bytes();
  QF_ASSIGN_OR_RETURN(result.bandwidth, measure_read_bandwidth(o.bandwidth_bytes, 5));
  for (BatchBenchRow& row : result.rows) {
    row.decode_bound_tokens_per_second =
        static_cast<double>(row.batch) * result.bandwidth.gbps * 1e9 / row.decode_step_bytes;
    row.decode_fraction_of_bound =
        row.decode_tokens_per_second / row.decode_bound_tokens_per_second;
  }
  return result;
}

}  // namespace qforge
