// KV-cache quantization helpers (include/qforge/model/kv_cache_quant.h).
#include "qforge/model/kv_cache_quant.h"

#include <cmath>

#include "qforge/formats/quantize.h"

namespace qforge {

std::string_view kv_cache_dtype_name(KvCacheDType dtype) {
  switch (dtype) {
    case KvCacheDType::kF32:
      return "f32";
    case KvCacheDType::kFp8:
      return "fp8";
    case KvCacheDType::kInt8:
      return "int8";
  }
  return "?";
}

KvCacheQuant kv_cache_quant_unit_scales(KvCacheDType dtype, int64_t n_layers) {
  KvCacheQuant kv;
  kv.dtype = dtype;
  kv.k_scale.assign(static_cast<size_t>(n_layers), 1.0f);
  kv.v_scale.assign(static_cast<size_t>(n_layers), 1.0f);
  return kv;
}

Status validate_kv_cache_quant(const KvCacheQuant& kv, int64_t n_layers, int64_t n_kv_heads) {
  if (!kv.enabled()) return ok_status();
  const int64_t want = kv.per_head ? n_layers * n_kv_heads : n_layers;
  if (static_cast<int64_t>(kv.k_scale.size()) != want ||
      static_cast<int64_t>(kv.v_scale.size()) != want) {
    return make_error(ErrorCode::kFormat,
                      "KV-cache scales: expected {} K and {} V scales ({}), got {} and {}", want,
                      want, kv.per_head ? "one per layer and KV head" : "one per layer",
                      kv.k_scale.size(), kv.v_scale.size());
  }
  for (size_t i = 0; i < kv.k_scale.size(); ++i) {
    for (float s : {kv.k_scale[i], kv.v_scale[i]}) {
      if (!(std::isfinite(s) && s > 0.0f)) {
        return make_error(ErrorCode::kFormat,
                          "KV-cache scale #{} is {}; expected a finite value > 0", i, s);
      }
    }
  }
  return ok_status();
}

void kv_cache_fake_quantize(KvCacheDType dtype, float scale, float* x, int64_t n) {
  constexpr int64_t kChunk = 256;
  uint8_t codes[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    if (dtype == KvCacheDType::kFp8) {
      quantize_row_fp8(x + i, m, scale, ScalarFormat::E4M3FN, codes);
      dequantize_row_fp8(codes, m, scale, ScalarFormat::E4M3FN, x + i);
    } else if (dtype == KvCacheDType::kInt8) {
      auto* c = reinterpret_cast<int8_t*>(codes);
      quantize_row_int8(x + i, m, scale, c);
      dequantize_row_int8(c, m, scale, x + i);
    }
  }
}

}  // namespace qforge
