// pipeline_steps.h: import, baseline, calibration, build and validation, on the library's own
// pieces: make_ppl_dataset / evaluate_perplexity / LogprobWriter / KlDivergenceScorer (as
// `qforge eval ppl`), evaluate_multiple_choice (`qforge eval mc`), load_calib_dataset and the
// calibration block walk (as quantize), quantize(), build_engine(), generate().
#include "pipeline/pipeline_steps.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/progress.h"
#include "qforge/core/text_file.h"
#include "qforge/engine/engine.h"
#include "qforge/eval/multiple_choice.h"
#include "qforge/eval/perplexity.h"
#include "qforge/io/checkpoint_info.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/generate.h"
#include "quant/block_runner.h"

namespace qforge::pipeline_internal {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProjNames[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                      "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                      "mlp.down_proj"};

PerplexityOptions ppl_options(const PipelineConfig& c) {
  PerplexityOptions o;
  o.ctx = c.ctx;
  o.stride = c.stride;
  o.add_bos = c.bos;
  o.scoring = parse_ppl_scoring(c.scoring).value_or(PplScoring::kAll);
  o.max_chunks = c.max_chunks;
  o.doc_separator = c.doc_separator;
  return o;
}

Result<PplDataset> eval_dataset(const PipelineConfig& c, const Tokenizer& tokenizer) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(c.eval_dataset, "eval.dataset"));
  QF_TRY(check_utf8_text(text, fmt::format("eval.dataset '{}'", c.eval_dataset)));
  // The dataset name in the protocol line is the path as configured: `qforge eval ppl
  // --dataset <the same path>` reproduces it (and its --kl-divergence-base check accepts it).
  return make_ppl_dataset(text, tokenizer, ppl_options(c), c.eval_dataset);
}

PplSummary summarize(const PerplexityResult& r) {
  return {r.ppl, r.ppl_stderr, r.mean_nll, r.scored_tokens, r.chunks, r.seconds};
}

int64_t session_context(const PipelineConfig& c, const Model& m) {
  return std::min(c.max_seq_len, m.config().max_position_embeddings);
}

Result<std::vector<TaskScore>> score_tasks(const PipelineConfig& c,
                                           const std::shared_ptr<const Model>& model,
                                           const Tokenizer& tokenizer, bool progress) {
  std::vector<TaskScore> out;
  if (c.tasks.empty()) return out;
  QF_ASSIGN_OR_RETURN(McFormat format, parse_mc_format(c.task_format));
  SessionOptions so;
  so.context_length = session_context(c, *model);
  QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(model, so));
  for (const std::string& path : c.tasks) {
    QF_ASSIGN_OR_RETURN(McTask task, load_mc_task(path, format));
    McOptions o;
    o.limit = c.task_limit;
    o.show_progress = progress;
    QF_ASSIGN_OR_RETURN(McResult r, evaluate_multiple_choice(session, tokenizer, task, o));
    out.push_back({r.task, r.examples, r.acc, r.acc_stderr, r.acc_norm, r.acc_norm_stderr});
  }
  return out;
}

// Greedy decode of decode_tokens after the prompt (EOS ignored): decode tokens per second.
Result<double> decode_speed(const PipelineConfig& c, const std::shared_ptr<const Model>& model,
                            const Tokenizer& tokenizer) {
  SessionOptions so;
  so.context_length = session_context(c, *model);
  QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(model, so));
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, tokenizer.encode(c.decode_prompt, true));
  if (prompt.empty()) prompt.push_back(0);
  SamplingParams sp;
  sp.max_tokens =
      std::min<int64_t>(c.decode_tokens, so.context_length - static_cast<int64_t>(prompt.size()));
  sp.ignore_eos = true;
  if (sp.max_tokens < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval.decode_prompt ({} tokens) leaves no room in the {}-token context",
                      prompt.size(), so.context_length);
  }
  // One warm-up run (page faults, caches), then the best of three: a short timing on a shared
  // machine is otherwise dominated by whoever else ran in the same milliseconds.
  double best = 0;
  for (int run = 0; run < 4; ++run) {
    session.reset();
    QF_ASSIGN_OR_RETURN(GenerationResult g, generate(session, tokenizer, prompt, sp));
    if (run > 0 && g.decode_seconds > 0) {
      best = std::max(best, static_cast<double>(g.output_ids.size()) / g.decode_seconds);
    }
  }
  return best;
}

