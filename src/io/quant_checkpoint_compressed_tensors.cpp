// Linear layers in compressed-tensors' on-disk formats (vllm-project/compressed-tensors:
// pack-quantized pack_to_int32, int-quantized / float-quantized naive compressor,
// nvfp4-pack-quantized and mxfp4-pack-quantized), as llm-compressor writes and vLLM reads them.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>

#include "io/quant_checkpoint_internal.h"

namespace qforge::qckpt {
namespace {

constexpr QuantExportFormat kFmt = QuantExportFormat::kCompressedTensors;

bool is_int4(QuantFormat f) {
  return f == QuantFormat::INT4_GROUP || f == QuantFormat::UINT4_GROUP;
}

// INT8 weights are pack-quantized (weight_packed) when the layer is weight-only and
// int-quantized (plain I8 weight) when activations are quantized too, as compressed-tensors'
// PackedQuantizationCompressor.match decides.
bool int8_packed(const LinearQuantScheme& scheme) {
  return scheme.activation == ActivationQuant::kNone;
}

// The offset-binary value pack_to_int32 stores for element (r, c): signed code + 2^(bits-1).
uint32_t packed_value(const QuantizedMatrix& m, int64_t r, int64_t c) {
  if (!is_int4(m.spec.format)) return m.row_data(r)[c] ^ 0x80u;  // int8 + 128
  const int64_t g = m.spec.group_size;
  const uint8_t* blk = group_block(m, r, c / g);
  const uint8_t code = nibble(blk + codes_offset(m.spec), c % g);
  // INT4: two's complement nibble + 8 == nibble ^ 8. UINT4: the stored value already is
  // (code - 8) + 8, since compressed-tensors' signed code is code - 8 and its zero point zero - 8.
  return m.spec.format == QuantFormat::INT4_GROUP ? code ^ 0x8u : code;
}

// pack_to_int32 along rows: word (r, k) holds elements c = k*pf .. k*pf + pf - 1 of row r, element
// c at bits bits*(c % pf); the last word is zero-padded. weight_packed: I32 [out, ceil(in / pf)].
std::vector<uint32_t> pack_weight(const QuantizedMatrix& m, int bits) {
  const int64_t pf = 32 / bits, words = ceil_div(m.cols, pf);
  std::vector<uint32_t> out(static_cast<size_t>(m.rows * words), 0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) {
      out[static_cast<size_t>(r * words + c / pf)] |= packed_value(m, r, c)
                                                      << (bits * static_cast<int>(c % pf));
    }
  }
  return out;
}

Status write_shape_and_packed(const QuantizedLinear& layer, SafetensorsWriter& w, int bits) {
  const QuantizedMatrix& m = layer.weight;
  const std::vector<uint32_t> packed = pack_weight(m, bits);
  QF_TRY(add_bytes(w, layer.module + ".weight_packed", DType::I32,
                   Shape{m.rows, ceil_div(m.cols, 32 / bits)}, packed.data(),
                   packed.size() * sizeof(uint32_t)));
  const int64_t shape[2] = {m.rows, m.cols};
  return add_bytes(w, layer.module + ".weight_shape", DType::I64, Shape{2}, shape, sizeof(shape));
}

Status write_int4(const QuantizedLinear& layer, SafetensorsWriter& w) {
  const QuantizedMatrix& m = layer.weight;
  const int64_t g = m.spec.group_size, ng = ceil_div(m.cols, g);
  QF_TRY(write_shape_and_packed(layer, w, 4));
  // weight_scale: [out, ceil(in / g)] in the weight's float dtype (qforge's scale type); a
  // ragged last group is fine because weight_shape keeps the true in_features.
  std::vector<uint16_t> scales(static_cast<size_t>(m.rows * ng));
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t b = 0; b < ng; ++b) {
      scales[static_cast<size_t>(r * ng + b)] = block_scale_bits(group_block(m, r, b));
    }
  }
  QF_TRY(add_bytes(w, layer.module + ".weight_scale", scale_type_dtype(m.spec.scale_type),
                   Shape{m.rows, ng}, scales.data(), scales.size() * sizeof(uint16_t)));
  if (m.spec.format != QuantFormat::UINT4_GROUP) return ok_status();
  // Zero points pack along dim 0: word (i, b) holds rows 8i .. 8i+7 of group b, row 8i+k at bits
  // 4k, each as (zero - 8) + 8. weight_zero_point: I32 [ceil(out / 8), ceil(in / g)].
  const int64_t zr = ceil_div(m.rows, 8);
  std::vector<uint32_t> zp(static_cast<size_t>(zr * ng), 0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t b = 0; b < ng; ++b) {
      const uint32_t z = group_block(m, r, b)[2] & 0xFu;
      zp[static_cast<size_t>((r / 8) * ng + b)] |= z << (4 * static_cast<int>(r % 8));
    }
  }
  return add_bytes(w, layer.module + ".weight_zero_point", DType::I32, Shape{zr, ng}, zp.data(),
                   zp.size() * sizeof(uint32_t));
}

