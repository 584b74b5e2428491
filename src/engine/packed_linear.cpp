// Packed linear layers (include/qforge/engine/packed_linear.h): the kernel table, packing a
// QuantizedLinear into the CPU kernels' panel layout (backend/cpu/qmatmul.h), and the
// WeightMatrix that runs a packed blob in place. Activation handling matches
// model/quantized_linear.cpp: x * pre_quant_scale, then the scheme's fake quantization (or, for
// W8A8, real INT8 codes and integer dot products), then the weight kernel.
#include "qforge/engine/packed_linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/qmatmul.h"
#include "engine/packed_linear_kernels.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/scalar.h"
#include "qforge/model/quantized_linear.h"

namespace qforge {
namespace {

using cpu::kPanelRows;
using cpu::PanelFormat;
using cpu::PanelMatrix;

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

float read_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
void write_f32(uint8_t* p, float v) {
  std::memcpy(p, &v, 4);
}
void write_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// Fills a panel blob: header(p, b, lane, row, blk) writes lane `lane`'s part of block b's header
// (row = p * 16 + lane, -1 for padding rows); code(row, k) is the stored code of (row, k), in
// the format's code space (0 for padding).
template <class Header, class Code>
void fill_panels(const PanelMatrix& pm, uint8_t* out, Header&& header, Code&& code) {
  const int64_t np = cpu::panel_count(pm.rows);
  const int64_t pb = cpu::panel_bytes(pm);
  const bool four_bit = pm.format == PanelFormat::kW4A16 || pm.format == PanelFormat::kW4A16Zp ||
                        pm.format == PanelFormat::kNvfp4 || pm.format == PanelFormat::kMxfp4;
  const int64_t header_bytes = cpu::panel_block_bytes(pm.format, 0);
  for (int64_t p = 0; p < np; ++p) {
    uint8_t* blk = out + p * pb;
    for (int64_t kb = 0; kb < pm.kp; kb += pm.block_k) {
      const int64_t len = std::min(pm.block_k, pm.kp - kb);
      const int64_t b = kb / pm.block_k;
      uint8_t* codes = blk + header_bytes;
      for (int64_t lane = 0; lane < kPanelRows; ++lane) {
        const int64_t row = p * kPanelRows + lane;
        const bool valid = row < pm.rows;
        header(p, b, lane, valid ? row : -1, blk);
        if (!valid) continue;
        if (pm.format == PanelFormat::kW8A8) {
          for (int64_t k = 0; k < len; ++k) {
            codes[(k / 4) * 64 + 4 * lane + k % 4] = code(row, kb + k);
          }
        } else if (four_bit) {
          for (int64_t t = 0; t < len / 2; ++t) {
            codes[t * kPanelRows + lane] = static_cast<uint8_t>(
                (code(row, kb + 2 * t) & 0xF) | ((code(row, kb + 2 * t + 1) & 0xF) << 4));
          }
        } else {
          for (int64_t k = 0; k < len; ++k) codes[k * kPanelRows + lane] = code(row, kb + k);
        }
      }
      blk += cpu::panel_block_bytes(pm.format, len);
    }
  }
}

// Element e of a row of 4-bit blocks (block bytes `bb`, codes at `off` within the block).
uint8_t block_nibble(const uint8_t* row, int64_t k, int64_t g, int64_t bb, int64_t off) {
  const uint8_t byte = row[(k / g) * bb + off + (k % g) / 2];
  return (k % 2 == 0) ? (byte & 0xF) : (byte >> 4);
}

Status check_weight(const QuantizedMatrix& q) {
  if (q.rows < 1 || q.cols < 1 || q.padded_cols < q.cols || q.row_bytes < 1 ||
      q.data.size() != static_cast<size_t>(q.rows * q.row_bytes)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pack_linear: inconsistent weight [{}, {}] (padded_cols {}, row_bytes {}, "
                      "{} data bytes)",
                      q.rows, q.cols, q.padded_cols, q.row_bytes, q.data.size());
  }
  return ok_status();
}

}  // namespace

Result<PackedLinear> pack_linear(const QuantizedLinear& layer, const PackedLinearInfo& target) {
  const QuantizedMatrix& q = layer.weight;
  QF_TRY(check_weight(q));
  const PackedKernel* kernel = find_packed_kernel(target.kernel);
  if (kernel == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "pack_linear: unknown kernel '{}' ({})",
                      target.kernel, packed_kernel_names());
  }
  if (!packed_kernel_runs(*kernel, q.spec, layer.scheme.activation)) {
    return make_error(ErrorCode::kUnsupported,
                      "pack_linear: kernel '{}' cannot run {} weights with {} activations",
                      target.kernel, quant_spec_name(q.spec),
                      activation_quant_name(layer.scheme.activation));
  }
  if (!packed_kernel_has_variant(*kernel, target.variant)) {
    return make_error(ErrorCode::kUnsupported, "pack_linear: kernel '{}' has no variant {}",
                      target.kernel, target.variant);
  }
  if (!layer.pre_quant_scale.empty() &&
      static_cast<int64_t>(layer.pre_quant_scale.size()) != q.cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pack_linear: pre_quant_scale has {} values, the weight {} columns",
                      layer.pre_quant_scale.size(), q.cols);
  }
  const ActivationQuant act = layer.scheme.activation;
  if (activation_quant_is_static(act) &&
      !(std::isfinite(layer.input_scale) && layer.input_scale > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pack_linear: {} activations need a finite input_scale > 0, got {}",
                      activation_quant_name(act), layer.input_scale);
  }
  PackedLinear out;
  PackedLinearInfo& info = out.info;
  info.kernel = kernel->name;
  info.variant = target.variant;  // a tactic: the blob layout is the same for every variant
  info.layout_version = 1;
  info.rows = q.rows;
  info.cols = q.cols;
  info.weight = q.spec;
  info.activation = act;
  info.input_scale = activation_quant_is_static(act) ? layer.input_scale : 0.0f;
  info.tensor_scale = q.spec.format == QuantFormat::NVFP4 ? q.tensor_scale : 0.0f;
  info.has_pre_quant_scale = !layer.pre_quant_scale.empty();
  QF_ASSIGN_OR_RETURN(const uint64_t weight_bytes, packed_weight_bytes(info));
  const uint64_t total = weight_bytes + (info.has_pre_quant_scale ? 4 * q.cols : 0);
  out.blob.assign(total, 0);
  uint8_t* blob = out.blob.data();

  if (kernel->dense) {
    // Dense weights arrive as F32/F16/BF16 rows: stored as they are.
    std::memcpy(blob, q.data.data(), weight_bytes);
  } else {
    const PanelMatrix pm = panel_matrix_for(info, blob);
    const int64_t g = std::max(q.spec.group_size, 1);
    switch (pm.format) {
      case PanelFormat::kW8A16:
      case PanelFormat::kW8A8: {
        const bool per_tensor = q.spec.format == QuantFormat::INT8_PER_TENSOR;
        const bool w8a8 = pm.format == PanelFormat::kW8A8;
        fill_panels(
            pm, blob,
            [&](int64_t, int64_t, int64_t lane, int64_t row, uint8_t* blk) {
              if (row < 0) return;
              write_f32(blk + 4 * lane, q.scales[per_tensor ? 0 : row]);
              if (w8a8) {
                int32_t sum = 0;
                const auto* c = reinterpret_cast<const int8_t*>(q.row_data(row));
                for (int64_t k = 0; k < q.cols; ++k) sum += c[k];
                std::memcpy(blk + 64 + 4 * lane, &sum, 4);
              }
            },
            [&](int64_t row, int64_t k) -> uint8_t { return k < q.cols ? q.row_data(row)[k] : 0; });
        break;
      }
      case PanelFormat::kW4A16:
      case PanelFormat::kW4A16Zp: {
        const bool zp = pm.format == PanelFormat::kW4A16Zp;
        const int64_t bb = zp ? uint4_block_bytes(g) : int4_block_bytes(g);
        const int64_t off = zp ? 4 : 2;
        fill_panels(
            pm, blob,
            [&](int64_t, int64_t b, int64_t lane, int64_t row, uint8_t* blk) {
              if (row < 0) return;
              const uint8_t* block = q.row_data(row) + b * bb;
              uint16_t scale;
              std::memcpy(&scale, block, 2);
              write_u16(blk + 2 * lane, scale);
              if (zp) blk[32 + lane] = block[2];
            },
            [&](int64_t row, int64_t k) -> uint8_t {
              const uint8_t c = block_nibble(q.row_data(row), k, g, bb, off);
              return zp ? c : static_cast<uint8_t>(c ^ 8);  // INT4 two's complement -> c + 8
            });
        break;
      }
      case PanelFormat::kFp8: {
        const QuantFormat f = q.spec.format;
        const int64_t tiles_per_row = (q.cols + kFp8BlockTile - 1) / kFp8BlockTile;
        fill_panels(
            pm, blob,
            [&](int64_t, int64_t b, int64_t lane, int64_t row, uint8_t* blk) {
              if (row < 0) return;
              float s = q.scales[0];
              if (f == QuantFormat::FP8_PER_CHANNEL) s = q.scales[row];
              if (f == QuantFormat::FP8_BLOCK128) s = q.scales[(row / 128) * tiles_per_row + b];
              write_f32(blk + 4 * lane, s);
            },
            [&](int64_t row, int64_t k) -> uint8_t { return k < q.cols ? q.row_data(row)[k] : 0; });
        break;
      }
      case PanelFormat::kNvfp4:
      case PanelFormat::kMxfp4: {
        const bool nv = pm.format == PanelFormat::kNvfp4;
        const int64_t bb = nv ? sizeof(BlockNvfp4) : sizeof(BlockMxfp4);
        const int64_t gg = nv ? 16 : 32;
        fill_panels(
            pm, blob,
            [&](int64_t, int64_t b, int64_t lane, int64_t row, uint8_t* blk) {
              if (row < 0) return;
              const uint8_t* block = q.row_data(row) + b * bb;
              blk[lane] = nv ? block[8] : block[0];
            },
            [&](int64_t row, int64_t k) -> uint8_t {
              return block_nibble(q.row_data(row), k, gg, bb, nv ? 0 : 1);
            });
        break;
      }
      case PanelFormat::kMxfp8: {
        const int64_t bb = sizeof(BlockMxfp8);
        fill_panels(
            pm, blob,
            [&](int64_t, int64_t b, int64_t lane, int64_t row, uint8_t* blk) {
              if (row < 0) return;
              blk[lane] = q.row_data(row)[b * bb];
            },
            [&](int64_t row, int64_t k) -> uint8_t {
              return q.row_data(row)[(k / 32) * bb + 1 + k % 32];
            });
        break;
      }
    }
  }
  if (info.has_pre_quant_scale) {
    std::memcpy(blob + weight_bytes, layer.pre_quant_scale.data(), 4 * q.cols);
  }
  return out;
}

