// build_engine (include/qforge/engine/engine.h): checkpoint -> one .engine file. Walks the model
// one tensor at a time: small vectors as F32, the embedding in the build precision, every linear
// packed for the CPU kernels (the kernel variant chosen per layer shape by timing the candidates
// on the layer's own weights), streamed through EngineFileWriter.
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "backend/cpu/vector_ops.h"
#include "engine/engine_checksum.h"
#include "engine/engine_file_writer.h"
#include "engine/engine_metadata.h"
#include "engine/packed_linear_json.h"
#include "hwy/aligned_allocator.h"
#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/path_guard.h"
#include "qforge/core/simd.h"
#include "qforge/engine/capacity_plan.h"
#include "qforge/engine/engine.h"
#include "qforge/engine/packed_linear.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using engine_detail::EngineFileWriter;

// The linear modules of a model, in file order.
std::vector<std::string> linear_modules(const ModelConfig& c) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      out.push_back(p + m);
    }
  }
  if (!c.tie_word_embeddings) out.push_back("lm_head");
  return out;
}

// The 1-D weights (norms, biases) the forward pass reads.
std::vector<std::string> vector_names(const ModelConfig& c) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    out.push_back(p + "input_layernorm.weight");
    out.push_back(p + "post_attention_layernorm.weight");
    if (c.qk_norm) {
      out.push_back(p + "self_attn.q_norm.weight");
      out.push_back(p + "self_attn.k_norm.weight");
    }
    if (c.attention_bias) {
      for (const char* b : {"q_proj", "k_proj", "v_proj"}) {
        out.push_back(fmt::format("{}self_attn.{}.bias", p, b));
      }
    }
  }
  out.push_back("model.norm.weight");
  return out;
}

// The tokenizer file load_tokenizer would pick for a checkpoint directory.
fs::path tokenizer_file(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"}) {
    if (fs::is_regular_file(dir / name, ec)) return dir / name;
  }
  return find_tokenizer_beside(dir);
}

Result<std::string> read_small_file(const fs::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile f, MmapFile::open(path));
  const auto b = f.bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Embeds the checkpoint's tokenizer (checked to load) as the U8 tensor kTokenizerTensor.
Status add_tokenizer(const fs::path& dir, int64_t vocab, EngineFileWriter& out) {
  const fs::path file = tokenizer_file(dir);
  if (file.empty()) {
    log_warn("build: no tokenizer found next to {}; the engine runs on token ids only",
             dir.string());
    return ok_status();
  }
  QF_ASSIGN_OR_RETURN(auto tok, load_tokenizer(file.string(), vocab).context("build: tokenizer"));
  QF_ASSIGN_OR_RETURN(std::string bytes, read_small_file(file));
  const std::string name = file.filename().string();
  std::string kind = "llama2c";
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0) kind = "json";
  if (name.size() >= 6 && name.compare(name.size() - 6, 6, ".model") == 0) kind = "sentencepiece";
  out.set_metadata(engine_detail::kTokenizerKindKey, kind);
  if (kind == "json") {
    std::error_code ec;
    const fs::path config = file.parent_path() / "tokenizer_config.json";
    if (fs::is_regular_file(config, ec)) {
      QF_ASSIGN_OR_RETURN(std::string text, read_small_file(config));
      out.set_metadata(engine_detail::kTokenizerConfigKey, std::move(text));
    }
  }
  return out.add(engine_detail::kTokenizerTensor, DType::U8,
                 Shape{static_cast<int64_t>(bytes.size())},
                 std::as_bytes(std::span<const char>(bytes)));
}

// A 1-D weight as F32 (norms, biases).
Status add_vector_f32(const ModelWeights& w, const std::string& name, EngineFileWriter& out) {
  QF_ASSIGN_OR_RETURN(TensorView v, w.get(name));
  QF_ASSIGN_OR_RETURN(Tensor c, Tensor::copy_of(v));  // contiguous
  std::vector<float> f(static_cast<size_t>(v.numel()));
  cpu::convert_to_f32_ref(c.data(), c.dtype(), v.numel(), f.data());
  return out.add(name, DType::F32, Shape{v.numel()}, std::as_bytes(std::span<const float>(f)));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median-free but robust enough: the best of several timed runs of y = x·Wᵀ for m rows, in us.
double time_matmul_us(const WeightMatrix& m, int64_t rows_of_x) {
  std::vector<float> x(static_cast<size_t>(rows_of_x * m.cols()), 0.25f);
  std::vector<float> y(static_cast<size_t>(rows_of_x * m.rows()));
  m.matmul(x.data(), rows_of_x, y.data());  // warm-up: pages, caches
  double best = 1e30;
  const auto start = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 20 && (rep < 3 || seconds_since(start) < 0.05); ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    m.matmul(x.data(), rows_of_x, y.data());
    best = std::min(best, seconds_since(t0) * 1e6);
  }
  return best;
}

