// Linear layers in NVIDIA ModelOpt's unified HF export layout (modelopt/torch/export:
// unified_export_hf.py _export_quantized_weight, quant_utils.py to_quantized_weight /
// pack_int4_in_uint8), as TensorRT-LLM and vLLM's "modelopt" loaders read it.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/quant_checkpoint_internal.h"

namespace qforge::qckpt {
namespace {

constexpr QuantExportFormat kFmt = QuantExportFormat::kModelOpt;

// W4A8_AWQ's second weight scale: ModelOpt's second (FP8 per-tensor) weight quantizer sees the
// INT4-dequantized weight, so weight_scale_2 = max |code * group_scale| / 448.
float w4a8_weight_scale_2(const QuantizedMatrix& m) {
  const int64_t g = m.spec.group_size, nb = m.cols / g;
  float amax = 0.0f;
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group_block(m, r, b);
      const float s = decode_group_scale(block_scale_bits(blk), m.spec.scale_type);
      int max_code = 0;
      for (int64_t j = 0; j < g; ++j) {
        const int c = nibble(blk + 2, j);
        max_code = std::max(max_code, std::abs(c >= 8 ? c - 16 : c));
      }
      amax = std::max(amax, static_cast<float>(max_code) * s);
    }
  }
  // ModelOpt asserts positive scaling factors; an all-zero weight gets 1 (any value dequantizes
  // its zero codes to 0).
  return amax > 0.0f ? amax / 448.0f : 1.0f;
}

// INT4 (symmetric): pack_int4_in_uint8 packs two OUTPUT rows per byte. weight: U8 [out/2, in],
// byte (i, c) = code(2i, c) in the low nibble | code(2i+1, c) << 4 (two's complement nibbles);
// weight_scale: F32 [out, in/g].
Status write_int4(const QuantizedLinear& layer, SafetensorsWriter& w) {
  const QuantizedMatrix& m = layer.weight;
  const int64_t g = m.spec.group_size;
  if (m.spec.format == QuantFormat::UINT4_GROUP) {
    return make_error(ErrorCode::kUnsupported,
                      "ModelOpt export of '{}': {} with a zero point (has_zero_point) has no "
                      "ModelOpt layout (pack_int4_in_uint8 stores symmetric INT4 only); use "
                      "compressed-tensors (pack-quantized stores weight_zero_point)",
                      layer.module, quant_algo_name(layer.scheme.algo));
  }
  if (m.cols % g != 0) {
    return group_divide_error(layer, kFmt, g,
                              "ModelOpt stores weight_scale as [out, in / group_size] and "
                              "TensorRT-LLM requires in_features % group_size == 0");
  }
  if (m.rows % 2 != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "ModelOpt export of '{}': out_features {} is odd, but ModelOpt packs two "
                      "output rows into each byte of an INT4 weight",
                      layer.module, m.rows);
  }
  const int64_t nb = m.cols / g;
  std::vector<uint8_t> packed(static_cast<size_t>(m.rows / 2 * m.cols), 0);
  std::vector<float> scales(static_cast<size_t>(m.rows * nb));
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group_block(m, r, b);
      scales[static_cast<size_t>(r * nb + b)] =
          decode_group_scale(block_scale_bits(blk), m.spec.scale_type);
      uint8_t* dst = packed.data() + (r / 2) * m.cols + b * g;
      const int shift = static_cast<int>(4 * (r % 2));
      for (int64_t j = 0; j < g; ++j)
        dst[j] = static_cast<uint8_t>(dst[j] | nibble(blk + 2, j) << shift);
    }
  }
  QF_TRY(add_bytes(w, layer.module + ".weight", DType::U8, Shape{m.rows / 2, m.cols}, packed.data(),
                   packed.size()));
  QF_TRY(add_f32(w, layer.module + ".weight_scale", Shape{m.rows, nb}, scales));
  if (layer.scheme.activation == ActivationQuant::kFp8PerTensor) {
    QF_TRY(add_scalar_f32(w, layer.module + ".weight_scale_2", Shape{}, w4a8_weight_scale_2(m)));
  }
  return ok_status();
}

Result<QuantizedMatrix> read_int4(const TensorLookup& lookup, const std::string& module,
                                  const LinearQuantScheme& scheme) {
  const QuantSpec& spec = scheme.weight;
  if (spec.format == QuantFormat::UINT4_GROUP) {
    return make_error(ErrorCode::kUnsupported,
                      "ModelOpt checkpoints store symmetric INT4 only; a scheme with a zero point "
                      "(UINT4) cannot be read from one");
  }
  const std::string wn = module + ".weight", sn = module + ".weight_scale";
  QF_ASSIGN_OR_RETURN(TensorView w, require(lookup, wn, kFmt));
  QF_TRY(expect_dtype(w, wn, {DType::U8, DType::I8}));
  if (w.ndim() != 2) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected [out / 2, in]", wn,
                      w.shape().to_string());
  }
  const int64_t rows = w.dim(0) * 2, cols = w.dim(1), g = spec.group_size;
  if (cols % g != 0) {
    return make_error(ErrorCode::kFormat,
                      "tensor '{}' has shape {}: group_size {} does not divide in_features {}", wn,
                      w.shape().to_string(), g, cols);
  }
  const int64_t nb = cols / g;
  QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
  const int64_t sdims[] = {rows, nb};
  QF_TRY(expect_shape(s, sn, sdims));
  QF_ASSIGN_OR_RETURN(std::vector<float> scales, read_floats(s, sn));
  QF_ASSIGN_OR_RETURN(QuantizedMatrix m, make_matrix(spec, rows, cols));
  QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(w, wn));
  const auto* packed = reinterpret_cast<const uint8_t*>(bytes.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = group_block(m, r, b);
      QF_ASSIGN_OR_RETURN(uint16_t bits,
                          encode_group_scale(scales[static_cast<size_t>(r * nb + b)],
                                             spec.scale_type, fmt::format("{}[{}, {}]", sn, r, b)));
      set_block_scale_bits(blk, bits);
      const uint8_t* src = packed + (r / 2) * cols + b * g;
      for (int64_t j = 0; j < g; ++j) set_nibble(blk + 2, j, (src[j] >> (4 * (r % 2))) & 0xF);
    }
  }
  if (scheme.activation == ActivationQuant::kFp8PerTensor) {
    const std::string n2 = module + ".weight_scale_2";
    QF_ASSIGN_OR_RETURN(TensorView s2, require(lookup, n2, kFmt));
    QF_ASSIGN_OR_RETURN(float ws2, read_scalar_f32(s2, n2));
    QF_TRY(check_scale(ws2, n2, true));
  }
  return m;
}

}  // namespace