Result<PackedLinear> pack_dense_linear(const TensorView& w, DType dtype) {
  if (w.ndim() != 2 || w.dim(0) < 1 || w.dim(1) < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pack_dense_linear: expected a non-empty 2-D weight, got {} dimensions",
                      w.ndim());
  }
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16) {
    return make_error(ErrorCode::kUnsupported,
                      "pack_dense_linear: dense weights are stored as f32, f16 or bf16, not {}",
                      dtype_name(dtype));
  }
  const DType src = w.dtype();
  if (src != DType::F32 && src != DType::F16 && src != DType::BF16) {
    return make_error(ErrorCode::kUnsupported,
                      "pack_dense_linear: weight dtype {} is not f32, f16 or bf16",
                      dtype_name(src));
  }
  if (w.stride(1) != 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pack_dense_linear: the weight's column stride is {}, expected 1",
                      w.stride(1));
  }
  const int64_t rows = w.dim(0), cols = w.dim(1);
  PackedLinear out;
  PackedLinearInfo& info = out.info;
  info.kernel = dtype == DType::F32   ? "dense_f32"
                : dtype == DType::F16 ? "dense_f16"
                                      : "dense_bf16";
  info.rows = rows;
  info.cols = cols;
  info.weight.format = dtype == DType::F32   ? QuantFormat::F32
                       : dtype == DType::F16 ? QuantFormat::F16
                                             : QuantFormat::BF16;
  const int64_t es = dtype_size(dtype);
  const int64_t ss = dtype_size(src);
  out.blob.resize(static_cast<size_t>(rows * cols * es));
  for (int64_t r = 0; r < rows; ++r) {
    const auto* in = static_cast<const uint8_t*>(w.data()) + r * w.stride(0) * ss;
    uint8_t* dst = out.blob.data() + r * cols * es;
    if (src == dtype) {
      std::memcpy(dst, in, static_cast<size_t>(cols * es));
      continue;
    }
    for (int64_t k = 0; k < cols; ++k) {
      float v;
      uint16_t h;
      if (src == DType::F32) {
        std::memcpy(&v, in + 4 * k, 4);
      } else {
        std::memcpy(&h, in + 2 * k, 2);
        v = src == DType::F16 ? f16_to_float(h) : bf16_to_float(h);
      }
      if (dtype == DType::F32) {
        std::memcpy(dst + 4 * k, &v, 4);
      } else {
        h = dtype == DType::F16 ? float_to_f16(v) : float_to_bf16(v);
        std::memcpy(dst + 2 * k, &h, 2);
      }
    }
  }
  return out;
}

