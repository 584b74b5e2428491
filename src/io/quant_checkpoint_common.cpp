// The format-independent half of quantized-checkpoint export/import: layer validation, checked
// tensor access, pre_quant_scale, plain weights, FP8 / INT8 / FP4 matrices and the dispatchers.
// Layouts: docs/CHECKPOINT_FORMATS.md "Quantized checkpoints".
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "io/quant_checkpoint_internal.h"
#include "qforge/formats/scalar.h"

namespace qforge {
namespace qckpt {
namespace {

bool is_fp8_format(QuantFormat f) {
  return f == QuantFormat::FP8_PER_TENSOR || f == QuantFormat::FP8_PER_CHANNEL ||
         f == QuantFormat::FP8_BLOCK128;
}

bool is_float_format(QuantFormat f) {
  return f == QuantFormat::F32 || f == QuantFormat::F16 || f == QuantFormat::BF16;
}

std::string spec_text(const QuantSpec& s) {
  return quant_spec_name(s);
}

// Encodes v in a float dtype (F32 / F16 / BF16) as little-endian bytes appended to out.
void append_float(std::vector<uint8_t>& out, DType dtype, float v) {
  if (dtype == DType::F32) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    out.insert(out.end(), b, b + 4);
    return;
  }
  const uint16_t h = dtype == DType::F16 ? float_to_f16(v) : float_to_bf16(v);
  uint8_t b[2];
  std::memcpy(b, &h, 2);
  out.insert(out.end(), b, b + 2);
}

}  // namespace

const char* format_label(QuantExportFormat format) {
  return format == QuantExportFormat::kModelOpt ? "ModelOpt" : "compressed-tensors";
}

DType scale_type_dtype(ScaleType type) {
  return type == ScaleType::F16 ? DType::F16 : DType::BF16;
}

int64_t group_block_bytes(const QuantSpec& spec) {
  switch (spec.format) {
    case QuantFormat::INT4_GROUP:
      return int4_block_bytes(spec.group_size);
    case QuantFormat::UINT4_GROUP:
      return uint4_block_bytes(spec.group_size);
    case QuantFormat::NVFP4:
      return sizeof(BlockNvfp4);
    case QuantFormat::MXFP4:
      return sizeof(BlockMxfp4);
    case QuantFormat::MXFP8:
      return sizeof(BlockMxfp8);
    default:
      return 0;
  }
}

Result<QuantizedMatrix> make_matrix(const QuantSpec& spec, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    return make_error(ErrorCode::kFormat, "matrix shape [{}, {}] is empty", rows, cols);
  }
  QuantizedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  m.padded_cols = cols;
  int64_t scale_count = 0;
  switch (spec.format) {
    case QuantFormat::F32:
      m.row_bytes = cols * 4;
      break;
    case QuantFormat::F16:
    case QuantFormat::BF16:
      m.row_bytes = cols * 2;
      break;
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::FP8_PER_TENSOR:
      m.row_bytes = cols;
      scale_count = 1;
      break;
    case QuantFormat::INT8_PER_CHANNEL:
    case QuantFormat::INT8_PER_TOKEN:
    case QuantFormat::FP8_PER_CHANNEL:
      m.row_bytes = cols;
      scale_count = rows;
      break;
    case QuantFormat::FP8_BLOCK128:
      m.row_bytes = cols;
      scale_count = ceil_div(rows, kFp8BlockTile) * ceil_div(cols, kFp8BlockTile);
      break;
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP:
    case QuantFormat::NVFP4:
    case QuantFormat::MXFP4:
    case QuantFormat::MXFP8: {
      const int64_t g = spec.group_size;
      if (g <= 0) return make_error(ErrorCode::kInvalidArgument, "group size {} <= 0", g);
      m.padded_cols = ceil_div(cols, g) * g;
      m.row_bytes = ceil_div(cols, g) * group_block_bytes(spec);
      break;
    }
  }
  int64_t total = 0;
  if (__builtin_mul_overflow(rows, m.row_bytes, &total) || total > (int64_t{1} << 60)) {
    return make_error(ErrorCode::kFormat, "matrix shape [{}, {}] as {} is too large", rows, cols,
                      spec_text(spec));
  }
  m.data.assign(static_cast<size_t>(total), 0);
  m.scales.assign(static_cast<size_t>(scale_count), 0.0f);
  return m;
}

