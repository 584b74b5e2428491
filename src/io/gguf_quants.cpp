// ggml block formats Q8_0, Q4_0, Q4_1: the reference quantizers (ggml-quants.c
// quantize_row_*_ref, same arithmetic and rounding) and dequantizers, plus F32/F16/BF16 widening.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "qforge/formats/scalar.h"
#include "qforge/io/gguf.h"

namespace qforge {
namespace {

constexpr int kBlock = 32;

// (int8_t)(v) as ggml writes it, defined for every input: truncation toward zero, clamped.
int truncate_clamped(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;  // also NaN
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

template <typename Block>
Status check_size(std::span<const std::byte> bytes, size_t n, const char* name) {
  if (n % kBlock != 0 || bytes.size() != n / kBlock * sizeof(Block)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gguf_dequantize: {} bytes of {} cannot hold {} elements (expected {} "
                      "blocks of {} bytes)",
                      bytes.size(), name, n, n / kBlock, sizeof(Block));
  }
  return ok_status();
}

}  // namespace

std::vector<BlockQ8_0> quantize_q8_0(std::span<const float> x) {
  std::vector<BlockQ8_0> out(x.size() / kBlock);
  for (size_t i = 0; i < out.size(); ++i) {
    const float* v = x.data() + i * kBlock;
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = float_to_f16(d);
    for (int j = 0; j < kBlock; ++j) {
      const float q = std::round(v[j] * id);
      out[i].qs[j] = static_cast<int8_t>(std::isnan(q) ? 0 : std::clamp(q, -128.0f, 127.0f));
    }
  }
  return out;
}

std::vector<BlockQ4_0> quantize_q4_0(std::span<const float> x) {
  std::vector<BlockQ4_0> out(x.size() / kBlock);
  for (size_t i = 0; i < out.size(); ++i) {
    const float* v = x.data() + i * kBlock;
    float amax = 0.0f;
    float max = 0.0f;  // the value of largest magnitude, sign kept
    for (int j = 0; j < kBlock; ++j) {
      if (amax < std::fabs(v[j])) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = float_to_f16(d);
    for (int j = 0; j < kBlock / 2; ++j) {
      const int lo = std::min(15, truncate_clamped(v[j] * id + 8.5f, -128, 127));
      const int hi = std::min(15, truncate_clamped(v[j + kBlock / 2] * id + 8.5f, -128, 127));
      out[i].qs[j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
    }
  }
  return out;
}

std::vector<BlockQ4_1> quantize_q4_1(std::span<const float> x) {
  std::vector<BlockQ4_1> out(x.size() / kBlock);
  for (size_t i = 0; i < out.size(); ++i) {
    const float* v = x.data() + i * kBlock;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kBlock; ++j) {
      min = std::min(min, v[j]);
      max = std::max(max, v[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = float_to_f16(d);
    out[i].m = float_to_f16(min);
    for (int j = 0; j < kBlock / 2; ++j) {
      const int lo = std::min(15, truncate_clamped((v[j] - min) * id + 0.5f, -128, 127));
      const int hi =
          std::min(15, truncate_clamped((v[j + kBlock / 2] - min) * id + 0.5f, -128, 127));
      out[i].qs[j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
    }
  }
  return out;
}

Status gguf_dequantize(uint32_t type, std::span<const std::byte> bytes, std::span<float> out) {
  const size_t n = out.size();
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
      if (bytes.size() != n * 4) break;
      if (n != 0) std::memcpy(out.data(), bytes.data(), n * 4);
      return ok_status();
    case GgmlType::F16:
    case GgmlType::BF16: {
      if (bytes.size() != n * 2) break;
      const bool f16 = static_cast<GgmlType>(type) == GgmlType::F16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t code;
        std::memcpy(&code, bytes.data() + 2 * i, 2);
        out[i] = f16 ? f16_to_float(code) : bf16_to_float(code);
      }
      return ok_status();
    }
    case GgmlType::Q8_0: {
      QF_TRY(check_size<BlockQ8_0>(bytes, n, "q8_0"));
      for (size_t b = 0; b < n / kBlock; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, bytes.data() + b * sizeof(blk), sizeof(blk));
        const float d = f16_to_float(blk.d);
        for (int j = 0; j < kBlock; ++j) out[b * kBlock + j] = blk.qs[j] * d;
      }
      return ok_status();
    }
    case GgmlType::Q4_0: {
      QF_TRY(check_size<BlockQ4_0>(bytes, n, "q4_0"));
      for (size_t b = 0; b < n / kBlock; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, bytes.data() + b * sizeof(blk), sizeof(blk));
        const float d = f16_to_float(blk.d);
        for (int j = 0; j < kBlock / 2; ++j) {
          out[b * kBlock + j] = static_cast<float>((blk.qs[j] & 0x0F) - 8) * d;
          out[b * kBlock + j + kBlock / 2] = static_cast<float>((blk.qs[j] >> 4) - 8) * d;
        }
      }
      return ok_status();
    }
    case GgmlType::Q4_1: {
      QF_TRY(check_size<BlockQ4_1>(bytes, n, "q4_1"));
      for (size_t b = 0; b < n / kBlock; ++b) {
        BlockQ4_1 blk;
        std::memcpy(&blk, bytes.data() + b * sizeof(blk), sizeof(blk));
        const float d = f16_to_float(blk.d);
        const float m = f16_to_float(blk.m);
        for (int j = 0; j < kBlock / 2; ++j) {
          out[b * kBlock + j] = static_cast<float>(blk.qs[j] & 0x0F) * d + m;
          out[b * kBlock + j + kBlock / 2] = static_cast<float>(blk.qs[j] >> 4) * d + m;
        }
      }
      return ok_status();
    }
    default: {
      const GgmlTypeInfo* info = gguf_tensor_type_info(type);
      return make_error(ErrorCode::kUnsupported,
                        "gguf: tensor type {} ({}) cannot be dequantized by qforge (supported: "
                        "f32, f16, bf16, q8_0, q4_0, q4_1; requantize with llama-quantize)",
                        info ? info->name : "unknown", type);
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "gguf_dequantize: {} bytes do not hold {} elements of type {}", bytes.size(), n,
                    type);
}

}  // namespace qforge