// Bytes of the decoder layers' linear tensors (codes, scales) over their weight count.
Result<SizeSummary> layer_size(const std::string& checkpoint, const ModelConfig& mc) {
  QF_ASSIGN_OR_RETURN(CheckpointInfo info, describe_checkpoint(checkpoint));
  SizeSummary s;
  s.bytes = info.file_bytes;
  for (const CheckpointTensor& t : info.tensors) {
    if (!t.name.starts_with("model.layers.")) continue;
    for (const char* p : kProjNames) {
      if (t.name.find(std::string(".") + p + ".") != std::string::npos) {
        s.layer_bytes += t.nbytes;
        break;
      }
    }
  }
  const int64_t d = mc.hidden_size;
  s.layer_weights = mc.num_hidden_layers * (d * (mc.q_dim() + 2 * mc.kv_dim()) + mc.q_dim() * d +
                                            3 * d * mc.intermediate_size);
  s.bits_per_weight =
      s.layer_weights > 0 ? 8.0 * static_cast<double>(s.layer_bytes) / s.layer_weights : 0;
  return s;
}

KldHistogram kld_histogram(const std::vector<float>& klds) {
  KldHistogram h;
  const int bins = 1 + static_cast<int>(std::lround(7.0 / h.bin_width));  // up to 10^1
  h.counts.assign(static_cast<size_t>(bins), 0);
  for (float k : klds) {
    int b = 0;
    if (k > 0 && std::log10(k) >= h.log10_min) {
      b = 1 + static_cast<int>(std::floor((std::log10(k) - h.log10_min) / h.bin_width));
    }
    ++h.counts[static_cast<size_t>(std::clamp(b, 0, bins - 1))];
  }
  return h;
}

// Modules whose input width the candidate format's blocks do not divide (the export layout
// stores whole groups only): left unquantized when exclude_incompatible is on.
Result<std::vector<std::string>> incompatible_modules(const QuantConfig& q, const ModelConfig& mc) {
  std::vector<std::string> out;
  for (int64_t b = 0; b < mc.num_hidden_layers; ++b) {
    for (const char* p : kProjNames) {
      const std::string module = fmt::format("model.layers.{}.{}", b, p);
      const std::string_view name(p);
      const int64_t cols = name.ends_with("o_proj")      ? mc.q_dim()
                           : name.ends_with("down_proj") ? mc.intermediate_size
                                                         : mc.hidden_size;
      QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_module(q, module));
      const QuantFormat f = s.weight.format;
      const bool blocked = f == QuantFormat::INT4_GROUP || f == QuantFormat::UINT4_GROUP ||
                           f == QuantFormat::NVFP4 || f == QuantFormat::MXFP4;
      if (s.quantized() && blocked && s.weight.group_size > 0 && cols % s.weight.group_size != 0) {
        out.push_back(module);
      }
    }
  }
  return out;
}

Result<QuantAlgo> parse_kv(const std::string& kv) {
  if (kv == "none") return QuantAlgo::NO_QUANT;
  if (kv == "fp8") return QuantAlgo::FP8;
  if (kv == "int8") return QuantAlgo::INT8;
  return make_error(ErrorCode::kInvalidArgument, "kv_cache '{}': expected fp8, int8 or none", kv);
}

}  // namespace

Result<std::string> import_model(const PipelineConfig& c, const fs::path& dir) {
  QF_ASSIGN_OR_RETURN(LoadedModel loaded, load_model(c.model));
  HfExportOptions o;
  o.dtype = DType::F32;
  o.tokenizer_path = c.tokenizer;
  const fs::path out = dir / "hf";
  QF_TRY(export_hf_checkpoint(loaded, out, o));
  return out.string();
}

