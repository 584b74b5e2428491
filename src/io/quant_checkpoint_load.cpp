// Quantized checkpoint loading (quant_checkpoint_load.h).
#include "io/quant_checkpoint_load.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "io/io_util.h"

namespace qforge::io_detail {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxQuantJsonBytes = uint64_t{64} << 20;

Result<std::optional<nlohmann::json>> read_json_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<nlohmann::json>();
  // MmapFile-based: a FIFO or device in place of the file is refused, never blocks.
  QF_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxQuantJsonBytes));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kFormat, "'{}' is not a JSON object", path.string());
  }
  return std::optional<nlohmann::json>(std::move(j));
}

constexpr const char* kLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                    "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                    "mlp.down_proj"};

}  // namespace

Result<std::optional<QuantCheckpointInfo>> read_quant_checkpoint_info(const fs::path& dir) {
  QF_ASSIGN_OR_RETURN(auto config, read_json_file(dir / "config.json"));
  if (!config) return std::optional<QuantCheckpointInfo>();
  QF_ASSIGN_OR_RETURN(auto hf_quant, read_json_file(dir / "hf_quant_config.json"));
  return parse_quant_checkpoint_info(*config, hf_quant ? &*hf_quant : nullptr);
}

Status attach_quantized_layers(LoadedModel& model, const QuantCheckpointInfo& info) {
  const ModelWeights& w = model.weights;
  const TensorLookup lookup = [&w](const std::string& name) -> std::optional<TensorView> {
    if (!w.contains(name)) return std::nullopt;
    return w.get(name).value();
  };
  QuantConfig qc;
  qc.group_size = info.group_size > 0 ? info.group_size : 128;
  qc.has_zero_point = info.has_zero_point;
  for (int64_t i = 0; i < model.config.num_hidden_layers; ++i) {
    for (const char* l : kLinears) {
      const std::string module = fmt::format("model.layers.{}.{}", i, l);
      QuantAlgo algo = info.quant_algo;
      if (auto it = info.layer_algos.find(module); it != info.layer_algos.end()) {
        algo = it->second;
      } else if (info.quant_algo == QuantAlgo::MIXED_PRECISION) {
        algo = QuantAlgo::NO_QUANT;  // MIXED_PRECISION lists every quantized layer
      }
      for (const auto& pattern : info.exclude_modules) {
        if (glob_match(pattern, module)) algo = QuantAlgo::NO_QUANT;
      }
      if (algo == QuantAlgo::NO_QUANT) continue;
      QF_ASSIGN_OR_RETURN(LinearQuantScheme scheme, scheme_for_algo(algo, qc));
      QF_ASSIGN_OR_RETURN(
          QuantizedLinear q,
          read_quantized_linear(lookup, module, scheme, info.format).context(w.source()));
      model.quantized_linears.emplace(module, std::move(q));
    }
  }
  if (info.kv_cache_quant_algo != QuantAlgo::NO_QUANT) {
    QF_ASSIGN_OR_RETURN(
        KvCacheScales kv,
        read_kv_cache_scales(lookup, info.format, info.kv_cache_quant_algo,
                             model.config.num_hidden_layers, model.config.num_key_value_heads)
            .context(w.source()));
    model.kv_cache_quant.dtype =
        kv.algo == QuantAlgo::INT8 ? KvCacheDType::kInt8 : KvCacheDType::kFp8;
    model.kv_cache_quant.per_head = kv.per_head;
    model.kv_cache_quant.k_scale = std::move(kv.k_scale);
    model.kv_cache_quant.v_scale = std::move(kv.v_scale);
  }
  return ok_status();
}

}  // namespace qforge::io_detail