// Reads weight_packed + weight_shape; returns [rows, cols] and the packed words.
Result<std::vector<uint32_t>> read_packed(const TensorLookup& lookup, const std::string& module,
                                          int bits, int64_t& rows, int64_t& cols) {
  const std::string pn = module + ".weight_packed", shn = module + ".weight_shape";
  QF_ASSIGN_OR_RETURN(TensorView p, require(lookup, pn, kFmt));
  QF_TRY(expect_dtype(p, pn, {DType::I32}));
  QF_ASSIGN_OR_RETURN(TensorView sh, require(lookup, shn, kFmt));
  QF_ASSIGN_OR_RETURN(std::vector<int64_t> dims, read_ints(sh, shn));
  const int64_t pf = 32 / bits;
  if (dims.size() != 2 || dims[0] <= 0 || dims[1] <= 0 || p.ndim() != 2 || p.dim(0) != dims[0] ||
      p.dim(1) != ceil_div(dims[1], pf)) {
    return make_error(ErrorCode::kFormat,
                      "'{}' = {} does not match '{}' of shape {} ({}-bit codes, {} per int32: "
                      "expected weight_shape [out, in] with weight_packed [out, ceil(in / {})])",
                      shn, fmt::join(dims, ", "), pn, p.shape().to_string(), bits, pf, pf);
  }
  rows = dims[0];
  cols = dims[1];
  QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(p, pn));
  std::vector<uint32_t> words(static_cast<size_t>(p.numel()));
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return words;
}

Result<QuantizedMatrix> read_int4(const TensorLookup& lookup, const std::string& module,
                                  const QuantSpec& spec) {
  int64_t rows = 0, cols = 0;
  QF_ASSIGN_OR_RETURN(std::vector<uint32_t> words, read_packed(lookup, module, 4, rows, cols));
  const int64_t g = spec.group_size, ng = ceil_div(cols, g), wpr = ceil_div(cols, 8);
  const std::string sn = module + ".weight_scale";
  QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
  const int64_t sdims[] = {rows, ng};
  QF_TRY(expect_shape(s, sn, sdims));
  QF_ASSIGN_OR_RETURN(std::vector<float> scales, read_floats(s, sn));
  const bool asym = spec.format == QuantFormat::UINT4_GROUP;
  std::vector<uint32_t> zp;
  if (asym) {
    const std::string zn = module + ".weight_zero_point";
    QF_ASSIGN_OR_RETURN(TensorView z, require(lookup, zn, kFmt));
    QF_TRY(expect_dtype(z, zn, {DType::I32}));
    const int64_t zdims[] = {ceil_div(rows, 8), ng};
    QF_TRY(expect_shape(z, zn, zdims));
    QF_ASSIGN_OR_RETURN(auto zb, bytes_of(z, zn));
    zp.resize(static_cast<size_t>(z.numel()));
    std::memcpy(zp.data(), zb.data(), zb.size());
  }
  QF_ASSIGN_OR_RETURN(QuantizedMatrix m, make_matrix(spec, rows, cols));
  const int64_t off = codes_offset(spec);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < ng; ++b) {
      uint8_t* blk = group_block(m, r, b);
      QF_ASSIGN_OR_RETURN(uint16_t bits,
                          encode_group_scale(scales[static_cast<size_t>(r * ng + b)],
                                             spec.scale_type, fmt::format("{}[{}, {}]", sn, r, b)));
      set_block_scale_bits(blk, bits);
      uint8_t zero = 0;
      if (asym) {
        zero = (zp[static_cast<size_t>((r / 8) * ng + b)] >> (4 * (r % 8))) & 0xF;
        blk[2] = zero;
      }
      for (int64_t j = 0; j < g; ++j) {
        const int64_t c = b * g + j;
        uint8_t code = zero;  // padding past in_features quantizes like 0.0
        if (c < cols) {
          const uint8_t v = (words[static_cast<size_t>(r * wpr + c / 8)] >> (4 * (c % 8))) & 0xF;
          code = asym ? v : static_cast<uint8_t>(v ^ 0x8);
        }
        set_nibble(blk + off, j, code);
      }
    }
  }
  return m;
}

