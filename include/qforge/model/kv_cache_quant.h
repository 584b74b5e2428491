// KV-cache quantization as the runtime applies it: every K and V row written to the cache is
// stored as FP8 E4M3FN or INT8 codes under a calibrated per-layer (or per-KV-head) scale. The CPU
// runtime keeps an F32 cache and writes the dequantized values (bit-identical to what a cache of
// codes would give back), so quality numbers match a real FP8/INT8 cache.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

enum class KvCacheDType : uint8_t { kF32, kFp8, kInt8 };

std::string_view kv_cache_dtype_name(KvCacheDType dtype);  // "f32", "fp8", "int8"

struct KvCacheQuant {
  KvCacheDType dtype = KvCacheDType::kF32;
  // Dequantization multipliers (FP8: amax / 448, INT8: amax / 127), [n_layers] or, when
  // per_head, [n_layers * n_kv_heads] (layer-major).
  std::vector<float> k_scale;
  std::vector<float> v_scale;
  bool per_head = false;

  bool enabled() const { return dtype != KvCacheDType::kF32; }
  float k(int64_t layer, int64_t head, int64_t n_kv_heads) const {
    return k_scale[static_cast<size_t>(per_head ? layer * n_kv_heads + head : layer)];
  }
  float v(int64_t layer, int64_t head, int64_t n_kv_heads) const {
    return v_scale[static_cast<size_t>(per_head ? layer * n_kv_heads + head : layer)];
  }
};

// Unit scales for every layer: the "uncalibrated" cache (scale 1.0), for comparisons.
KvCacheQuant kv_cache_quant_unit_scales(KvCacheDType dtype, int64_t n_layers);

// Checks the scale counts against the model shape and that every scale is finite and > 0.
Status validate_kv_cache_quant(const KvCacheQuant& kv, int64_t n_layers, int64_t n_kv_heads);

// x: [n] rounded in place through the cache format with `scale`: x = decode(encode(x / scale))
// * scale (saturating). No-op for kF32.
void kv_cache_fake_quantize(KvCacheDType dtype, float scale, float* x, int64_t n);

}  // namespace qforge