Status validate_layer(const QuantizedLinear& layer, QuantExportFormat format) {
  const char* fl = format_label(format);
  const std::string& mod = layer.module;
  if (mod.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{} export: the layer has no module name", fl);
  }
  const QuantSpec& want = layer.scheme.weight;
  const QuantSpec& have = layer.weight.spec;
  QF_TRY(validate_quant_spec(want).context(fmt::format("{} export of '{}': scheme", fl, mod)));
  if (have.format != want.format || have.group_size != want.group_size ||
      (group_block_bytes(want) != 0 && have.scale_type != want.scale_type) ||
      (is_fp8_format(want.format) && have.fp8 != want.fp8)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} export of '{}': the weight is {} but the scheme ({}) says {}", fl, mod,
                      spec_text(have), quant_algo_name(layer.scheme.algo), spec_text(want));
  }
  if (layer.scheme.quantized() == is_float_format(want.format)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} export of '{}': algorithm {} does not match weight format {}", fl, mod,
                      quant_algo_name(layer.scheme.algo), spec_text(want));
  }
  if (is_fp8_format(want.format) && want.fp8 != ScalarFormat::E4M3FN) {
    return make_error(ErrorCode::kUnsupported,
                      "{} export of '{}': {} stores FP8 as E4M3FN (safetensors F8_E4M3) only, "
                      "the weight uses {}",
                      fl, mod, fl, scalar_format_info(want.fp8).name);
  }
  if (want.format == QuantFormat::MXFP8 || want.format == QuantFormat::INT8_PER_TOKEN) {
    return make_error(ErrorCode::kUnsupported,
                      "{} export of '{}': weight format {} has no {} layout", fl, mod,
                      spec_text(want), fl);
  }
  QF_ASSIGN_OR_RETURN(QuantizedMatrix shape,
                      make_matrix(want, layer.weight.rows, layer.weight.cols)
                          .context(fmt::format("{} export of '{}'", fl, mod)));
  const QuantizedMatrix& w = layer.weight;
  if (w.padded_cols != shape.padded_cols || w.row_bytes != shape.row_bytes ||
      w.data.size() != shape.data.size() || w.scales.size() != shape.scales.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} export of '{}': inconsistent {} matrix [{}, {}]: padded_cols {} "
                      "(expected {}), row_bytes {} (expected {}), {} data bytes (expected {}), {} "
                      "scales (expected {})",
                      fl, mod, spec_text(want), w.rows, w.cols, w.padded_cols, shape.padded_cols,
                      w.row_bytes, shape.row_bytes, w.data.size(), shape.data.size(),
                      w.scales.size(), shape.scales.size());
  }
  for (size_t i = 0; i < w.scales.size(); ++i) {
    QF_TRY(check_scale(w.scales[i], fmt::format("{}: scales[{}]", mod, i), false));
  }
  if (want.format == QuantFormat::NVFP4) {
    QF_TRY(check_scale(w.tensor_scale, mod + ": tensor_scale (weight_scale_2)", false));
  }
  const ActivationQuant act = layer.scheme.activation;
  if (activation_quant_is_static(act)) {
    QF_TRY(
        check_input_scale(layer.input_scale, mod + ".input_scale")
            .context(fmt::format("{} export: {} activations are static ({})", fl,
                                 activation_quant_name(act), quant_algo_name(layer.scheme.algo))));
  } else if (layer.input_scale != 0.0f) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} export of '{}': input_scale is {} but {} activations ({}) have no static "
                      "scale; leave it 0",
                      fl, mod, layer.input_scale, activation_quant_name(act),
                      quant_algo_name(layer.scheme.algo));
  }
  const auto& pqs = layer.pre_quant_scale;
  if (!pqs.empty()) {
    const DType d = layer.pre_quant_scale_dtype;
    if (d != DType::F32 && d != DType::F16 && d != DType::BF16) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} export of '{}': pre_quant_scale dtype {} (expected f32, f16 or bf16)",
                        fl, mod, d);
    }
    if (static_cast<int64_t>(pqs.size()) != w.cols) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} export of '{}': pre_quant_scale has {} entries, in_features is {}", fl,
                        mod, pqs.size(), w.cols);
    }
    for (size_t i = 0; i < pqs.size(); ++i) {
      const float v = pqs[i];
      float back = v;
      if (d == DType::F16) back = f16_to_float(float_to_f16(v));
      if (d == DType::BF16) back = bf16_to_float(float_to_bf16(v));
      if (!std::isfinite(v) || !(v > 0.0f) || back != v) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{} export of '{}': pre_quant_scale[{}] = {} is not a positive finite "
                          "value exactly representable in {} (round the scales to the dtype they "
                          "are stored and applied in first)",
                          fl, mod, i, v, d);
      }
    }
  }
  return ok_status();
}

