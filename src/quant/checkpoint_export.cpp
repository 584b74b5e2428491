// The quantized checkpoint's files (checkpoint_export.h).
#include "quant/checkpoint_export.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "qforge/core/mmap_file.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/io/safetensors.h"

namespace qforge::quant_internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status write_text_atomic(const fs::path& path, const std::string& text) {
  QF_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(path));
  QF_TRY(w.write(std::string_view(text)));
  return w.commit();
}

Result<json> read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read '{}'", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kFormat, "'{}' is not a JSON object", path.string());
  }
  return j;
}

// Copies a source tensor as it is stored (the writer borrows the mmapped bytes).
Status add_source_tensor(SafetensorsWriter& w, const std::string& name, const TensorView& v) {
  if (!v.is_contiguous()) return w.add(name, v);
  return w.add_borrowed(name, v.dtype(), v.shape(), v.bytes());
}

Status add_f32(SafetensorsWriter& w, const std::string& name, const std::vector<float>& v,
               const Shape& shape) {
  return w.add(name, DType::F32, shape, std::as_bytes(std::span(v)));
}

}  // namespace

CheckpointExport::CheckpointExport(const Model& model, const QuantizeOptions& options, fs::path dir)
    : model_(model), options_(options), dir_(std::move(dir)) {}

int64_t CheckpointExport::shard_count() const {
  const bool kv = options_.quant_config.kv_cache_quant_algo != QuantAlgo::NO_QUANT;
  return model_.config().num_hidden_layers + (kv ? 3 : 2);
}

std::string CheckpointExport::shard_name(int64_t index) const {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index, shard_count());
}

Status CheckpointExport::write_shard(int64_t index, SafetensorsWriter& writer) const {
  writer.set_metadata("format", "pt");
  return writer.write(dir_ / shard_name(index));
}

Status CheckpointExport::write_block(int64_t block, const QuantizedBlock& qb) {
  SafetensorsWriter w;
  std::set<std::string> replaced;
  for (const QuantizedLinear& q : qb.linears) {
    QF_TRY(write_quantized_linear(q, options_.export_format, w).context(q.module));
    replaced.insert(q.module + ".weight");
  }
  for (const auto& [name, values] : qb.changed_tensors) {
    QF_ASSIGN_OR_RETURN(TensorView src, model_.weights().get(name));
    QF_TRY(add_f32(w, name, values, src.shape()));
    replaced.insert(name);
  }
  const std::string prefix = fmt::format("model.layers.{}.", block);
  const auto& tensors = model_.weights().tensors();
  for (auto it = tensors.lower_bound(prefix); it != tensors.end() && it->first.starts_with(prefix);
       ++it) {
    if (replaced.count(it->first) == 0) QF_TRY(add_source_tensor(w, it->first, it->second));
  }
  return write_shard(block + 2, w).context(fmt::format("writing block {}", block));
}

Status CheckpointExport::write_fixed_shards() {
  const auto& weights = model_.weights();
  std::error_code ec;
  const auto write_source = [&](int64_t index, std::vector<std::string> names) -> Status {
    if (fs::exists(dir_ / shard_name(index), ec)) return ok_status();
    SafetensorsWriter w;
    std::vector<TensorView> views;
    for (const auto& name : names) {
      if (!weights.contains(name)) continue;
      QF_ASSIGN_OR_RETURN(TensorView v, weights.get(name));
      QF_TRY(add_source_tensor(w, name, v));
      views.push_back(v);
    }
    QF_TRY(write_shard(index, w));
    for (const TensorView& v : views) {
      if (v.is_contiguous()) release_mapped_pages(v.data(), v.nbytes());
    }
    return ok_status();
  };
  QF_TRY(write_source(1, {"model.embed_tokens.weight"}));
  return write_source(model_.config().num_hidden_layers + 2,
                      {"model.norm.weight", "lm_head.weight"});
}

