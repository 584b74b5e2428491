// The CPU kernel table of packed_linear_kernels.h and packed_linear_candidates.
#include "engine/packed_linear_kernels.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace qforge {
namespace {

using cpu::PanelFormat;

constexpr std::array kKernels = {
    PackedKernel{"dense_f32", true, DType::F32, PanelFormat::kW8A16},
    PackedKernel{"dense_f16", true, DType::F16, PanelFormat::kW8A16},
    PackedKernel{"dense_bf16", true, DType::BF16, PanelFormat::kW8A16},
    PackedKernel{"w8a8_int8", false, DType::F32, PanelFormat::kW8A8},
    PackedKernel{"w8a16", false, DType::F32, PanelFormat::kW8A16},
    PackedKernel{"w4a16", false, DType::F32, PanelFormat::kW4A16},
    PackedKernel{"w4a16_zp", false, DType::F32, PanelFormat::kW4A16Zp},
    PackedKernel{"fp8w", false, DType::F32, PanelFormat::kFp8},
    PackedKernel{"nvfp4w", false, DType::F32, PanelFormat::kNvfp4},
    PackedKernel{"mxfp4w", false, DType::F32, PanelFormat::kMxfp4},
    PackedKernel{"mxfp8w", false, DType::F32, PanelFormat::kMxfp8},
};

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

bool int8_activation(ActivationQuant a) {
  return a == ActivationQuant::kInt8PerTensor || a == ActivationQuant::kInt8PerToken;
}

}  // namespace

std::vector<int> packed_kernel_variants(const PackedKernel& k) {
  if (k.dense) return {0};
  // W8A8 has no GEMV/GEMM crossover to move: only the chunking tactics differ.
  if (k.panel == PanelFormat::kW8A8) return {0, 3};
  std::vector<int> all;
  for (size_t i = 0; i < cpu::kPanelTactics.size(); ++i) all.push_back(static_cast<int>(i));
  return all;
}

bool packed_kernel_has_variant(const PackedKernel& k, int variant) {
  const std::vector<int> v = packed_kernel_variants(k);
  return std::find(v.begin(), v.end(), variant) != v.end();
}

const PackedKernel* find_packed_kernel(std::string_view name) {
  for (const PackedKernel& k : kKernels) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

std::string packed_kernel_names() {
  std::string s = "expected one of: ";
  for (size_t i = 0; i < kKernels.size(); ++i) {
    if (i > 0) s += ", ";
    s += kKernels[i].name;
  }
  return s;
}

bool packed_kernel_runs(const PackedKernel& k, const QuantSpec& w, ActivationQuant a) {
  const QuantFormat f = w.format;
  if (k.dense) {
    return (k.dense_dtype == DType::F32 && f == QuantFormat::F32) ||
           (k.dense_dtype == DType::F16 && f == QuantFormat::F16) ||
           (k.dense_dtype == DType::BF16 && f == QuantFormat::BF16);
  }
  const bool e4m3 = w.fp8 == ScalarFormat::E4M3FN;
  switch (k.panel) {
    case PanelFormat::kW8A8:
      return (f == QuantFormat::INT8_PER_CHANNEL || f == QuantFormat::INT8_PER_TENSOR) &&
             int8_activation(a);
    case PanelFormat::kW8A16:
      return f == QuantFormat::INT8_PER_CHANNEL || f == QuantFormat::INT8_PER_TENSOR;
    case PanelFormat::kW4A16:
      return f == QuantFormat::INT4_GROUP && w.group_size >= 2 && w.group_size % 2 == 0;
    case PanelFormat::kW4A16Zp:
      return f == QuantFormat::UINT4_GROUP && w.group_size >= 2 && w.group_size % 2 == 0;
    case PanelFormat::kFp8:
      return (f == QuantFormat::FP8_PER_TENSOR || f == QuantFormat::FP8_PER_CHANNEL ||
              f == QuantFormat::FP8_BLOCK128) &&
             e4m3;
    case PanelFormat::kNvfp4:
      return f == QuantFormat::NVFP4;
    case PanelFormat::kMxfp4:
      return f == QuantFormat::MXFP4;
    case PanelFormat::kMxfp8:
      return f == QuantFormat::MXFP8 && e4m3;
  }
  return false;
}

Status validate_packed_linear_info(const PackedLinearInfo& info) {
  const PackedKernel* k = find_packed_kernel(info.kernel);
  if (k == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear: unknown kernel '{}' ({})",
                      info.kernel, packed_kernel_names());
  }
  if (info.layout_version != 1) {
    return make_error(ErrorCode::kUnsupported,
                      "packed linear ({}): layout_version {} is not supported (expected 1; "
                      "rebuild the engine)",
                      info.kernel, info.layout_version);
  }
  if (!packed_kernel_has_variant(*k, info.variant)) {
    return make_error(ErrorCode::kUnsupported,
                      "packed linear ({}): unknown variant {} (this qforge knows {}; rebuild the "
                      "engine)",
                      info.kernel, info.variant, packed_kernel_variants(*k).size());
  }
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  if (info.rows < 1 || info.rows >= kMaxDim || info.cols < 1 || info.cols >= kMaxDim ||
      info.rows * info.cols > (int64_t{1} << 40)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear ({}): shape [{}, {}] out of range (each dimension in [1, "
                      "2^31), at most 2^40 elements)",
                      info.kernel, info.rows, info.cols);
  }
  QF_TRY(validate_quant_spec(info.weight).context(fmt::format("packed linear ({})", info.kernel)));
  if (static_cast<int>(info.activation) > static_cast<int>(ActivationQuant::kNvfp4)) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear ({}): bad activation scheme {}",
                      info.kernel, static_cast<int>(info.activation));
  }
  if (!packed_kernel_runs(*k, info.weight, info.activation)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear: kernel '{}' cannot run {} weights with {} activations",
                      info.kernel, quant_spec_name(info.weight),
                      activation_quant_name(info.activation));
  }
  if (activation_quant_is_static(info.activation) &&
      !(std::isfinite(info.input_scale) && info.input_scale > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear ({}): {} activations need a finite input_scale > 0, got {}",
                      info.kernel, activation_quant_name(info.activation), info.input_scale);
  }
  if (!(std::isfinite(info.tensor_scale) && info.tensor_scale >= 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear ({}): tensor_scale {} must be finite and >= 0", info.kernel,
                      info.tensor_scale);
  }
  return ok_status();
}

