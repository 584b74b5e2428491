// The CPU kernel table behind packed_linear.h: which stored formats and activation schemes each
// kernel family runs, and the panel geometry (backend/cpu/qmatmul.h) a PackedLinearInfo implies.
// Internal to engine/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/qmatmul.h"
#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/engine/packed_linear.h"

namespace qforge {

struct PackedKernel {
  const char* name;  // PackedLinearInfo::kernel
  bool dense;        // row-major F32/F16/BF16 rows (dense_matmul)
  DType dense_dtype;
  cpu::PanelFormat panel;  // when !dense
};

// The variants of a kernel: indices into cpu::kPanelTactics (execution tactics over one and the
// same blob layout), {0} for the dense kernels.
std::vector<int> packed_kernel_variants(const PackedKernel& kernel);
bool packed_kernel_has_variant(const PackedKernel& kernel, int variant);
// nullptr when `name` is not a kernel.
const PackedKernel* find_packed_kernel(std::string_view name);
// "dense_f32, dense_f16, ..." for error messages.
std::string packed_kernel_names();
// Whether `kernel` runs weights stored as `weight` with `activation` input quantization.
bool packed_kernel_runs(const PackedKernel& kernel, const QuantSpec& weight,
                        ActivationQuant activation);
// Field ranges and consistency: kernel known, layout version 1, a known variant, dims in
// [1, 2^31), rows * cols <= 2^40, the weight spec valid and runnable by the kernel, a finite
// positive input_scale for static activations, a finite non-negative NVFP4 tensor scale.
Status validate_packed_linear_info(const PackedLinearInfo& info);
// Bytes of the packed weight (without the trailing pre_quant_scale); validates info first.
Result<uint64_t> packed_weight_bytes(const PackedLinearInfo& info);
// The panel matrix of a validated, non-dense info over `data`.
cpu::PanelMatrix panel_matrix_for(const PackedLinearInfo& info, const uint8_t* data);

}  // namespace qforge