namespace {

class PackedWeightMatrix final : public WeightMatrix {
 public:
  PackedWeightMatrix(PackedLinearInfo info, const PackedKernel* kernel,
                     std::span<const uint8_t> blob, std::shared_ptr<const void> keep_alive,
                     uint64_t weight_bytes)
      : info_(std::move(info)),
        kernel_(kernel),
        blob_(blob),
        keep_alive_(std::move(keep_alive)),
        weight_bytes_(weight_bytes) {
    if (kernel_->dense) {
      dense_ =
          cpu::WeightView{blob_.data(), kernel_->dense_dtype, info_.rows, info_.cols, info_.cols};
    } else {
      panel_ = panel_matrix_for(info_, blob_.data());
    }
    if (info_.has_pre_quant_scale) {
      pqs_.resize(static_cast<size_t>(info_.cols));
      std::memcpy(pqs_.data(), blob_.data() + weight_bytes_, pqs_.size() * 4);
    }
    name_ = quant_spec_name(info_.weight);
  }

  int64_t rows() const override { return info_.rows; }
  int64_t cols() const override { return info_.cols; }
  std::string format_name() const override { return name_; }
  uint64_t storage_bytes() const override { return weight_bytes_; }
  // qmatmul, qmatmul_w8a8 and dense_matmul compute each row alone (backend/cpu/qmatmul.h), and
  // every activation scheme rounds a row with its own or a static scale.
  bool rows_independent_of_batch() const override { return true; }

