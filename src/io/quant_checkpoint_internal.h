// Helpers shared by the quantized-checkpoint writers and readers (quant_checkpoint_*.cpp):
// checked tensor access with errors that name the tensor, the format and the expectation, and
// byte-level access to qforge's INT4 / NVFP4 / MXFP4 blocks.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/io/quant_checkpoint.h"

namespace qforge::qckpt {

inline int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0);
}

const char* format_label(QuantExportFormat format);  // "ModelOpt", "compressed-tensors"

// Checks that layer.weight is a consistent matrix of layer.scheme.weight's format, that the
// input_scale matches the scheme's activation (positive and finite when static, 0 otherwise),
// and that pre_quant_scale has in_features finite entries representable in its dtype.
Status validate_layer(const QuantizedLinear& layer, QuantExportFormat format);

// An empty matrix of `spec` and shape [rows, cols] (data zero-filled, scales sized).
Result<QuantizedMatrix> make_matrix(const QuantSpec& spec, int64_t rows, int64_t cols);

// Writer helpers (copying).
Status add_bytes(SafetensorsWriter& w, const std::string& name, DType dtype, const Shape& shape,
                 const void* data, size_t bytes);
Status add_f32(SafetensorsWriter& w, const std::string& name, const Shape& shape,
               const std::vector<float>& values);
Status add_scalar_f32(SafetensorsWriter& w, const std::string& name, const Shape& shape, float v);

// Reader helpers. `require` fails (kNotFound) naming the tensor and the format when absent.
Result<TensorView> require(const TensorLookup& lookup, const std::string& name,
                           QuantExportFormat format);
std::optional<TensorView> find(const TensorLookup& lookup, const std::string& name);
Status expect_dtype(const TensorView& v, const std::string& name,
                    std::initializer_list<DType> allowed);
Status expect_shape(const TensorView& v, const std::string& name, std::span<const int64_t> dims);
// The tensor's bytes (contiguous views only).
Result<std::span<const std::byte>> bytes_of(const TensorView& v, const std::string& name);
// F32 / F16 / BF16 elements as floats.
Result<std::vector<float>> read_floats(const TensorView& v, const std::string& name);
// A one-element float tensor of shape [] or [1] (F32 as written; F16 / BF16 widened exactly).
Result<float> read_scalar_f32(const TensorView& v, const std::string& name);
// Integer elements (I32 / I64) as int64.
Result<std::vector<int64_t>> read_ints(const TensorView& v, const std::string& name);

// Scale values must be finite and >= 0 (> 0 when `positive`).
Status check_scale(float v, const std::string& name, bool positive);
// input_scale for a static scheme.
Status check_input_scale(float v, const std::string& name);

// pre_quant_scale: "<module>.pre_quant_scale", [in_features] in layer.pre_quant_scale_dtype.
Status write_pre_quant_scale(const QuantizedLinear& layer, SafetensorsWriter& w);
Status read_pre_quant_scale(const TensorLookup& lookup, QuantizedLinear& layer);

// Float <-> group scale bits of ScaleType. encode fails when the value does not fit (Inf).
Result<uint16_t> encode_group_scale(float v, ScaleType type, const std::string& name);
float decode_group_scale(uint16_t bits, ScaleType type);
// The dtype a ScaleType is stored as.
DType scale_type_dtype(ScaleType type);

// INT4 / UINT4 block access: block b of row r of m (a group format).
int64_t group_block_bytes(const QuantSpec& spec);
inline uint8_t* group_block(QuantizedMatrix& m, int64_t r, int64_t b) {
  return m.row_data(r) + b * group_block_bytes(m.spec);
}
inline const uint8_t* group_block(const QuantizedMatrix& m, int64_t r, int64_t b) {
  return m.row_data(r) + b * group_block_bytes(m.spec);
}
inline uint16_t block_scale_bits(const uint8_t* block) {
  uint16_t s;
  std::memcpy(&s, block, sizeof(s));
  return s;
}
inline void set_block_scale_bits(uint8_t* block, uint16_t s) {
  std::memcpy(block, &s, sizeof(s));
}
// Offset of the packed codes in a group block: 2 (INT4) or 4 (UINT4: scale, zero, reserved).
inline int64_t codes_offset(const QuantSpec& spec) {
  return spec.format == QuantFormat::UINT4_GROUP ? 4 : 2;
}
// 4-bit code of element j of a packed run (element 2i in the low nibble of byte i).
inline uint8_t nibble(const uint8_t* qs, int64_t j) {
  return static_cast<uint8_t>((qs[j / 2] >> (4 * (j % 2))) & 0xF);
}
inline void set_nibble(uint8_t* qs, int64_t j, uint8_t v) {
  const int shift = static_cast<int>(4 * (j % 2));
  qs[j / 2] = static_cast<uint8_t>((qs[j / 2] & ~(0xF << shift)) | ((v & 0xF) << shift));
}

// [out, in] one-byte codes (FP8 E4M3FN / INT8) of a FP8_* / INT8_* matrix, and back; FP8 NaN
// codes are rejected on read.
Result<QuantizedMatrix> read_byte_matrix(const TensorView& w, const std::string& name,
                                         const QuantSpec& spec);
// The scales of an FP8 / INT8 matrix from a float tensor: one value ([] / [1]), one per row
// ([out] / [out, 1]) or one per 128x128 tile ([out/128, in/128] or ModelOpt's
// [out/128, 1, in/128, 1]).
Status read_matrix_scales(const TensorView& s, const std::string& name, QuantizedMatrix& m);

