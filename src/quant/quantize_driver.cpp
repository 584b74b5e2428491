// qforge::quantize (include/qforge/quant/quantize.h): output-directory safety, fingerprint and
// resume, calibration data, the block-by-block walk, and the final checkpoint files.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qforge/calib/observer.h"
#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/path_guard.h"
#include "qforge/core/progress.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"
#include "qforge/model/model.h"
#include "qforge/quant/quantize.h"
#include "qforge/tokenizer/tokenizer.h"
#include "quant/auto_quantize_plan.h"
#include "quant/block_quantizer.h"
#include "quant/checkpoint_export.h"
#include "quant/partial_run.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using quant_internal::PartialState;

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

Result<std::string> read_file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read '{}'", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quant_config_text(const QuantizeOptions& o) {
  const QuantConfig& q = o.quant_config;
  nlohmann::json j;
  j["quant_algo"] = quant_algo_name(q.quant_algo);
  j["kv"] = quant_algo_name(q.kv_cache_quant_algo);
  j["group_size"] = q.group_size;
  j["alpha"] = q.smoothquant_val;
  j["zero_point"] = q.has_zero_point;
  j["clamp"] = q.clamp_val;
  j["exclude"] = q.exclude_modules;
  nlohmann::json ov = nlohmann::json::array();
  for (const auto& [p, a] : q.layer_overrides) ov.push_back({p, quant_algo_name(a)});
  j["overrides"] = ov;
  j["auto_bits"] = q.auto_quantize_bits;
  nlohmann::json cand = nlohmann::json::array();
  for (QuantAlgo a : q.auto_quantize_candidates) cand.push_back(quant_algo_name(a));
  j["auto_candidates"] = cand;
  j["kv_per_head"] = q.kv_cache_per_head;
  j["export"] = o.export_format == QuantExportFormat::kModelOpt ? "modelopt" : "ct";
  j["amax"] = o.calib.amax_method;
  j["percentile"] = o.calib.percentile;
  j["awq_tokens"] = o.awq_max_tokens;
  j["awq"] = {o.awq_grid, awq_duo_scaling_name(o.awq_duo_scaling)};
  j["gptq"] = {o.gptq.percdamp,
               o.gptq.act_order,
               o.gptq.block_size,
               o.gptq.scale_search_grid,
               o.gptq.scale_search_max_shrink,
               o.gptq.true_sequential};
  j["version"] = 2;  // bump when the algorithms change what they write
  return j.dump();
}

// Everything the output depends on: config.json, every safetensors file's size, mtime and
// header (names, dtypes, shapes, offsets), the calibration samples and the configuration. File
// contents are not read: that would page the whole model in (and a changed file has a new mtime).
Result<std::string> run_fingerprint(const QuantizeOptions& o, const CalibDataset& calib) {
  std::vector<std::string> parts;
  const fs::path dir(o.model_dir);
  QF_ASSIGN_OR_RETURN(std::string config, read_file_text(dir / "config.json"));
  parts.push_back(std::move(config));
  std::vector<fs::path> shards;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors" && e.is_regular_file(ec)) {
      shards.push_back(e.path());  // (a FIFO named *.safetensors would block the read below)
    }
  }
  std::sort(shards.begin(), shards.end());
  for (const auto& shard : shards) {
    std::ifstream in(shard, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    std::string header(static_cast<size_t>(std::min<uint64_t>(n, kSafetensorsMaxHeaderBytes)),
                       '\0');
    in.read(header.data(), static_cast<std::streamsize>(header.size()));
    const auto mtime = fs::last_write_time(shard, ec).time_since_epoch().count();
    parts.push_back(
        fmt::format("{} {} {} ", shard.filename().string(), fs::file_size(shard, ec), mtime) +
        header);
  }
  parts.push_back(fmt::format("{:016x}", calib_dataset_fingerprint(calib)));
  parts.push_back(quant_config_text(o));
  return quant_internal::fingerprint_parts(parts);
}

// Peak memory of the walk: the hidden states plus the larger of one block's work (its F32
// working, reference and dequantized copies, codes, GPTQ Hessians, activations) and the pages
// of the embedding while its shard streams out.
uint64_t estimate_peak_bytes(const ModelConfig& c, int64_t samples, int64_t seq_len, bool gptq,
                             uint64_t embed_bytes) {
  const auto d = static_cast<uint64_t>(c.hidden_size);
  const auto inter = static_cast<uint64_t>(c.intermediate_size);
  const uint64_t block_params = d * static_cast<uint64_t>(c.q_dim() + 2 * c.kv_dim()) +
                                static_cast<uint64_t>(c.q_dim()) * d + 3 * d * inter;
  const uint64_t hidden = static_cast<uint64_t>(samples * seq_len) * d * 4;
  const uint64_t activations = static_cast<uint64_t>(seq_len) * (6 * d + 3 * inter) * 4;
  uint64_t hessians = 0;
  if (gptq)
    hessians = 8 * (2 * d * d + inter * inter + static_cast<uint64_t>(c.q_dim() * c.q_dim()));
  return hidden + std::max(activations + block_params * 4 * 4 + hessians, embed_bytes);
}