Status add_bytes(SafetensorsWriter& w, const std::string& name, DType dtype, const Shape& shape,
                 const void* data, size_t bytes) {
  return w.add(name, dtype, shape,
               std::span<const std::byte>(static_cast<const std::byte*>(data), bytes));
}

Status add_f32(SafetensorsWriter& w, const std::string& name, const Shape& shape,
               const std::vector<float>& values) {
  return add_bytes(w, name, DType::F32, shape, values.data(), values.size() * sizeof(float));
}

Status add_scalar_f32(SafetensorsWriter& w, const std::string& name, const Shape& shape, float v) {
  return add_bytes(w, name, DType::F32, shape, &v, sizeof(v));
}

Result<TensorView> require(const TensorLookup& lookup, const std::string& name,
                           QuantExportFormat format) {
  if (auto v = find(lookup, name)) return *v;
  return make_error(ErrorCode::kNotFound, "{} checkpoint: tensor '{}' is missing",
                    format_label(format), name);
}

std::optional<TensorView> find(const TensorLookup& lookup, const std::string& name) {
  if (!lookup) return std::nullopt;
  return lookup(name);
}

Status expect_dtype(const TensorView& v, const std::string& name,
                    std::initializer_list<DType> allowed) {
  std::string list;
  for (DType d : allowed) {
    if (v.dtype() == d) return ok_status();
    if (!list.empty()) list += " or ";
    auto sn = safetensors_dtype_name(d);
    list += sn.ok() ? std::string(*sn) : std::string(dtype_name(d));
  }
  auto have = safetensors_dtype_name(v.dtype());
  return make_error(ErrorCode::kFormat, "tensor '{}' has dtype {}, expected {}", name,
                    have.ok() ? std::string(*have) : std::string(dtype_name(v.dtype())), list);
}

Status expect_shape(const TensorView& v, const std::string& name, std::span<const int64_t> dims) {
  bool same = v.ndim() == static_cast<int>(dims.size());
  for (int i = 0; same && i < v.ndim(); ++i) same = v.dim(i) == dims[static_cast<size_t>(i)];
  if (same) return ok_status();
  auto expected = Shape::from(dims);
  return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected {}", name,
                    v.shape().to_string(),
                    expected.ok() ? expected->to_string() : std::string("(invalid)"));
}

Result<std::span<const std::byte>> bytes_of(const TensorView& v, const std::string& name) {
  if (v.data() == nullptr && v.numel() > 0) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has no data", name);
  }
  if (!v.is_contiguous()) {
    return make_error(ErrorCode::kInvalidArgument, "tensor '{}' is not contiguous ({})", name,
                      v.to_string());
  }
  return v.bytes();
}

