// KV-cache scales of quantized checkpoints: ModelOpt's per-layer k_proj.k_scale / v_proj.v_scale
// (unified_export_hf.py postprocess_state_dict) and compressed-tensors' self_attn.k_scale /
// v_scale (per layer, or per KV head with strategy attn_head).
#include <fmt/format.h>

#include "io/quant_checkpoint_internal.h"

namespace qforge {

using namespace qckpt;

namespace {

std::string kv_name(QuantExportFormat format, std::string_view prefix, int64_t layer, char kv) {
  if (format == QuantExportFormat::kModelOpt) {
    return fmt::format("{}.{}.self_attn.{}_proj.{}_scale", prefix, layer, kv, kv);
  }
  return fmt::format("{}.{}.self_attn.{}_scale", prefix, layer, kv);
}

Status check_kv_algo(QuantAlgo algo) {
  if (algo == QuantAlgo::FP8 || algo == QuantAlgo::INT8) return ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    "KV-cache scales: kv_cache_quant_algo must be FP8 or INT8, got {}",
                    quant_algo_name(algo));
}

}  // namespace

Status write_kv_cache_scales(const KvCacheScales& s, QuantExportFormat format,
                             SafetensorsWriter& writer, std::string_view layers_prefix) {
  const char* fl = format_label(format);
  QF_TRY(check_kv_algo(s.algo));
  const int64_t per = s.per_head ? s.n_kv_heads : 1;
  if (per <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} KV-cache scales: per-head scales need n_kv_heads > 0, got {}", fl,
                      s.n_kv_heads);
  }
  if (s.k_scale.size() != s.v_scale.size() || s.k_scale.empty() ||
      s.k_scale.size() % static_cast<size_t>(per) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} KV-cache scales: {} k scales and {} v scales (expected equal, non-zero "
                      "multiples of {} per layer)",
                      fl, s.k_scale.size(), s.v_scale.size(), per);
  }
  if (s.per_head && format == QuantExportFormat::kModelOpt) {
    return make_error(ErrorCode::kUnsupported,
                      "ModelOpt KV-cache scales are one k_scale / v_scale per layer; per-head "
                      "scales need the compressed-tensors format (strategy attn_head)");
  }
  const int64_t n_layers = static_cast<int64_t>(s.k_scale.size()) / per;
  for (int64_t i = 0; i < n_layers; ++i) {
    for (char kv : {'k', 'v'}) {
      const auto& src = kv == 'k' ? s.k_scale : s.v_scale;
      std::vector<float> vals(src.begin() + i * per, src.begin() + (i + 1) * per);
      const std::string name = kv_name(format, layers_prefix, i, kv);
      for (float v : vals) QF_TRY(check_scale(v, name, true));
      const Shape shape = format == QuantExportFormat::kModelOpt ? Shape{}
                          : s.per_head                           ? Shape{per, 1, 1}
                                                                 : Shape{1};
      QF_TRY(add_f32(writer, name, shape, vals));
    }
  }
  return ok_status();
}

Result<KvCacheScales> read_kv_cache_scales(const TensorLookup& lookup, QuantExportFormat format,
                                           QuantAlgo algo, int64_t n_layers, int64_t n_kv_heads,
                                           std::string_view layers_prefix) {
  QF_TRY(check_kv_algo(algo));
  if (n_layers <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "KV-cache scales: n_layers {} <= 0", n_layers);
  }
  KvCacheScales out;
  out.algo = algo;
  const QuantExportFormat other = format == QuantExportFormat::kModelOpt
                                      ? QuantExportFormat::kCompressedTensors
                                      : QuantExportFormat::kModelOpt;
  for (int64_t i = 0; i < n_layers; ++i) {
    for (char kv : {'k', 'v'}) {
      std::string name = kv_name(format, layers_prefix, i, kv);
      auto v = find(lookup, name);
      if (!v) {
        name = kv_name(other, layers_prefix, i, kv);
        v = find(lookup, name);
      }
      if (!v) {
        return make_error(ErrorCode::kNotFound,
                          "{} checkpoint: KV-cache scale '{}' is missing (kv_cache_quant_algo {})",
                          format_label(format), kv_name(format, layers_prefix, i, kv),
                          quant_algo_name(algo));
      }
      QF_TRY(expect_dtype(*v, name, {DType::F32, DType::F16, DType::BF16}));
      const bool per_head = v->numel() != 1;
      if (per_head && (n_kv_heads <= 0 || v->numel() != n_kv_heads)) {
        return make_error(ErrorCode::kFormat,
                          "tensor '{}' has shape {}, expected one scale or one per KV head ({})",
                          name, v->shape().to_string(), n_kv_heads);
      }
      if (i == 0 && kv == 'k') {
        out.per_head = per_head;
        out.n_kv_heads = per_head ? n_kv_heads : 0;
      } else if (per_head != out.per_head) {
        return make_error(ErrorCode::kFormat,
                          "tensor '{}' has shape {} but layer 0 has {} KV-cache scales", name,
                          v->shape().to_string(), out.per_head ? "per-head" : "per-layer");
      }
      QF_ASSIGN_OR_RETURN(std::vector<float> vals, read_floats(*v, name));
      for (float x : vals) QF_TRY(check_scale(x, name, true));
      auto& dst = kv == 'k' ? out.k_scale : out.v_scale;
      dst.insert(dst.end(), vals.begin(), vals.end());
    }
  }
  return out;
}

}  // namespace qforge