Result<QuantizedMatrix> read_int8_packed(const TensorLookup& lookup, const std::string& module,
                                         const QuantSpec& spec) {
  int64_t rows = 0, cols = 0;
  QF_ASSIGN_OR_RETURN(std::vector<uint32_t> words, read_packed(lookup, module, 8, rows, cols));
  QF_ASSIGN_OR_RETURN(QuantizedMatrix m, make_matrix(spec, rows, cols));
  const int64_t wpr = ceil_div(cols, 4);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const uint32_t v = (words[static_cast<size_t>(r * wpr + c / 4)] >> (8 * (c % 4))) & 0xFF;
      m.row_data(r)[c] = static_cast<uint8_t>(v ^ 0x80);  // - 128, as two's complement
    }
  }
  return m;
}

// NVFP4 global scales are stored as reciprocals; a subnormal scale has none in FP32.
Status check_reciprocal(float reciprocal, const std::string& name, float scale) {
  if (std::isfinite(reciprocal)) return ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    "compressed-tensors export: {} = 1 / {} overflows FP32 (the scale is too "
                    "small to store as a reciprocal)",
                    name, scale);
}

Shape scale_shape(const QuantizedMatrix& m) {
  switch (m.spec.format) {
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::INT8_PER_CHANNEL:
      return Shape{m.rows, 1};  // strategy "channel"
    case QuantFormat::FP8_BLOCK128:
      return Shape{ceil_div(m.rows, kFp8BlockTile), ceil_div(m.cols, kFp8BlockTile)};
    default:  // strategy "tensor"
      return Shape{1};
  }
}

}  // namespace

Status write_linear_ct(const QuantizedLinear& layer, SafetensorsWriter& w) {
  const QuantizedMatrix& m = layer.weight;
  const std::string& mod = layer.module;
  if (!layer.pre_quant_scale.empty()) {
    return make_error(ErrorCode::kUnsupported,
                      "compressed-tensors export of '{}': {} has a pre_quant_scale, which "
                      "compressed-tensors cannot store (llm-compressor folds AWQ / SmoothQuant "
                      "scales into the preceding layer); fold it first or export as ModelOpt",
                      mod, quant_algo_name(layer.scheme.algo));
  }
  switch (m.spec.format) {
    case QuantFormat::FP8_PER_TENSOR:
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::FP8_BLOCK128:
      QF_TRY(add_bytes(w, mod + ".weight", DType::F8_E4M3FN, Shape{m.rows, m.cols}, m.data.data(),
                       m.data.size()));
      QF_TRY(add_f32(w, mod + ".weight_scale", scale_shape(m), m.scales));
      break;
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::INT8_PER_CHANNEL:
      if (int8_packed(layer.scheme)) {
        QF_TRY(write_shape_and_packed(layer, w, 8));
      } else {
        QF_TRY(add_bytes(w, mod + ".weight", DType::I8, Shape{m.rows, m.cols}, m.data.data(),
                         m.data.size()));
      }
      QF_TRY(add_f32(w, mod + ".weight_scale", scale_shape(m), m.scales));
      break;
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP:
      QF_TRY(write_int4(layer, w));
      break;
    case QuantFormat::NVFP4:
    case QuantFormat::MXFP4: {
      const bool nv = m.spec.format == QuantFormat::NVFP4;
      QF_TRY(write_fp4_matrix(layer, w, mod + ".weight_packed", kFmt,
                              "compressed-tensors stores [out, in / 2] codes and [out, in / "
                              "block] scales without a weight_shape for FP4 formats"));
      if (nv) {
        // compressed-tensors' global scale multiplies where ModelOpt's weight_scale_2 divides:
        // weight_global_scale = 1 / weight_scale_2 (= 448 * 6 / amax). An all-zero tensor keeps
        // compressed-tensors' fallback of 1.
        const float gs = m.tensor_scale > 0.0f ? 1.0f / m.tensor_scale : 1.0f;
        QF_TRY(check_reciprocal(gs, mod + ".weight_global_scale", m.tensor_scale));
        QF_TRY(add_scalar_f32(w, mod + ".weight_global_scale", Shape{1}, gs));
      }
      break;
    }
    default:
      return make_error(ErrorCode::kUnsupported,
                        "compressed-tensors export of '{}': no layout for {}", mod,
                        quant_spec_name(m.spec));
  }
  const ActivationQuant act = layer.scheme.activation;
  if (act == ActivationQuant::kNvfp4) {
    const float gs = 1.0f / layer.input_scale;
    QF_TRY(check_reciprocal(gs, mod + ".input_global_scale", layer.input_scale));
    QF_TRY(add_scalar_f32(w, mod + ".input_global_scale", Shape{1}, gs));
  } else if (activation_quant_is_static(act)) {
    QF_TRY(add_scalar_f32(w, mod + ".input_scale", Shape{1}, layer.input_scale));
  }
  return ok_status();
}