Result<std::vector<float>> read_floats(const TensorView& v, const std::string& name) {
  QF_TRY(expect_dtype(v, name, {DType::F32, DType::F16, DType::BF16}));
  QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(v, name));
  const auto n = static_cast<size_t>(v.numel());
  std::vector<float> out(n);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < n; ++i) {
    if (v.dtype() == DType::F32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = v.dtype() == DType::F16 ? f16_to_float(h) : bf16_to_float(h);
    }
  }
  return out;
}

Result<float> read_scalar_f32(const TensorView& v, const std::string& name) {
  if (v.numel() != 1 || v.ndim() > 1) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected a scalar ([] or [1])",
                      name, v.shape().to_string());
  }
  QF_ASSIGN_OR_RETURN(std::vector<float> f, read_floats(v, name));
  return f[0];
}

Result<std::vector<int64_t>> read_ints(const TensorView& v, const std::string& name) {
  QF_TRY(expect_dtype(v, name, {DType::I64, DType::I32}));
  QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(v, name));
  const auto n = static_cast<size_t>(v.numel());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.dtype() == DType::I64) {
      std::memcpy(&out[i], bytes.data() + 8 * i, 8);
    } else {
      int32_t x;
      std::memcpy(&x, bytes.data() + 4 * i, 4);
      out[i] = x;
    }
  }
  return out;
}

Status check_scale(float v, const std::string& name, bool positive) {
  if (std::isfinite(v) && (positive ? v > 0.0f : v >= 0.0f)) return ok_status();
  return make_error(ErrorCode::kFormat, "{} = {} is not a finite {} scale", name, v,
                    positive ? "positive" : "non-negative");
}

Status check_input_scale(float v, const std::string& name) {
  return check_scale(v, name, true);
}

Status write_pre_quant_scale(const QuantizedLinear& layer, SafetensorsWriter& w) {
  if (layer.pre_quant_scale.empty()) return ok_status();
  std::vector<uint8_t> bytes;
  for (float v : layer.pre_quant_scale) append_float(bytes, layer.pre_quant_scale_dtype, v);
  const auto n = static_cast<int64_t>(layer.pre_quant_scale.size());
  return add_bytes(w, layer.module + ".pre_quant_scale", layer.pre_quant_scale_dtype, Shape{n},
                   bytes.data(), bytes.size());
}

Status read_pre_quant_scale(const TensorLookup& lookup, QuantizedLinear& layer) {
  const std::string name = layer.module + ".pre_quant_scale";
  auto v = find(lookup, name);
  if (!v) return ok_status();
  const int64_t dims[] = {layer.weight.cols};
  QF_TRY(expect_shape(*v, name, dims));
  QF_ASSIGN_OR_RETURN(layer.pre_quant_scale, read_floats(*v, name));
  layer.pre_quant_scale_dtype = v->dtype();
  for (size_t i = 0; i < layer.pre_quant_scale.size(); ++i) {
    QF_TRY(check_scale(layer.pre_quant_scale[i], fmt::format("{}[{}]", name, i), true));
  }
  return ok_status();
}

Result<uint16_t> encode_group_scale(float v, ScaleType type, const std::string& name) {
  const uint16_t bits = type == ScaleType::F16 ? float_to_f16(v) : float_to_bf16(v);
  if (!std::isfinite(decode_group_scale(bits, type)) || !std::isfinite(v) || v < 0.0f) {
    return make_error(ErrorCode::kFormat,
                      "{} = {} does not fit a non-negative {} group scale (store BF16 scales for "
                      "large values)",
                      name, v, type == ScaleType::F16 ? "F16" : "BF16");
  }
  return bits;
}

float decode_group_scale(uint16_t bits, ScaleType type) {
  return type == ScaleType::F16 ? f16_to_float(bits) : bf16_to_float(bits);
}