Status check_output_paths(const QuantizeOptions& o, const fs::path& out, const fs::path& partial) {
  // --overwrite replaces `out` (and --resume / a fresh run `partial`) wholesale: neither may be,
  // hold or sit inside the model or a calibration input.
  std::vector<fs::path> inputs = {o.model_dir};
  for (const std::string& c : o.calib.paths) inputs.emplace_back(c);
  QF_TRY(check_output_path(out, inputs, OutputKind::kDirectory, "quantize: --output"));
  QF_TRY(check_output_path(partial, inputs, OutputKind::kDirectory,
                           "quantize: the partial-run directory"));
  // publish_directory() moves an old output aside to <out>.replaced and deletes it.
  QF_TRY(check_output_path(out.string() + ".replaced", inputs, OutputKind::kDirectory,
                           "quantize: the set-aside directory"));
  std::error_code ec;
  if (fs::exists(out, ec) && !o.overwrite) {
    return make_error(ErrorCode::kInvalidArgument,
                      "output directory '{}' already exists; pass --overwrite to replace it",
                      out.string());
  }
  if (fs::exists(partial, ec) && !o.resume) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}' holds an interrupted run; pass --resume to continue it (or delete it "
                      "to start over)",
                      partial.string());
  }
  if (!fs::exists(out.parent_path().empty() ? fs::path(".") : out.parent_path(), ec)) {
    return make_error(ErrorCode::kNotFound, "the parent directory of '{}' does not exist",
                      out.string());
  }
  return ok_status();
}

std::vector<float> embed_samples(const Model& model, const CalibDataset& calib) {
  const int64_t d = model.config().hidden_size;
  const auto seq = static_cast<int64_t>(calib.samples[0].size());
  std::vector<float> hidden(calib.samples.size() * static_cast<size_t>(seq * d));
  for (size_t s = 0; s < calib.samples.size(); ++s) {
    for (int64_t t = 0; t < seq; ++t) {
      model.embed_tokens().row_to_f32(calib.samples[s][static_cast<size_t>(t)],
                                      hidden.data() + (static_cast<int64_t>(s) * seq + t) * d);
    }
  }
  return hidden;
}

// Drops block `b`'s source weight pages once it is done (they are never read again).
void release_block_pages(const Model& model, int64_t b) {
  const std::string prefix = fmt::format("model.layers.{}.", b);
  for (auto it = model.weights().tensors().lower_bound(prefix);
       it != model.weights().tensors().end() && it->first.starts_with(prefix); ++it) {
    if (it->second.is_contiguous()) {
      release_mapped_pages(it->second.data(), it->second.nbytes());
    }
  }
}

// Dequantization scales from the per-block K/V ranges ([1] per block, or one per KV head): the
// flattened list is per layer or per layer and head, as KvCacheQuant stores it.
std::vector<float> kv_scales(const std::vector<std::vector<float>>& amax, QuantAlgo algo) {
  const float qmax = algo == QuantAlgo::INT8 ? 127.0f : 448.0f;
  std::vector<float> out;
  for (const auto& block : amax) {
    for (float a : block) out.push_back(a > 0 ? a / qmax : 1.0f);
  }
  return out;
}

// Every quantized layer's format must be storable in the export layout (check_layer_exportable):
// checked before any work starts. MIXED_PRECISION's plan avoids unstorable formats itself.
Status check_group_sizes(const Model& model, const QuantConfig& q, QuantExportFormat format) {
  if (q.quant_algo == QuantAlgo::MIXED_PRECISION) return ok_status();
  for (int64_t b = 0; b < model.n_layers(); ++b) {
    const DecoderLayer& l = model.layer(b);
    const std::pair<const char*, const WeightMatrix*> linears[] = {
        {"self_attn.q_proj", l.q_proj.get()}, {"self_attn.k_proj", l.k_proj.get()},
        {"self_attn.v_proj", l.v_proj.get()}, {"self_attn.o_proj", l.o_proj.get()},
        {"mlp.gate_proj", l.gate_proj.get()}, {"mlp.up_proj", l.up_proj.get()},
        {"mlp.down_proj", l.down_proj.get()}};
    for (const auto& [name, m] : linears) {
      const std::string module = fmt::format("model.layers.{}.{}", b, name);
      QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_module(q, module));
      QF_TRY(quant_internal::check_layer_exportable(module, m->cols(), s.weight, format));
    }
  }
  return ok_status();
}