CalibConfig pipeline_calib_config(const PipelineConfig& c) {
  CalibConfig k;
  k.paths = c.calib_dataset;
  k.calib_size = c.calib_samples;
  k.calib_batch_size = c.calib_batch;
  k.calib_max_seq_length = c.calib_max_length;
  k.seed = c.calib_seed;
  k.amax_method = c.amax_method;
  return k;
}

Result<BaselineResult> run_baseline(const PipelineConfig& c, const std::string& hf_dir,
                                    const fs::path& dir, bool progress) {
  BaselineResult r;
  r.model = hf_dir;
  QF_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::load(hf_dir));
  const ModelConfig& mc = model->config();
  if (c.ctx > mc.max_position_embeddings) {
    return make_error(ErrorCode::kInvalidArgument,
                      "eval.ctx {} exceeds the model's max_position_embeddings {}", c.ctx,
                      mc.max_position_embeddings);
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                      load_tokenizer_for_model(hf_dir, "", mc.vocab_size));
  QF_ASSIGN_OR_RETURN(PplDataset ds, eval_dataset(c, *tokenizer));
  r.protocol = ds.protocol;
  r.logprobs = (dir / "base_logprobs.bin").string();
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<LogprobWriter> writer,
      LogprobWriter::create(r.logprobs, c.kld_top_k, mc.vocab_size, ds.scored_tokens, ds.protocol));
  SessionOptions so;
  so.context_length = c.ctx;
  QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(model, so));
  QF_ASSIGN_OR_RETURN(PerplexityResult p, evaluate_perplexity(session, ds, writer.get(), progress));
  QF_TRY(writer->commit());
  r.ppl = summarize(p);
  std::shared_ptr<const Model> shared = model;
  QF_ASSIGN_OR_RETURN(r.tasks, score_tasks(c, shared, *tokenizer, progress));
  QF_ASSIGN_OR_RETURN(r.tokens_per_second, decode_speed(c, shared, *tokenizer));
  QF_ASSIGN_OR_RETURN(r.size, layer_size(hf_dir, mc));
  return r;
}