Error group_divide_error(const QuantizedLinear& layer, QuantExportFormat format, int64_t group,
                         std::string_view why) {
  const int64_t cols = layer.weight.cols;
  std::string hint;
  for (int64_t g : {256, 128, 64, 32, 16}) {
    if (g != group && cols % g == 0) {
      hint = fmt::format("choose a group size that divides it (e.g. {})", g);
      break;
    }
  }
  if (hint.empty()) hint = "choose a group size that divides it";
  if (format == QuantExportFormat::kModelOpt &&
      (layer.weight.spec.format == QuantFormat::INT4_GROUP ||
       layer.weight.spec.format == QuantFormat::UINT4_GROUP)) {
    hint += ", export as compressed-tensors (its weight_shape records the true width)";
  }
  hint += " or exclude the module from quantization";
  return make_error(ErrorCode::kUnsupported,
                    "{} export of '{}': group_size {} does not divide in_features {} ({}); {}",
                    format_label(format), layer.module, group, cols, why, hint);
}

Status write_plain_weight(const QuantizedLinear& layer, SafetensorsWriter& w) {
  const QuantizedMatrix& m = layer.weight;
  const DType d = m.spec.format == QuantFormat::F32   ? DType::F32
                  : m.spec.format == QuantFormat::F16 ? DType::F16
                                                      : DType::BF16;
  return add_bytes(w, layer.module + ".weight", d, Shape{m.rows, m.cols}, m.data.data(),
                   m.data.size());
}

Status read_plain_weight(const TensorLookup& lookup, QuantizedLinear& layer,
                         QuantExportFormat format) {
  const std::string name = layer.module + ".weight";
  QF_ASSIGN_OR_RETURN(TensorView v, require(lookup, name, format));
  QF_TRY(expect_dtype(v, name, {DType::F32, DType::F16, DType::BF16}));
  if (v.ndim() != 2) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected [out, in]", name,
                      v.shape().to_string());
  }
  const QuantSpec& spec = layer.scheme.weight;
  QF_ASSIGN_OR_RETURN(layer.weight, make_matrix(spec, v.dim(0), v.dim(1)));
  const DType want = spec.format == QuantFormat::F32   ? DType::F32
                     : spec.format == QuantFormat::F16 ? DType::F16
                                                       : DType::BF16;
  if (v.dtype() == want) {
    QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(v, name));
    std::memcpy(layer.weight.data.data(), bytes.data(), bytes.size());
    return ok_status();
  }
  if (want != DType::F32) {
    return make_error(ErrorCode::kFormat, "tensor '{}' is {} but the scheme stores {}", name,
                      v.dtype(), want);
  }
  QF_ASSIGN_OR_RETURN(std::vector<float> f, read_floats(v, name));  // exact widening
  std::memcpy(layer.weight.data.data(), f.data(), f.size() * sizeof(float));
  return ok_status();
}

Result<QuantizedMatrix> read_byte_matrix(const TensorView& w, const std::string& name,
                                         const QuantSpec& spec) {
  const bool fp8 = is_fp8_format(spec.format);
  QF_TRY(expect_dtype(w, name, {fp8 ? DType::F8_E4M3FN : DType::I8}));
  if (w.ndim() != 2) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected [out, in]", name,
                      w.shape().to_string());
  }
  QF_ASSIGN_OR_RETURN(QuantizedMatrix m, make_matrix(spec, w.dim(0), w.dim(1)));
  QF_ASSIGN_OR_RETURN(auto bytes, bytes_of(w, name));
  std::memcpy(m.data.data(), bytes.data(), m.data.size());
  if (fp8) {
    for (size_t i = 0; i < m.data.size(); ++i) {
      if ((m.data[i] & 0x7F) == 0x7F) {
        return make_error(ErrorCode::kFormat,
                          "tensor '{}' holds an FP8 NaN code (0x{:02x}) at row "
                          "{}, column {}",
                          name, m.data[i], static_cast<int64_t>(i) / m.cols,
                          static_cast<int64_t>(i) % m.cols);
      }
    }
  }
  return m;
}