Status write_linear_modelopt(const QuantizedLinear& layer, SafetensorsWriter& w) {
  const QuantizedMatrix& m = layer.weight;
  const std::string& mod = layer.module;
  switch (m.spec.format) {
    case QuantFormat::FP8_PER_TENSOR:
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::FP8_BLOCK128:
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::INT8_PER_CHANNEL: {
      const bool fp8 = m.spec.format != QuantFormat::INT8_PER_TENSOR &&
                       m.spec.format != QuantFormat::INT8_PER_CHANNEL;
      QF_TRY(add_bytes(w, mod + ".weight", fp8 ? DType::F8_E4M3FN : DType::I8,
                       Shape{m.rows, m.cols}, m.data.data(), m.data.size()));
      Shape shape;  // per tensor: a 0-d scalar, as ModelOpt registers it
      if (m.spec.format == QuantFormat::FP8_PER_CHANNEL ||
          m.spec.format == QuantFormat::INT8_PER_CHANNEL) {
        shape = Shape{m.rows};
      } else if (m.spec.format == QuantFormat::FP8_BLOCK128) {
        // FP8_PB_WO: [out_blocks, 1, in_blocks, 1] (vLLM's ModelOptFp8PbWoLinearMethod).
        shape = Shape{ceil_div(m.rows, kFp8BlockTile), 1, ceil_div(m.cols, kFp8BlockTile), 1};
      }
      QF_TRY(add_f32(w, mod + ".weight_scale", shape, m.scales));
      break;
    }
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP:
      QF_TRY(write_int4(layer, w));
      break;
    case QuantFormat::NVFP4:
    case QuantFormat::MXFP4: {
      const bool nv = m.spec.format == QuantFormat::NVFP4;
      QF_TRY(write_fp4_matrix(layer, w, mod + ".weight", kFmt,
                              "ModelOpt stores [out, in / 2] codes and [out, in / block] scales "
                              "without padding"));
      if (nv) QF_TRY(add_scalar_f32(w, mod + ".weight_scale_2", Shape{}, m.tensor_scale));
      break;
    }
    default:
      return make_error(ErrorCode::kUnsupported, "ModelOpt export of '{}': no layout for {}", mod,
                        quant_spec_name(m.spec));
  }
  if (activation_quant_is_static(layer.scheme.activation)) {
    QF_TRY(add_scalar_f32(w, mod + ".input_scale", Shape{}, layer.input_scale));
  }
  return write_pre_quant_scale(layer, w);
}

Result<QuantizedLinear> read_linear_modelopt(const TensorLookup& lookup, const std::string& module,
                                             const LinearQuantScheme& scheme) {
  QuantizedLinear layer;
  layer.module = module;
  layer.scheme = scheme;
  const QuantSpec& spec = scheme.weight;
  const std::string wn = module + ".weight", sn = module + ".weight_scale";
  switch (spec.format) {
    case QuantFormat::FP8_PER_TENSOR:
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::FP8_BLOCK128:
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::INT8_PER_CHANNEL: {
      QF_ASSIGN_OR_RETURN(TensorView w, require(lookup, wn, kFmt));
      QF_ASSIGN_OR_RETURN(layer.weight, read_byte_matrix(w, wn, spec));
      QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
      QF_TRY(read_matrix_scales(s, sn, layer.weight));
      break;
    }
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP: {
      QF_ASSIGN_OR_RETURN(layer.weight, read_int4(lookup, module, scheme));
      break;
    }
    case QuantFormat::NVFP4:
    case QuantFormat::MXFP4: {
      QF_ASSIGN_OR_RETURN(TensorView w, require(lookup, wn, kFmt));
      QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
      QF_ASSIGN_OR_RETURN(layer.weight, read_fp4_matrix(w, wn, s, sn, spec));
      if (spec.format == QuantFormat::NVFP4) {
        const std::string n2 = module + ".weight_scale_2";
        QF_ASSIGN_OR_RETURN(TensorView s2, require(lookup, n2, kFmt));
        QF_ASSIGN_OR_RETURN(layer.weight.tensor_scale, read_scalar_f32(s2, n2));
        QF_TRY(check_scale(layer.weight.tensor_scale, n2, false));
      }
      break;
    }
    default:
      return make_error(ErrorCode::kUnsupported, "ModelOpt checkpoints have no layout for {}",
                        quant_spec_name(spec));
  }
  if (activation_quant_is_static(scheme.activation)) {
    const std::string in = module + ".input_scale";
    QF_ASSIGN_OR_RETURN(TensorView v, require(lookup, in, kFmt));
    QF_ASSIGN_OR_RETURN(layer.input_scale, read_scalar_f32(v, in));
    QF_TRY(check_input_scale(layer.input_scale, in));
  }
  QF_TRY(read_pre_quant_scale(lookup, layer));
  return layer;
}

}  // namespace qforge::qckpt