Result<CalibrationResult> run_calibration(const PipelineConfig& c, const std::string& hf_dir,
                                          const fs::path& dir, bool progress) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::load(hf_dir));
  const ModelConfig& mc = model->config();
  QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, load_tokenizer(hf_dir));
  const CalibConfig k = pipeline_calib_config(c);
  QF_TRY(validate_calib_config(k));
  if (k.calib_max_seq_length > mc.max_position_embeddings) {
    return make_error(ErrorCode::kInvalidArgument,
                      "calibration.max_length {} exceeds the model's {} positions",
                      k.calib_max_seq_length, mc.max_position_embeddings);
  }
  QF_ASSIGN_OR_RETURN(CalibDataset calib, load_calib_dataset(k, *tokenizer));
  CalibrationResult r;
  r.samples = static_cast<int64_t>(calib.samples.size());
  r.sample_tokens = k.calib_max_seq_length;
  r.total_tokens = calib.total_tokens;
  r.documents = calib_documents_seen(calib);
  r.fingerprint = fmt::format("{:016x}", calib_dataset_fingerprint(calib));

  // The unquantized model walked block by block over the samples (quantize's calibration walk,
  // without quantizing): statistics of each linear group's input and of K/V.
  const int64_t d = mc.hidden_size;
  const int64_t seq = k.calib_max_seq_length;
  std::vector<float> hidden(static_cast<size_t>(r.samples * seq * d));
  for (int64_t s = 0; s < r.samples; ++s) {
    for (int64_t t = 0; t < seq; ++t) {
      model->embed_tokens().row_to_f32(
          calib.samples[static_cast<size_t>(s)][static_cast<size_t>(t)],
          hidden.data() + (s * seq + t) * d);
    }
  }
  quant_internal::BlockRunner runner(mc, seq);
  ProgressOptions po;
  po.enabled = progress;
  po.unit = "block";
  ProgressBar bar("calibration statistics", mc.num_hidden_layers, po);
  for (int64_t b = 0; b < mc.num_hidden_layers; ++b) {
    BlockActivationStats st;
    std::array<double, 4> sumsq{};
    std::array<double, 4> count{};
    const quant_internal::InputTap tap = [&](quant_internal::LinearGroup g, const float* x,
                                             int64_t n, int64_t cols) {
      const auto gi = static_cast<size_t>(g);
      for (int64_t i = 0; i < n * cols; ++i) {
        st.amax[gi] = std::max(st.amax[gi], static_cast<double>(std::fabs(x[i])));
        sumsq[gi] += static_cast<double>(x[i]) * x[i];
      }
      count[gi] += static_cast<double>(n * cols);
    };
    const int64_t kv_n = mc.num_key_value_heads * seq * mc.head_dim;
    const quant_internal::KvTap kv_tap = [&](const float* kk, const float* vv) {
      for (int64_t i = 0; i < kv_n; ++i) {
        st.k_amax = std::max(st.k_amax, static_cast<double>(std::fabs(kk[i])));
        st.v_amax = std::max(st.v_amax, static_cast<double>(std::fabs(vv[i])));
      }
    };
    for (int64_t s = 0; s < r.samples; ++s) {
      runner.run(model->layer(b), hidden.data() + s * seq * d, &tap, &kv_tap, nullptr, b);
    }
    for (size_t g = 0; g < 4; ++g) st.rms[g] = count[g] > 0 ? std::sqrt(sumsq[g] / count[g]) : 0;
    r.blocks.push_back(st);
    bar.advance();
  }
  bar.finish();
  nlohmann::json stats = nlohmann::json::array();
  static const char* kGroups[] = {"attn_in", "attn_out", "mlp_in", "mlp_mid"};
  for (size_t b = 0; b < r.blocks.size(); ++b) {
    nlohmann::json j = {
        {"block", b}, {"k_amax", r.blocks[b].k_amax}, {"v_amax", r.blocks[b].v_amax}};
    for (size_t g = 0; g < 4; ++g) {
      j[kGroups[g]] = {{"amax", r.blocks[b].amax[g]}, {"rms", r.blocks[b].rms[g]}};
    }
    stats.push_back(std::move(j));
  }
  nlohmann::json sources = nlohmann::json::array();
  for (const CalibSource& s : calib.sources) {
    sources.push_back({{"path", s.path},
                       {"documents", s.documents},
                       {"tokens", s.tokens},
                       {"chunks", s.chunks},
                       {"samples", s.samples}});
  }
  const nlohmann::json file = {{"samples", r.samples},
                               {"sample_tokens", r.sample_tokens},
                               {"total_tokens", r.total_tokens},
                               {"documents", r.documents},
                               {"fingerprint", r.fingerprint},
                               {"sources", sources},
                               {"blocks", stats}};
  r.stats_file = (dir / "calib_stats.json").string();
  QF_TRY(write_file_atomic(r.stats_file, file.dump(1) + "\n"));
  return r;
}