Status read_matrix_scales(const TensorView& s, const std::string& name, QuantizedMatrix& m) {
  QF_ASSIGN_OR_RETURN(std::vector<float> v, read_floats(s, name));
  const auto dims = s.shape().dims();
  bool ok = false;
  switch (m.spec.format) {
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::FP8_PER_TENSOR:
      ok = v.size() == 1 && dims.size() <= 1;
      break;
    case QuantFormat::INT8_PER_CHANNEL:
    case QuantFormat::FP8_PER_CHANNEL:
      ok = (dims.size() == 1 && dims[0] == m.rows) ||
           (dims.size() == 2 && dims[0] == m.rows && dims[1] == 1);
      break;
    case QuantFormat::FP8_BLOCK128: {
      const int64_t br = ceil_div(m.rows, kFp8BlockTile), bc = ceil_div(m.cols, kFp8BlockTile);
      ok = (dims.size() == 2 && dims[0] == br && dims[1] == bc) ||
           (dims.size() == 4 && dims[0] == br && dims[1] == 1 && dims[2] == bc && dims[3] == 1);
      break;
    }
    default:
      break;
  }
  if (!ok || v.size() != m.scales.size()) {
    return make_error(ErrorCode::kFormat,
                      "tensor '{}' has shape {}, which does not fit a {} matrix "
                      "[{}, {}] ({} scales)",
                      name, s.shape().to_string(), spec_text(m.spec), m.rows, m.cols,
                      m.scales.size());
  }
  for (size_t i = 0; i < v.size(); ++i) {
    QF_TRY(check_scale(v[i], fmt::format("{}[{}]", name, i), false));
  }
  m.scales = std::move(v);
  return ok_status();
}

Status write_fp4_matrix(const QuantizedLinear& layer, SafetensorsWriter& w,
                        const std::string& codes_name, QuantExportFormat format,
                        std::string_view why) {
  const QuantizedMatrix& m = layer.weight;
  const bool nv = m.spec.format == QuantFormat::NVFP4;
  const int64_t g = m.spec.group_size, nb = m.cols / g, half = g / 2;
  if (m.cols % g != 0) return group_divide_error(layer, format, g, why);
  std::vector<uint8_t> codes, scales;
  codes.assign(static_cast<size_t>(m.rows * m.cols / 2), 0);
  scales.assign(static_cast<size_t>(m.rows * nb), 0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = group_block(m, r, b);
      const uint8_t* qs = nv ? blk : blk + 1;  // BlockNvfp4: qs then scale; BlockMxfp4: scale first
      std::memcpy(&codes[static_cast<size_t>(r * (m.cols / 2) + b * half)], qs,
                  static_cast<size_t>(half));
      scales[static_cast<size_t>(r * nb + b)] = nv ? blk[half] : blk[0];
    }
  }
  QF_TRY(
      add_bytes(w, codes_name, DType::U8, Shape{m.rows, m.cols / 2}, codes.data(), codes.size()));
  return add_bytes(w, layer.module + ".weight_scale", nv ? DType::F8_E4M3FN : DType::U8,
                   Shape{m.rows, nb}, scales.data(), scales.size());
}