cpu::PanelMatrix panel_matrix_for(const PackedLinearInfo& info, const uint8_t* data) {
  const PackedKernel* k = find_packed_kernel(info.kernel);
  cpu::PanelMatrix pm;
  pm.format = k->panel;
  pm.data = data;
  pm.rows = info.rows;
  pm.cols = info.cols;
  pm.scale_type = info.weight.scale_type;
  pm.tensor_scale = info.tensor_scale;
  pm.tactic = cpu::kPanelTactics[static_cast<size_t>(info.variant)];
  switch (k->panel) {
    case PanelFormat::kW8A16:
      pm.kp = round_up(info.cols, 2);
      pm.block_k = pm.kp;
      break;
    case PanelFormat::kW8A8:
      pm.kp = round_up(info.cols, 4);
      pm.block_k = pm.kp;
      break;
    case PanelFormat::kW4A16:
    case PanelFormat::kW4A16Zp:
      pm.block_k = info.weight.group_size;
      pm.kp = round_up(info.cols, pm.block_k);
      break;
    case PanelFormat::kFp8:
      pm.kp = round_up(info.cols, 2);
      pm.block_k = info.weight.format == QuantFormat::FP8_BLOCK128 ? kFp8BlockTile : pm.kp;
      break;
    case PanelFormat::kNvfp4:
      pm.kp = round_up(info.cols, 16);
      pm.block_k = 16;
      break;
    case PanelFormat::kMxfp4:
    case PanelFormat::kMxfp8:
      pm.kp = round_up(info.cols, 32);
      pm.block_k = 32;
      break;
  }
  return pm;
}

Result<uint64_t> packed_weight_bytes(const PackedLinearInfo& info) {
  QF_TRY(validate_packed_linear_info(info));
  const PackedKernel* k = find_packed_kernel(info.kernel);
  if (k->dense) {
    return static_cast<uint64_t>(info.rows * info.cols * dtype_size(k->dense_dtype));
  }
  return static_cast<uint64_t>(cpu::panel_matrix_bytes(panel_matrix_for(info, nullptr)));
}

std::vector<PackedLinearInfo> packed_linear_candidates(const LinearQuantScheme& scheme,
                                                       int64_t rows, int64_t cols) {
  std::vector<PackedLinearInfo> out;
  for (const PackedKernel& k : kKernels) {
    if (!packed_kernel_runs(k, scheme.weight, scheme.activation)) continue;
    for (int variant : packed_kernel_variants(k)) {
      PackedLinearInfo info;
      info.kernel = k.name;
      info.variant = variant;
      info.rows = rows;
      info.cols = cols;
      info.weight = scheme.weight;
      info.activation = scheme.activation;
      out.push_back(info);
    }
  }
  return out;
}

}  // namespace qforge
