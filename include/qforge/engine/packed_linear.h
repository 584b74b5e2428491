// Packed linear layers: the CPU kernels' own memory layout of one linear weight (codes, scales,
// activation scheme) as an engine file stores it, and the WeightMatrix that runs it in place.
// The engine build packs every linear once (pack_linear); loading an engine opens each packed
// blob where it lies in the mmapped file (open_packed_linear) — no F32 copy of any weight.
//
// Numerics contract (what the tests hold every kernel to):
//  * y = Qa(x * pre_quant_scale) · dequant(Wq)ᵀ, the fake-quant reference of
//    model/quantized_linear.h, within the format's named budget (integer formats: the integer
//    dot products are exact, so only the final scale multiply differs).
//  * Row i of y depends only on row i of x: bit-identical whatever m, whatever the other rows,
//    and whatever the thread count (continuous batching relies on it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/formats/quant_format.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/model/weight_matrix.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

// Everything needed to open a packed blob again. Serialised into the engine's metadata as JSON
// (packed_linear_info_to_json / _from_json, engine/packed_linear_json.cpp).
struct PackedLinearInfo {
  // Kernel family, the key of the CPU kernel table: "dense_f32", "dense_f16", "dense_bf16",
  // "w8a16", "w4a16", "w4a16_zp", "fp8w", "nvfp4w", "mxfp4w", "w8a8_int8", ...
  std::string kernel;
  // Layout variant inside the family chosen by kernel selection (e.g. rows interleaved per
  // tile); 0 = the family's default. Part of the blob's layout: a blob is opened with the
  // variant it was packed with.
  int variant = 0;
  int layout_version = 1;
  int64_t rows = 0;  // out_features
  int64_t cols = 0;  // in_features
  QuantSpec weight;  // the stored weight format (F32/F16/BF16 for dense kernels)
  ActivationQuant activation = ActivationQuant::kNone;
  float input_scale = 0.0f;          // static activation scale (0 when dynamic / none)
  float tensor_scale = 0.0f;         // NVFP4 weight_scale_2 (0 otherwise)
  bool has_pre_quant_scale = false;  // the blob ends with cols F32 multipliers
};

struct PackedLinear {
  PackedLinearInfo info;
  std::vector<uint8_t> blob;  // 64-byte aligned when stored; layout owned by info.kernel
};

// The kernel families (and variants) that can run `scheme` for a [rows, cols] weight on this
// CPU, best guess first. Engine build times each candidate and keeps the fastest.
std::vector<PackedLinearInfo> packed_linear_candidates(const LinearQuantScheme& scheme,
                                                       int64_t rows, int64_t cols);

// Packs a quantized layer for `target` (one of packed_linear_candidates' entries; its kernel
// and variant decide the layout). Errors: a kernel that cannot run this weight (naming both).
Result<PackedLinear> pack_linear(const QuantizedLinear& layer, const PackedLinearInfo& target);
// Packs an unquantized F32/F16/BF16 weight w: (rows, cols) into dense_f32/_f16/_bf16 (`dtype`),
// converting as needed (round to nearest even).
Result<PackedLinear> pack_dense_linear(const TensorView& w, DType dtype);

// Opens a blob in place: `blob` must stay valid while the matrix lives (`keep_alive` owns it,
// e.g. the engine's MmapFile) and be 64-byte aligned. Errors: unknown kernel or layout
// version, a blob whose size does not match info (naming the expected and actual bytes).
Result<std::unique_ptr<WeightMatrix>> open_packed_linear(const PackedLinearInfo& info,
                                                         std::span<const uint8_t> blob,
                                                         std::shared_ptr<const void> keep_alive);

}  // namespace qforge