Result<QuantizedMatrix> read_fp4_matrix(const TensorView& w, const std::string& wname,
                                        const TensorView& s, const std::string& sname,
                                        const QuantSpec& spec) {
  const bool nv = spec.format == QuantFormat::NVFP4;
  QF_TRY(expect_dtype(w, wname, {DType::U8}));
  if (w.ndim() != 2) {
    return make_error(ErrorCode::kFormat, "tensor '{}' has shape {}, expected [out, in / 2]", wname,
                      w.shape().to_string());
  }
  const int64_t g = spec.group_size, rows = w.dim(0), cols = w.dim(1) * 2;
  if (cols % g != 0) {
    return make_error(ErrorCode::kFormat,
                      "tensor '{}' has shape {}: in_features {} is not a multiple of the {} block "
                      "size {}",
                      wname, w.shape().to_string(), cols, spec_text(spec), g);
  }
  if (nv) {
    QF_TRY(expect_dtype(s, sname, {DType::F8_E4M3FN}));
  } else {
    QF_TRY(expect_dtype(s, sname, {DType::U8, DType::E8M0}));
  }
  const int64_t sdims[] = {rows, cols / g};
  QF_TRY(expect_shape(s, sname, sdims));
  QF_ASSIGN_OR_RETURN(QuantizedMatrix m, make_matrix(spec, rows, cols));
  QF_ASSIGN_OR_RETURN(auto codes, bytes_of(w, wname));
  QF_ASSIGN_OR_RETURN(auto scales, bytes_of(s, sname));
  const auto* cp = reinterpret_cast<const uint8_t*>(codes.data());
  const auto* sp = reinterpret_cast<const uint8_t*>(scales.data());
  const int64_t nb = cols / g, half = g / 2;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t sc = sp[r * nb + b];
      // E4M3FN: NaN is 0x7F / 0xFF and a block scale is never negative; E8M0: 0xFF is NaN.
      if (nv ? (sc & 0x80) != 0 || sc == 0x7F : sc == 0xFF) {
        return make_error(
            ErrorCode::kFormat,
            "tensor '{}' holds an invalid {} block scale 0x{:02x} at row {}, block {}", sname,
            nv ? "E4M3FN" : "E8M0", sc, r, b);
      }
      uint8_t* blk = group_block(m, r, b);
      std::memcpy(nv ? blk : blk + 1, cp + r * (cols / 2) + b * half, static_cast<size_t>(half));
      blk[nv ? half : 0] = sc;
    }
  }
  return m;
}

}  // namespace qckpt

using namespace qckpt;

std::string_view quant_export_format_name(QuantExportFormat format) {
  return format == QuantExportFormat::kModelOpt ? "modelopt" : "compressed-tensors";
}

Result<QuantExportFormat> parse_quant_export_format(std::string_view text) {
  if (text == "modelopt" || text == "ModelOpt") return QuantExportFormat::kModelOpt;
  if (text == "compressed-tensors" || text == "compressed_tensors" || text == "ct") {
    return QuantExportFormat::kCompressedTensors;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown quantized checkpoint format '{}'; expected modelopt or "
                    "compressed-tensors",
                    text);
}

Status write_quantized_linear(const QuantizedLinear& layer, QuantExportFormat format,
                              SafetensorsWriter& writer) {
  QF_TRY(validate_layer(layer, format));
  if (!layer.scheme.quantized()) {
    if (!layer.pre_quant_scale.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} export of '{}': an unquantized layer has no pre_quant_scale",
                        format_label(format), layer.module);
    }
    return write_plain_weight(layer, writer);
  }
  return format == QuantExportFormat::kModelOpt ? write_linear_modelopt(layer, writer)
                                                : write_linear_ct(layer, writer);
}

Result<QuantizedLinear> read_quantized_linear(const TensorLookup& lookup, const std::string& module,
                                              const LinearQuantScheme& scheme,
                                              QuantExportFormat format) {
  const std::string ctx = fmt::format("reading {} layer '{}' as {}", format_label(format), module,
                                      quant_algo_name(scheme.algo));
  if (Status st = validate_quant_spec(scheme.weight); !st.ok()) {
    return std::move(st).context(ctx).error();
  }
  if (!scheme.quantized()) {
    QuantizedLinear layer;
    layer.module = module;
    layer.scheme = scheme;
    if (Status st = read_plain_weight(lookup, layer, format); !st.ok()) {
      return std::move(st).context(ctx).error();
    }
    return layer;
  }
  auto r = format == QuantExportFormat::kModelOpt ? read_linear_modelopt(lookup, module, scheme)
                                                  : read_linear_ct(lookup, module, scheme);
  return std::move(r).context(ctx);
}

TensorLookup safetensors_lookup(const SafetensorsFile& file) {
  return [&file](const std::string& name) -> std::optional<TensorView> {
    if (file.find(name) == nullptr) return std::nullopt;
    auto v = file.view(name);
    if (!v.ok()) return std::nullopt;
    return *v;
  };
}

}  // namespace qforge