struct Choice {
  PackedLinearInfo info;
  std::string timings;  // "kernel/variant: m=1 us, m=batch us, m=prefill us; ..."
};

// The rows of x kernel selection times: a decode step of one sequence, one of a full batch and
// a prefill chunk.
struct SelectionShapes {
  int64_t decode_batch = 8;
  int64_t prefill = 64;
};

SelectionShapes selection_shapes(const BuildConfig& config) {
  SelectionShapes s;
  s.decode_batch = std::clamp<int64_t>(config.max_batch_size, 2, 16);
  s.prefill = std::clamp<int64_t>(effective_max_num_tokens(config), s.decode_batch + 1, 64);
  return s;
}

// Times every candidate on the layer's own weights and keeps the lowest decode time (one
// sequence plus a full batch: what serving spends its time on); prefill breaks near-ties
// (within 3%). Every candidate computes the same bits, so the choice only moves speed.
Result<Choice> select_kernel(const QuantizedLinear& q, const std::vector<PackedLinearInfo>& cands,
                             const SelectionShapes& shapes) {
  Choice best{cands.front(), ""};
  double best_decode = 1e30, best_prefill = 1e30;
  for (const PackedLinearInfo& cand : cands) {
    QF_ASSIGN_OR_RETURN(PackedLinear p, pack_linear(q, cand));
    auto buf = hwy::AllocateAligned<uint8_t>(std::max<size_t>(p.blob.size(), 1));
    std::memcpy(buf.get(), p.blob.data(), p.blob.size());
    QF_ASSIGN_OR_RETURN(auto m, open_packed_linear(p.info, {buf.get(), p.blob.size()}, nullptr));
    const double d1 = time_matmul_us(*m, 1);
    const double db = time_matmul_us(*m, shapes.decode_batch);
    const double f = time_matmul_us(*m, shapes.prefill);
    best.timings +=
        fmt::format("{}{}/{}: {:.0f}/{:.0f}/{:.0f} us", best.timings.empty() ? "" : "; ",
                    cand.kernel, cand.variant, d1, db, f);
    const double d = d1 + db;
    const bool near = d < best_decode * 1.03 && best_decode < d * 1.03;
    if ((!near && d < best_decode) || (near && f < best_prefill)) {
      best.info = p.info;
      best_decode = d;
      best_prefill = f;
    }
  }
  best.timings = fmt::format("m=1/{}/{}: {}", shapes.decode_batch, shapes.prefill, best.timings);
  return best;
}

// The memory the engine will fill (capacity_plan.h arithmetic for the KV pool and workspace,
// the real packed sizes for the weights); refuses limits that do not fit the budget.
Status check_capacity(const LoadedModel& m, const BuildConfig& bc, KvCacheStorage kv) {
  const ModelConfig& c = m.config;
  uint64_t weights = 0;
  bool quantized_activations = false;
  for (const auto& [name, view] : m.weights.tensors()) {
    const std::string module = name.substr(0, name.rfind('.'));
    if (m.quantized_linears.count(module) != 0) continue;
    weights += static_cast<uint64_t>(view.numel()) *
               static_cast<uint64_t>(view.ndim() == 1 ? 4 : dtype_size(bc.precision));
  }
  for (const auto& [module, q] : m.quantized_linears) {
    weights += q.weight.storage_bytes();
    quantized_activations |= q.scheme.activation != ActivationQuant::kNone;
  }
  const int64_t blocks = effective_kv_cache_blocks(bc);
  const uint64_t kv_per_token = kv_cache_bytes_per_token(c, kv);
  const uint64_t kv_pool = kv_per_token * static_cast<uint64_t>(blocks * bc.kv_cache_block_size);
  const uint64_t workspace =
      activation_workspace_bytes(c, bc.precision, effective_max_num_tokens(bc), bc.max_batch_size,
                                 bc.max_seq_len, quantized_activations);
  uint64_t budget = bc.memory_budget_bytes;
  if (budget == 0) {
    budget = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
             static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
  const uint64_t total = weights + kv_pool + workspace;
  if (total <= budget) return ok_status();
  const uint64_t per_seq =
      kv_per_token * static_cast<uint64_t>((bc.max_seq_len + bc.kv_cache_block_size - 1) /
                                           bc.kv_cache_block_size * bc.kv_cache_block_size);
  const uint64_t room = budget > weights + workspace ? budget - weights - workspace : 0;
  const auto gb = [](uint64_t b) { return static_cast<double>(b) / 1e9; };
  return make_error(
      ErrorCode::kInvalidArgument,
      "build: the engine needs {:.2f} GB (weights {:.2f} GB, KV pool {:.2f} GB = {} pages of {} "
      "tokens at {} bytes/token, workspace {:.2f} GB) but the budget is {:.2f} GB: {:.2f} GB "
      "short. "
      "{} sequences of {} tokens fit (lower --max-batch-size or --max-seq-len, use --kv-cache "
      "fp8, or raise --memory-gb)",
      gb(total), gb(weights), gb(kv_pool), blocks, bc.kv_cache_block_size, kv_per_token,
      gb(workspace), gb(budget), gb(total - budget), per_seq > 0 ? room / per_seq : 0,
      bc.max_seq_len);
}

}  // namespace