Result<uint64_t> CheckpointExport::finish(const PartialState& state, const KvCacheQuant& kv) {
  const ModelConfig& c = model_.config();
  if (kv.enabled()) {
    SafetensorsWriter w;
    KvCacheScales ks;
    ks.algo = options_.quant_config.kv_cache_quant_algo;
    ks.per_head = kv.per_head;
    ks.n_kv_heads = c.num_key_value_heads;
    ks.k_scale = kv.k_scale;
    ks.v_scale = kv.v_scale;
    QF_TRY(write_kv_cache_scales(ks, options_.export_format, w));
    QF_TRY(write_shard(c.num_hidden_layers + 3, w));
  }

  // The index, read back from the shards on disk (blocks of a resumed run included).
  json weight_map = json::object();
  uint64_t total = 0, file_bytes = 0;
  bool pre_quant_scale = false;
  for (int64_t i = 1; i <= shard_count(); ++i) {
    QF_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(dir_ / shard_name(i)));
    for (const auto& t : f.tensors()) {
      weight_map[t.name] = shard_name(i);
      total += t.end - t.begin;
      pre_quant_scale = pre_quant_scale || t.name.ends_with(".pre_quant_scale");
    }
    file_bytes += f.file_bytes();
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  QF_TRY(write_text_atomic(dir_ / "model.safetensors.index.json", index.dump(2) + "\n"));

  QuantCheckpointInfo info;
  info.format = options_.export_format;
  const QuantConfig& q = options_.quant_config;
  info.quant_algo = checkpoint_algo(q.quant_algo);
  info.kv_cache_quant_algo = q.kv_cache_quant_algo;
  info.group_size = q.group_size;
  info.has_zero_point = q.has_zero_point;
  info.kv_cache_per_head = q.kv_cache_per_head;
  info.pre_quant_scale = pre_quant_scale;
  info.exclude_modules = q.exclude_modules;
  if (!q.layer_overrides.empty()) info.quant_algo = QuantAlgo::MIXED_PRECISION;
  if (info.quant_algo == QuantAlgo::MIXED_PRECISION) {
    // Every quantized linear's algorithm (the plan's, an override's), as ModelOpt's
    // quantized_layers lists them; unlisted layers stay unquantized.
    for (int64_t b = 0; b < c.num_hidden_layers; ++b) {
      for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
        const std::string m = fmt::format("model.layers.{}.{}", b, s);
        QuantAlgo algo = QuantAlgo::NO_QUANT;
        if (auto it = state.plan.find(m); it != state.plan.end()) {
          QF_ASSIGN_OR_RETURN(algo, parse_quant_algo(it->second));
        } else {
          QF_ASSIGN_OR_RETURN(LinearQuantScheme sc, scheme_for_module(q, m));
          algo = sc.algo;
        }
        if (algo != QuantAlgo::NO_QUANT && algo != QuantAlgo::MIXED_PRECISION) {
          info.layer_algos[m] = checkpoint_algo(algo);
        }
      }
    }
  }

  QF_ASSIGN_OR_RETURN(json config, read_json(fs::path(options_.model_dir) / "config.json"));
  QF_ASSIGN_OR_RETURN(config["quantization_config"], make_quantization_config(info));
  QF_TRY(write_text_atomic(dir_ / "config.json", config.dump(2) + "\n"));
  if (options_.export_format == QuantExportFormat::kModelOpt) {
    QF_ASSIGN_OR_RETURN(json hf, make_hf_quant_config(info));
    QF_TRY(write_text_atomic(dir_ / "hf_quant_config.json", hf.dump(2) + "\n"));
  }
  // Tokenizer and generation files travel with the checkpoint.
  for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "generation_config.json", "tokenizer.bin"}) {
    const fs::path src = fs::path(options_.model_dir) / name;
    std::error_code ec;
    if (!fs::exists(src, ec)) continue;
    fs::copy_file(src, dir_ / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "copying '{}' into '{}': {}", src.string(), dir_.string(),
                        ec.message());
    }
  }
  return file_bytes;
}

Status check_layer_exportable(const std::string& module, int64_t cols, const QuantSpec& w,
                              QuantExportFormat format) {
  const bool int4 = w.format == QuantFormat::INT4_GROUP || w.format == QuantFormat::UINT4_GROUP;
  const bool fp4 = w.format == QuantFormat::NVFP4 || w.format == QuantFormat::MXFP4;
  const bool padded_ok = int4 && format == QuantExportFormat::kCompressedTensors;
  if ((int4 || fp4) && !padded_ok && cols % w.group_size != 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "{}: group size {} does not divide its {} input features, and the {} "
        "layout stores one scale per whole group; choose a group size that divides "
        "{}, {}or exclude the layer",
        module, w.group_size, cols, quant_export_format_name(format), cols,
        int4 ? "use --export-format compressed-tensors (it pads the last group), " : "");
  }
  return ok_status();
}

Status publish_directory(const fs::path& partial, const fs::path& out, bool overwrite) {
  std::error_code ec;
  fs::path aside;
  if (fs::exists(out, ec)) {
    if (!overwrite) {
      return make_error(ErrorCode::kInvalidArgument, "'{}' appeared while quantizing",
                        out.string());
    }
    aside = out.string() + ".replaced";
    fs::remove_all(aside, ec);
    fs::rename(out, aside, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "cannot move the old '{}' aside: {}", out.string(),
                        ec.message());
    }
  }
  fs::rename(partial, out, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot rename '{}' to '{}': {}", partial.string(),
                      out.string(), ec.message());
  }
  if (!aside.empty()) fs::remove_all(aside, ec);
  return ok_status();
}

}  // namespace qforge::quant_internal