// NVFP4 / MXFP4 blocks <-> the [out, in/2] packed codes (element 2i in the low nibble, both
// formats; written as `codes_name`) and the [out, in/block] scale bytes (E4M3FN / E8M0, written
// as "<module>.weight_scale"). Neither layout pads: a width the block does not divide is
// group_divide_error(format, `why`).
Status write_fp4_matrix(const QuantizedLinear& layer, SafetensorsWriter& w,
                        const std::string& codes_name, QuantExportFormat format,
                        std::string_view why);
Result<QuantizedMatrix> read_fp4_matrix(const TensorView& w, const std::string& wname,
                                        const TensorView& s, const std::string& sname,
                                        const QuantSpec& spec);

// Per-format linear layer writers and readers (quant_checkpoint_modelopt.cpp / ..._ct.cpp).
Status write_linear_modelopt(const QuantizedLinear& layer, SafetensorsWriter& w);
Result<QuantizedLinear> read_linear_modelopt(const TensorLookup& lookup, const std::string& module,
                                             const LinearQuantScheme& scheme);
Status write_linear_ct(const QuantizedLinear& layer, SafetensorsWriter& w);
Result<QuantizedLinear> read_linear_ct(const TensorLookup& lookup, const std::string& module,
                                       const LinearQuantScheme& scheme);

// The error for an INT4 / NVFP4 / MXFP4 width the format cannot store without padding.
Error group_divide_error(const QuantizedLinear& layer, QuantExportFormat format, int64_t group,
                         std::string_view why);

// Plain weight (NO_QUANT: F32 / F16 / BF16 rows) for both formats.
Status write_plain_weight(const QuantizedLinear& layer, SafetensorsWriter& w);
Status read_plain_weight(const TensorLookup& lookup, QuantizedLinear& layer,
                         QuantExportFormat format);

// ---- Configs (quant_checkpoint_config.cpp, quant_checkpoint_config_ct.cpp) ----
// Typed JSON access for hostile configs: absent or null gives nullopt / empty; a wrong type is a
// kFormat error "<file>: <path> must be <type>, got <json type> (<value>)".
Result<std::optional<std::string>> json_opt_string(const nlohmann::json& obj, const char* key,
                                                   std::string_view file, const std::string& path);
Result<std::optional<int64_t>> json_opt_int(const nlohmann::json& obj, const char* key,
                                            std::string_view file, const std::string& path);
Result<std::optional<bool>> json_opt_bool(const nlohmann::json& obj, const char* key,
                                          std::string_view file, const std::string& path);
Result<std::vector<std::string>> json_opt_strings(const nlohmann::json& obj, const char* key,
                                                  std::string_view file, const std::string& path);
Result<const nlohmann::json*> json_opt_object(const nlohmann::json& obj, const char* key,
                                              std::string_view file, const std::string& path);

// ModelOpt / TensorRT-LLM algorithm names: TensorRT-LLM's QuantAlgo spelling (any case), with
// ModelOpt's "fp8_pb_wo" for FP8_BLOCK_SCALES. Known ModelOpt algorithms qforge lacks
// (W4A16_NVFP4, NVFP4_AWQ, MXFP8, ...) are kUnsupported; anything else is kFormat.
Result<QuantAlgo> algo_from_text(std::string_view text, std::string_view file,
                                 const std::string& path);
std::string algo_to_text(QuantAlgo algo);  // "fp8_pb_wo" for FP8_BLOCK_SCALES, else the name
bool algo_is_int4(QuantAlgo algo);         // W4A16, W4A16_AWQ, W4A16_GPTQ, W4A8_AWQ
// Algorithms that share one on-disk scheme (W4A16 / _AWQ / _GPTQ; W8A16 / _GPTQ).
bool same_storage(QuantAlgo a, QuantAlgo b);
// An INT4 group size from a config: > 0 (kFormat) and a power of two in [16, 4096]
// (kUnsupported otherwise).
Status check_group_size(int64_t g, std::string_view file, const std::string& path);
// Checks a QuantCheckpointInfo before it is written (algorithms per role, group size, ...).
Status validate_info(const QuantCheckpointInfo& info);

// compressed-tensors pieces (also used for the config_groups of ModelOpt's config.json).
// {"weights", "input_activations", "output_activations", "format"} of one algorithm.
Result<nlohmann::json> ct_scheme_for_algo(QuantAlgo algo, int group_size, bool has_zero_point);
nlohmann::json ct_kv_cache_scheme(QuantAlgo kv_algo, bool per_head);
// Parses a kv_cache_scheme object into FP8 / INT8 and the per-head flag.
Status parse_ct_kv_cache_scheme(const nlohmann::json& kv, std::string_view file,
                                const std::string& path, QuantCheckpointInfo& info);
// config_groups of a quantization_config: one group targeting the Linear class for a uniform
// algorithm without layer_algos, else one group per algorithm targeting its module names.
Result<nlohmann::json> make_config_groups(const QuantCheckpointInfo& info);
Result<nlohmann::json> make_ct_quantization_config(const QuantCheckpointInfo& info);
Result<QuantCheckpointInfo> parse_ct_quantization_config(const nlohmann::json& qc,
                                                         std::string_view file,
                                                         const std::string& path);

}  // namespace qforge::qckpt