Result<QuantizedLinear> read_linear_ct(const TensorLookup& lookup, const std::string& module,
                                       const LinearQuantScheme& scheme) {
  QuantizedLinear layer;
  layer.module = module;
  layer.scheme = scheme;
  const QuantSpec& spec = scheme.weight;
  const std::string wn = module + ".weight", sn = module + ".weight_scale";
  if (find(lookup, module + ".weight_g_idx")) {
    return make_error(ErrorCode::kUnsupported,
                      "'{}.weight_g_idx' is present: activation-ordered groups (actorder "
                      "\"group\") need a column permutation qforge does not apply",
                      module);
  }
  switch (spec.format) {
    case QuantFormat::FP8_PER_TENSOR:
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::FP8_BLOCK128:
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::INT8_PER_CHANNEL: {
      const bool int8 = spec.format == QuantFormat::INT8_PER_TENSOR ||
                        spec.format == QuantFormat::INT8_PER_CHANNEL;
      if (int8 && find(lookup, module + ".weight_packed")) {
        QF_ASSIGN_OR_RETURN(layer.weight, read_int8_packed(lookup, module, spec));
      } else {
        QF_ASSIGN_OR_RETURN(TensorView w, require(lookup, wn, kFmt));
        QF_ASSIGN_OR_RETURN(layer.weight, read_byte_matrix(w, wn, spec));
      }
      QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
      QF_TRY(read_matrix_scales(s, sn, layer.weight));
      break;
    }
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP: {
      QF_ASSIGN_OR_RETURN(layer.weight, read_int4(lookup, module, spec));
      break;
    }
    case QuantFormat::NVFP4:
    case QuantFormat::MXFP4: {
      const std::string pn = module + ".weight_packed";
      QF_ASSIGN_OR_RETURN(TensorView w, require(lookup, pn, kFmt));
      QF_ASSIGN_OR_RETURN(TensorView s, require(lookup, sn, kFmt));
      QF_ASSIGN_OR_RETURN(layer.weight, read_fp4_matrix(w, pn, s, sn, spec));
      if (spec.format == QuantFormat::NVFP4) {
        const std::string gn = module + ".weight_global_scale";
        QF_ASSIGN_OR_RETURN(TensorView gv, require(lookup, gn, kFmt));
        QF_ASSIGN_OR_RETURN(float gs, read_scalar_f32(gv, gn));
        QF_TRY(check_scale(gs, gn, true));
        layer.weight.tensor_scale = 1.0f / gs;
      }
      break;
    }
    default:
      return make_error(ErrorCode::kUnsupported,
                        "compressed-tensors checkpoints have no layout for {}",
                        quant_spec_name(spec));
  }
  if (scheme.activation == ActivationQuant::kNvfp4) {
    const std::string in = module + ".input_global_scale";
    QF_ASSIGN_OR_RETURN(TensorView v, require(lookup, in, kFmt));
    QF_ASSIGN_OR_RETURN(float gs, read_scalar_f32(v, in));
    QF_TRY(check_scale(gs, in, true));
    layer.input_scale = 1.0f / gs;
  } else if (activation_quant_is_static(scheme.activation)) {
    const std::string in = module + ".input_scale";
    QF_ASSIGN_OR_RETURN(TensorView v, require(lookup, in, kFmt));
    QF_ASSIGN_OR_RETURN(layer.input_scale, read_scalar_f32(v, in));
    QF_TRY(check_input_scale(layer.input_scale, in));
  }
  return layer;
}

}  // namespace qforge::qckpt