  void matmul(const float* x, int64_t m, float* y) const override {
    if (m <= 0) return;
    const int64_t cols = info_.cols;
    if (kernel_->dense && pqs_.empty() && info_.activation == ActivationQuant::kNone) {
      cpu::dense_matmul(dense_, x, m, y);
      return;
    }
    const int64_t kp = kernel_->dense ? cols : panel_.kp;
    std::vector<float> xs(static_cast<size_t>(m * kp), 0.0f);
    for (int64_t i = 0; i < m; ++i) {
      float* row = xs.data() + i * kp;
      const float* in = x + i * cols;
      if (pqs_.empty()) {
        std::memcpy(row, in, static_cast<size_t>(cols) * sizeof(float));
      } else {
        for (int64_t k = 0; k < cols; ++k) row[k] = in[k] * pqs_[k];
      }
    }
    if (panel_.format == PanelFormat::kW8A8 && !kernel_->dense) {
      run_w8a8(xs.data(), m, kp, y);
      return;
    }
    if (info_.activation != ActivationQuant::kNone) {
      if (kp == cols) {
        fake_quantize_activations(info_.activation, info_.input_scale, xs.data(), m, cols);
      } else {
        // Rows are kp apart here (zero padded): round each row's cols values.
        parallel_for(0, m, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            fake_quantize_activations(info_.activation, info_.input_scale, xs.data() + i * kp, 1,
                                      cols);
          }
        });
      }
    }
    if (kernel_->dense) {
      cpu::dense_matmul(dense_, xs.data(), m, y);
    } else {
      cpu::qmatmul(panel_, xs.data(), m, y);
    }
  }

  void row_to_f32(int64_t row, float* out) const override {
    if (!kernel_->dense) return cpu::panel_row_to_f32(panel_, row, out);
    const uint8_t* p = blob_.data() + row * info_.cols * dtype_size(dense_.dtype);
    for (int64_t k = 0; k < info_.cols; ++k) {
      if (dense_.dtype == DType::F32) {
        out[k] = read_f32(p + 4 * k);
      } else {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        out[k] = dense_.dtype == DType::F16 ? f16_to_float(h) : bf16_to_float(h);
      }
    }
  }

 private:
  // INT8 codes per token (dynamic: row amax / 127) or per tensor (the static input_scale), the
  // codes fake_quantize_activations would round to; then integer dot products.
  void run_w8a8(const float* xs, int64_t m, int64_t kp, float* y) const {
    const int64_t cols = info_.cols;
    std::vector<int8_t> xq(static_cast<size_t>(m * kp), 0);
    std::vector<float> sx(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      const float* row = xs + i * kp;
      float s = info_.input_scale;
      if (info_.activation == ActivationQuant::kInt8PerToken) s = row_amax(row, cols) / 127.0f;
      sx[i] = s > 0.0f ? s : 0.0f;
      if (s > 0.0f) quantize_row_int8(row, cols, s, xq.data() + i * kp);
    }
    cpu::qmatmul_w8a8(panel_, xq.data(), sx.data(), m, y);
  }

  PackedLinearInfo info_;
  const PackedKernel* kernel_;
  std::span<const uint8_t> blob_;
  std::shared_ptr<const void> keep_alive_;
  uint64_t weight_bytes_;
  cpu::WeightView dense_{};
  PanelMatrix panel_{};
  std::vector<float> pqs_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<WeightMatrix>> open_packed_linear(const PackedLinearInfo& info,
                                                         std::span<const uint8_t> blob,
                                                         std::shared_ptr<const void> keep_alive) {
  QF_TRY(validate_packed_linear_info(info));
  const PackedKernel* kernel = find_packed_kernel(info.kernel);
  QF_ASSIGN_OR_RETURN(const uint64_t weight_bytes, packed_weight_bytes(info));
  const uint64_t expected = weight_bytes + (info.has_pre_quant_scale ? 4 * info.cols : 0);
  if (blob.size() != expected) {
    return make_error(ErrorCode::kInvalidArgument,
                      "packed linear ({} [{}, {}]): blob has {} bytes, the layout needs {}",
                      info.kernel, info.rows, info.cols, blob.size(), expected);
  }
  if (blob.data() == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "packed linear ({}): null blob", info.kernel);
  }
  return std::unique_ptr<WeightMatrix>(std::make_unique<PackedWeightMatrix>(
      info, kernel, blob, std::move(keep_alive), weight_bytes));
}

}  // namespace qforge