Result<CandidateResult> run_build(const PipelineConfig& c, const PipelineCandidate& cand,
                                  const std::string& hf_dir, const fs::path& dir, bool progress) {
  CandidateResult r;
  r.candidate = cand;
  QuantizeOptions o;
  o.model_dir = hf_dir;
  o.output_dir = (dir / "checkpoint").string();
  o.calib = pipeline_calib_config(c);
  o.show_progress = progress;
  // An interrupted build of this step (same key: same model, data and settings) continues from
  // quantize's last finished block; a finished checkpoint whose engine build was cut is redone.
  o.resume = true;
  o.overwrite = true;
  QuantConfig& q = o.quant_config;
  QF_ASSIGN_OR_RETURN(q.quant_algo, parse_qformat(cand.qformat));
  QF_ASSIGN_OR_RETURN(q.kv_cache_quant_algo, parse_kv(cand.kv_cache));
  q.group_size = cand.group_size;
  for (const std::string& e : cand.exclude) q.exclude_modules.push_back(e);
  QF_TRY(validate_quant_config(q));
  QF_ASSIGN_OR_RETURN(std::string config_text,
                      read_text_input(fs::path(hf_dir) / "config.json", "config.json", 1 << 20));
  QF_ASSIGN_OR_RETURN(std::shared_ptr<const Model> src, Model::load(hf_dir));
  const ModelConfig mc = src->config();
  src.reset();
  if (cand.exclude_incompatible) {
    QF_ASSIGN_OR_RETURN(r.excluded_incompatible, incompatible_modules(q, mc));
    for (const std::string& m : r.excluded_incompatible) q.exclude_modules.push_back(m);
    if (!r.excluded_incompatible.empty()) {
      log_warn(
          "candidate '{}': {} layers left unquantized ({}'s blocks do not divide their "
          "input width), e.g. {}",
          cand.name, r.excluded_incompatible.size(), cand.qformat, r.excluded_incompatible.front());
    }
  }
  QF_ASSIGN_OR_RETURN(QuantizeReport qr, quantize(o).context("candidate '" + cand.name + "'"));
  r.checkpoint = o.output_dir;
  r.layers = qr.layers;
  r.quantize_seconds = qr.seconds;

  BuildConfig bc;
  bc.max_input_len = c.max_input_len;
  bc.max_seq_len = c.max_seq_len;
  bc.max_batch_size = c.max_batch_size;
  QF_ASSIGN_OR_RETURN(bc.precision, parse_dtype(c.precision));
  bc.kernel_selection = c.kernel_selection;
  r.engine = (dir / "model.engine").string();
  std::error_code ec;
  fs::remove(r.engine, ec);
  std::unique_ptr<ProgressBar> bar;
  BuildProgress bp;
  bp.on_step = [&](int64_t done, int64_t total, const std::string&) {
    if (!bar) {
      ProgressOptions po;
      po.enabled = progress;
      po.unit = "layer";
      bar = std::make_unique<ProgressBar>("engine " + cand.name, total, po);
    }
    bar->set(done);
  };
  QF_ASSIGN_OR_RETURN(
      EngineBuildReport br,
      build_engine(r.checkpoint, bc, r.engine, bp).context("candidate '" + cand.name + "'"));
  if (bar) bar->finish();
  r.build_seconds = br.seconds;
  QF_ASSIGN_OR_RETURN(r.size, layer_size(r.checkpoint, mc));
  r.size.bytes = br.file_bytes;
  return r;
}

Status run_validate(const PipelineConfig& c, const BaselineResult& baseline, CandidateResult& r,
                    bool progress) {
  QF_ASSIGN_OR_RETURN(Engine engine, load_engine(r.engine));
  const std::shared_ptr<const Model> model = engine.model;
  const ModelConfig& mc = model->config();
  std::shared_ptr<const Tokenizer> tokenizer = engine.tokenizer;
  if (tokenizer == nullptr) {
    QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> t,
                        load_tokenizer_for_model(baseline.model, "", mc.vocab_size));
    tokenizer = std::move(t);
  }
  QF_ASSIGN_OR_RETURN(PplDataset ds, eval_dataset(c, *tokenizer));
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<KlDivergenceScorer> kld,
      KlDivergenceScorer::open(baseline.logprobs, mc.vocab_size, ds.scored_tokens, ds.protocol));
  SessionOptions so;
  so.context_length = c.ctx;
  QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(model, so));
  QF_ASSIGN_OR_RETURN(PerplexityResult p, evaluate_perplexity(session, ds, kld.get(), progress));
  r.ppl = summarize(p);
  r.delta_ppl_percent = 100.0 * (p.ppl / baseline.ppl.ppl - 1.0);
  QF_ASSIGN_OR_RETURN(r.kld, kld->finish());
  r.kld_histogram = kld_histogram(kld->token_klds());
  QF_ASSIGN_OR_RETURN(r.tasks, score_tasks(c, model, *tokenizer, progress));
  QF_ASSIGN_OR_RETURN(r.tokens_per_second, decode_speed(c, model, *tokenizer));
  return ok_status();
}

}  // namespace qforge::pipeline_internal