Result<QuantizeReport> run_blocks_and_export(const QuantizeOptions& o, const Model& model,
                                             const CalibDataset& calib, const fs::path& partial,
                                             const fs::path& out, PartialState& state);

}  // namespace

Result<QuantizeReport> quantize(const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  QF_TRY(validate_quant_config(o.quant_config));
  QF_TRY(validate_calib_config(o.calib));
  QF_TRY(parse_amax_method(o.calib.amax_method));
  if (o.awq_grid < 1 || o.awq_grid > 1000) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--awq-grid {} is out of range (expected 1..1000; the reference uses 20)",
                      o.awq_grid);
  }
  if (o.gptq.scale_search_grid < 0 || o.gptq.scale_search_grid > 1000 ||
      !(o.gptq.scale_search_max_shrink >= 0.0 && o.gptq.scale_search_max_shrink < 1.0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--gptq-scale-search {} / --gptq-scale-shrink {} is out of range (expected "
                      "0..1000 steps and a shrink in [0, 1))",
                      o.gptq.scale_search_grid, o.gptq.scale_search_max_shrink);
  }
  if (o.quant_config.kv_cache_per_head && o.export_format == QuantExportFormat::kModelOpt) {
    return make_error(ErrorCode::kUnsupported,
                      "per-head KV-cache scales are not part of the ModelOpt layout; use "
                      "--export-format compressed-tensors or per-layer scales");
  }
  if (o.quant_config.has_zero_point && o.export_format == QuantExportFormat::kModelOpt) {
    return make_error(ErrorCode::kUnsupported,
                      "INT4 with a zero point (--zero-point) has no ModelOpt layout (it stores "
                      "symmetric INT4 only); use --export-format compressed-tensors");
  }
  if (o.output_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "no output directory (--output DIR)");
  }
  fs::path out = fs::path(o.output_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  const fs::path partial = out.string() + ".partial";
  QF_TRY(check_output_paths(o, out, partial));

  QF_ASSIGN_OR_RETURN(CheckpointFormat src_format, detect_checkpoint_format(o.model_dir));
  if (src_format != CheckpointFormat::HfDirectory) {
    return make_error(ErrorCode::kUnsupported,
                      "quantize reads a Hugging Face model directory (config.json + safetensors); "
                      "'{}' is {}",
                      o.model_dir, checkpoint_format_name(src_format));
  }
  QF_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::load(o.model_dir));
  const ModelConfig& c = model->config();
  if (!model->quantized_linears().empty() || model->kv_cache_quant().enabled()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}' is already a quantized checkpoint; quantize its unquantized source "
                      "model instead (quantizing dequantized weights again compounds the error)",
                      o.model_dir);
  }
  QF_TRY(check_group_sizes(*model, o.quant_config, o.export_format));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, load_tokenizer(o.model_dir));
  QF_ASSIGN_OR_RETURN(CalibDataset calib, load_calib_dataset(o.calib, *tokenizer));
  const auto n_samples = static_cast<int64_t>(calib.samples.size());
  const int64_t seq_len = o.calib.calib_max_seq_length;
  if (seq_len > c.max_position_embeddings) {
    return make_error(ErrorCode::kInvalidArgument,
                      "calib_max_seq_length {} exceeds the model's {} positions", seq_len,
                      c.max_position_embeddings);
  }

  const QuantAlgo main_algo = o.quant_config.quant_algo;
  const bool uses_gptq = main_algo == QuantAlgo::W4A16_GPTQ || main_algo == QuantAlgo::W8A16_GPTQ ||
                         main_algo == QuantAlgo::W4A16_AWQ_GPTQ;
  if (o.max_memory > 0) {
    QF_ASSIGN_OR_RETURN(TensorView embed, model->weights().get("model.embed_tokens.weight"));
    const uint64_t need = estimate_peak_bytes(c, n_samples, seq_len, uses_gptq, embed.nbytes());
    if (need > o.max_memory) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--max-memory {:.1f} MiB is below the ~{:.1f} MiB one block and the "
                        "calibration activations need ({} samples x {} tokens); lower "
                        "--calib-size or --calib-max-seq-len, or raise the limit",
                        o.max_memory / 1048576.0, need / 1048576.0, n_samples, seq_len);
    }
  }

  QF_ASSIGN_OR_RETURN(std::string fingerprint, run_fingerprint(o, calib));
  PartialState state;
  std::error_code ec;
  if (o.resume && fs::exists(partial, ec)) {
    QF_ASSIGN_OR_RETURN(state, quant_internal::load_partial_state(partial));
    if (state.fingerprint != fingerprint) {
      return make_error(ErrorCode::kInvalidArgument,
                        "cannot resume '{}': it was started with a different model, calibration "
                        "data or configuration (fingerprint {} vs {} now); delete it to start "
                        "over",
                        partial.string(), state.fingerprint, fingerprint);
    }
    if (state.next_block > c.num_hidden_layers) {
      return make_error(ErrorCode::kFormat, "'{}': next_block {} is past the model's {} blocks",
                        partial.string(), state.next_block, c.num_hidden_layers);
    }
    log_info("resuming '{}' at block {} of {}", partial.string(), state.next_block,
             c.num_hidden_layers);
  } else {
    fs::create_directories(partial, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "cannot create '{}': {}", partial.string(), ec.message());
    }
    state.fingerprint = fingerprint;
  }
  // From here on a failure keeps the finished blocks for --resume, or removes the partial
  // directory when it holds none (nothing looks complete either way).
  auto result = run_blocks_and_export(o, *model, calib, partial, out, state);
  if (!result.ok()) {
    if (state.next_block == 0) {
      fs::remove_all(partial, ec);
    } else {
      return std::move(result).error().add_context(
          fmt::format("blocks 0..{} are kept in '{}'; rerun with --resume to continue",
                      state.next_block - 1, partial.string()));
    }
    return std::move(result).error();
  }
  result.value().seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