Result<EngineBuildReport> build_engine(const std::string& checkpoint_dir, const BuildConfig& config,
                                       const std::string& output, const BuildProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  QF_TRY(validate_build_config(config));
  if (config.quant_config) {
    return make_error(ErrorCode::kInvalidArgument,
                      "build: quant_config is set; quantize the checkpoint first (qforge quantize, "
                      "or the Python LLM(build_config=...), which quantizes with its calib_config "
                      "and caches) and build the result");
  }
  // The engine never replaces its checkpoint (or a folder holding it), never lands inside it,
  // and never replaces anything but a regular file (core/path_guard.h).
  const fs::path inputs[] = {checkpoint_dir};
  QF_TRY(check_output_path(output, inputs, OutputKind::kFile, "build: --output"));
  QF_ASSIGN_OR_RETURN(LoadedModel loaded,
                      load_model(checkpoint_dir).context(fmt::format("build: {}", checkpoint_dir)));
  const ModelConfig& c = loaded.config;
  QF_TRY(validate_model_config(c).context("build: model config"));
  QF_TRY(validate_model_weights(c, loaded.weights, &loaded.quantized_linears));
  QF_TRY(
      validate_kv_cache_quant(loaded.kv_cache_quant, c.num_hidden_layers, c.num_key_value_heads));
  if (config.kv_cache_storage && (*config.kv_cache_storage == KvCacheStorage::kFp8 ||
                                  *config.kv_cache_storage == KvCacheStorage::kInt8)) {
    const KvCacheDType want =
        *config.kv_cache_storage == KvCacheStorage::kFp8 ? KvCacheDType::kFp8 : KvCacheDType::kInt8;
    if (loaded.kv_cache_quant.dtype != want) {
      return make_error(ErrorCode::kInvalidArgument,
                        "build: --kv-cache {} needs calibrated {} KV scales, and checkpoint {} has "
                        "{} (quantize with --kv-cache {} first)",
                        kv_cache_storage_name(*config.kv_cache_storage),
                        kv_cache_storage_name(*config.kv_cache_storage), checkpoint_dir,
                        loaded.kv_cache_quant.enabled()
                            ? std::string(kv_cache_dtype_name(loaded.kv_cache_quant.dtype))
                            : std::string("none"),
                        kv_cache_storage_name(*config.kv_cache_storage));
    }
  }

  BuildConfig recorded = config;
  const KvCacheStorage kv_storage = resolve_kv_cache_storage(config, loaded.kv_cache_quant.dtype);
  QF_TRY(check_capacity(loaded, config, kv_storage));
  recorded.kv_cache_blocks = effective_kv_cache_blocks(config);

  QF_ASSIGN_OR_RETURN(EngineFileWriter out, EngineFileWriter::create(output));
  out.set_metadata(engine_detail::kFormatKey, engine_detail::kFormatValue);
  out.set_metadata(engine_detail::kVersionKey, std::to_string(kEngineFormatVersion));
  out.set_metadata(engine_detail::kBackendKey, std::string(backend_name(config.backend)));
  out.set_metadata(engine_detail::kCpuTargetKey, simd_dispatch_target_name());
  out.set_metadata(engine_detail::kBuildConfigKey,
                   engine_detail::build_config_to_json(recorded).dump());
  out.set_metadata(engine_detail::kModelConfigKey, engine_detail::model_config_to_text(c));
  out.set_metadata(engine_detail::kKvCacheKey,
                   engine_detail::kv_cache_quant_to_json(loaded.kv_cache_quant).dump());
  out.set_metadata(engine_detail::kSourceKey, checkpoint_dir);

  std::error_code ec;
  const fs::path dir = fs::is_directory(checkpoint_dir, ec)
                           ? fs::path(checkpoint_dir)
                           : fs::path(checkpoint_dir).parent_path();
  QF_TRY(add_tokenizer(dir, c.vocab_size, out));

  // Small vectors and the embedding.
  const ModelWeights& w = loaded.weights;
  for (const std::string& name : vector_names(c)) QF_TRY(add_vector_f32(w, name, out));
  {
    QF_ASSIGN_OR_RETURN(TensorView emb, w.get("model.embed_tokens.weight"));
    QF_ASSIGN_OR_RETURN(PackedLinear e, pack_dense_linear(emb, config.precision));
    QF_TRY(out.add("model.embed_tokens.weight", config.precision, emb.shape(),
                   std::as_bytes(std::span<const uint8_t>(e.blob))));
  }

  // Linears.
  const std::vector<std::string> modules = linear_modules(c);
  nlohmann::json linears = nlohmann::json::object();
  nlohmann::json choices = nlohmann::json::object();
  std::map<std::string, PackedLinearInfo> chosen_per_shape;
  EngineBuildReport report;
  const SelectionShapes shapes = selection_shapes(config);
  for (size_t i = 0; i < modules.size(); ++i) {
    const std::string& module = modules[i];
    if (progress.on_step)
      progress.on_step(static_cast<int64_t>(i), static_cast<int64_t>(modules.size()), module);
    PackedLinear packed;
    if (auto it = loaded.quantized_linears.find(module); it != loaded.quantized_linears.end()) {
      const QuantizedLinear& q = it->second;
      std::vector<PackedLinearInfo> cands =
          packed_linear_candidates(q.scheme, q.weight.rows, q.weight.cols);
      if (cands.empty()) {
        return make_error(ErrorCode::kUnsupported, "build: no CPU kernel runs {} ({}, [{}, {}])",
                          module, quant_algo_name(q.scheme.algo), q.weight.rows, q.weight.cols);
      }
      const std::string shape_key =
          fmt::format("{}|{}|{}|{}", quant_algo_name(q.scheme.algo), quant_spec_name(q.weight.spec),
                      q.weight.rows, q.weight.cols);
      PackedLinearInfo target = cands.front();
      if (auto s = chosen_per_shape.find(shape_key); s != chosen_per_shape.end()) {
        target = s->second;
      } else if (config.kernel_selection && cands.size() > 1) {
        QF_ASSIGN_OR_RETURN(Choice ch, select_kernel(q, cands, shapes));
        target = ch.info;
        chosen_per_shape[shape_key] = target;
        report.kernel_choices.push_back(fmt::format("[{}, {}] {}: chose {}/{} ({})", q.weight.rows,
                                                    q.weight.cols, quant_algo_name(q.scheme.algo),
                                                    target.kernel, target.variant, ch.timings));
      } else {
        chosen_per_shape[shape_key] = target;
      }
      QF_ASSIGN_OR_RETURN(packed, pack_linear(q, target).context(module));
    } else {
      QF_ASSIGN_OR_RETURN(TensorView view, w.get(module + ".weight"));
      QF_ASSIGN_OR_RETURN(packed, pack_dense_linear(view, config.precision).context(module));
    }
    linears[module] = packed_linear_info_to_json(packed.info);
    choices[module] = fmt::format("{}/{}", packed.info.kernel, packed.info.variant);
    QF_TRY(out.add(module + engine_detail::kPackedSuffix, DType::U8,
                   Shape{static_cast<int64_t>(packed.blob.size())},
                   std::as_bytes(std::span<const uint8_t>(packed.blob))));
  }
  if (progress.on_step) {
    progress.on_step(static_cast<int64_t>(modules.size()), static_cast<int64_t>(modules.size()),
                     "writing");
  }
  out.set_metadata(engine_detail::kLinearsKey, linears.dump());
  out.set_metadata(engine_detail::kKernelChoicesKey, choices.dump());
  QF_ASSIGN_OR_RETURN(report.file_bytes, out.commit());
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace qforge