namespace {

Result<QuantizeReport> run_blocks_and_export(const QuantizeOptions& o, const Model& model_ref,
                                             const CalibDataset& calib, const fs::path& partial,
                                             const fs::path& out, PartialState& state) {
  const Model* model = &model_ref;
  const ModelConfig& c = model->config();
  const auto n_samples = static_cast<int64_t>(calib.samples.size());
  const int64_t seq_len = o.calib.calib_max_seq_length;
  QF_ASSIGN_OR_RETURN(AmaxMethod amax_method, parse_amax_method(o.calib.amax_method));
  std::error_code ec;
  if (state.next_block == 0 && state.plan.empty() &&
      o.quant_config.quant_algo == QuantAlgo::MIXED_PRECISION) {
    QF_ASSIGN_OR_RETURN(quant_internal::MixedPrecisionPlan plan,
                        quant_internal::plan_mixed_precision(*model, calib, o.quant_config,
                                                             o.export_format, o.show_progress));
    for (const auto& [module, algo] : plan.algos) {
      state.plan[module] = std::string(quant_algo_name(algo));
    }
    state.plan_table = plan.table;
  }
  QF_TRY(quant_internal::save_partial_state(partial, state));
  QuantizeReport report;
  report.blocks_resumed = state.next_block;
  report.calib_samples = n_samples;
  report.calib_tokens = n_samples * seq_len;
  report.auto_quantize_plan = state.plan_table;

  quant_internal::BlockQuantOptions bo;
  bo.quant_config = &o.quant_config;
  bo.amax_method = amax_method;
  bo.percentile = o.calib.percentile;
  bo.awq_max_tokens = o.awq_max_tokens;
  bo.awq_grid = o.awq_grid;
  bo.awq_duo_scaling = o.awq_duo_scaling;
  bo.gptq = o.gptq;
  bo.collect_kv = o.quant_config.kv_cache_quant_algo != QuantAlgo::NO_QUANT;
  bo.kv_per_head = o.quant_config.kv_cache_per_head;
  bo.kv_target = o.quant_config.kv_cache_quant_algo == QuantAlgo::INT8 ? ObserverTarget::kInt8
                                                                       : ObserverTarget::kFp8E4M3;
  bo.allow_pre_quant_scale = o.export_format == QuantExportFormat::kModelOpt;
  if (!state.plan.empty()) {
    bo.scheme_for = [&](const std::string& module) -> Result<LinearQuantScheme> {
      auto it = state.plan.find(module);
      if (it == state.plan.end()) return scheme_for_module(o.quant_config, module);
      QF_ASSIGN_OR_RETURN(QuantAlgo algo, parse_quant_algo(it->second));
      return scheme_for_algo(algo, o.quant_config);
    };
  }

  // The unchanged shards first, while little else is resident (their pages are dropped after).
  quant_internal::CheckpointExport exporter(*model, o, partial);
  QF_TRY(exporter.write_fixed_shards());
  const size_t hidden_count = static_cast<size_t>(n_samples * seq_len * c.hidden_size);
  std::vector<float> hidden;
  if (state.next_block > 0) {
    QF_ASSIGN_OR_RETURN(hidden, quant_internal::load_hidden(partial, hidden_count));
  } else {
    hidden = embed_samples(*model, calib);
    QF_ASSIGN_OR_RETURN(TensorView embed, model->weights().get("model.embed_tokens.weight"));
    if (embed.is_contiguous()) release_mapped_pages(embed.data(), embed.nbytes());
  }

  ProgressOptions po;
  po.enabled = o.show_progress;
  po.unit = "block";
  ProgressBar bar("quantizing blocks", c.num_hidden_layers, po);
  bar.set(state.next_block);
  for (int64_t b = state.next_block; b < c.num_hidden_layers; ++b) {
    QF_ASSIGN_OR_RETURN(quant_internal::QuantizedBlock qb,
                        quant_internal::quantize_block(*model, b, bo, hidden, n_samples, seq_len));
    QF_TRY(exporter.write_block(b, qb));
    QF_TRY(quant_internal::save_hidden(partial, hidden));
    state.next_block = b + 1;
    state.reports.insert(state.reports.end(), qb.reports.begin(), qb.reports.end());
    state.k_amax.push_back(qb.k_amax);
    state.v_amax.push_back(qb.v_amax);
    QF_TRY(quant_internal::save_partial_state(partial, state));
    release_block_pages(*model, b);
    log_debug("block {}: peak RSS so far {:.0f} MiB", b, peak_rss_bytes() / 1048576.0);
    bar.advance();
    if (o.after_block) QF_TRY(o.after_block(b));
  }
  bar.finish();

  KvCacheQuant kv;
  const QuantAlgo kv_algo = o.quant_config.kv_cache_quant_algo;
  if (kv_algo != QuantAlgo::NO_QUANT) {
    kv.dtype = kv_algo == QuantAlgo::INT8 ? KvCacheDType::kInt8 : KvCacheDType::kFp8;
    kv.per_head = o.quant_config.kv_cache_per_head;
    kv.k_scale = kv_scales(state.k_amax, kv_algo);
    kv.v_scale = kv_scales(state.v_amax, kv_algo);
  }
  QF_ASSIGN_OR_RETURN(report.output_bytes, exporter.finish(state, kv));
  fs::remove(partial / quant_internal::kHiddenFile, ec);
  fs::remove(partial / quant_internal::kStateFile, ec);
  // A run killed mid-write (before the one that resumed it) left its temp files here.
  AtomicFileWriter::remove_stale_temps(partial);
  QF_TRY(quant_internal::publish_directory(partial, out, o.overwrite));

  report.layers = state.reports;
  // What each layer saw of the calibration data (derived from the samples, so a resumed run
  // reports the same).
  report.calib_documents = calib_documents_seen(calib);
  report.calib_sources = calib.sources;
  const std::vector<int64_t> awq_idx =
      quant_internal::awq_sample_indices(n_samples, seq_len, o.awq_max_tokens);
  const int64_t awq_docs = calib_documents_seen(calib, awq_idx);
  for (LayerQuantReport& l : report.layers) {
    if (l.algorithm == "none") continue;
    l.calib_tokens = n_samples * seq_len;
    l.calib_documents = report.calib_documents;
    if (l.algorithm == "awq" || l.algorithm == "awq+gptq") {
      l.awq_loss_tokens = static_cast<int64_t>(awq_idx.size()) * seq_len;
      l.awq_loss_documents = awq_docs;
    }
  }
  for (const CalibSource& src : calib.sources) {
    log_info("calibration set '{}': {} documents, {} tokens, {} of {} samples taken", src.path,
             src.documents, src.tokens, src.samples, src.chunks);
  }
  log_info("every quantized layer saw {} samples x {} tokens = {} tokens from {} documents{}",
           n_samples, seq_len, n_samples * seq_len, report.calib_documents,
           std::any_of(report.layers.begin(), report.layers.end(),
                       [](const LayerQuantReport& l) { return l.awq_loss_tokens > 0; })
               ? fmt::format("; AWQ's scale search scored {} tokens from {} documents",
                             static_cast<int64_t>(awq_idx.size()) * seq_len, awq_docs)
               : std::string());
  report.peak_rss_bytes = peak_rss_bytes();
  return report;
}

}  // namespace
}  // namespace qforge
