// Panel layout sizes and the scalar oracles of qmatmul.h: one element of dequant(W) at a time,
// accumulated with one fmaf per column in column order (the kernels' order).
#include <bit>
#include <cmath>
#include <cstring>

#include "backend/cpu/qmatmul.h"
#include "qforge/core/error.h"
#include "qforge/formats/scalar.h"

namespace qforge::cpu {
namespace {

// Bytes of a block's header (scales, zero points, row sums) before its codes.
int64_t header_bytes(PanelFormat f) {
  switch (f) {
    case PanelFormat::kW8A16:
    case PanelFormat::kFp8:
      return 16 * 4;
    case PanelFormat::kW4A16:
      return 16 * 2;
    case PanelFormat::kW4A16Zp:
      return 16 * 3;
    case PanelFormat::kNvfp4:
    case PanelFormat::kMxfp4:
    case PanelFormat::kMxfp8:
      return 16;
    case PanelFormat::kW8A8:
      return 16 * 8;
  }
  return 0;
}

bool four_bit(PanelFormat f) {
  return f == PanelFormat::kW4A16 || f == PanelFormat::kW4A16Zp || f == PanelFormat::kNvfp4 ||
         f == PanelFormat::kMxfp4;
}

float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

int64_t panel_block_bytes(PanelFormat f, int64_t len) {
  return header_bytes(f) + (four_bit(f) ? len / 2 : len) * kPanelRows;
}

int64_t panel_bytes(const PanelMatrix& w) {
  const int64_t full = w.kp / w.block_k;
  const int64_t rest = w.kp - full * w.block_k;
  return full * panel_block_bytes(w.format, w.block_k) +
         (rest > 0 ? panel_block_bytes(w.format, rest) : 0);
}

bool panel_matrix_valid(const PanelMatrix& w) {
  if (w.rows < 1 || w.cols < 1 || w.kp < w.cols || w.block_k < 2 || w.block_k % 2 != 0 ||
      w.kp % 2 != 0) {
    return false;
  }
  switch (w.format) {
    case PanelFormat::kW8A16:
      return w.block_k == w.kp;
    case PanelFormat::kW8A8:
      return w.block_k == w.kp && w.kp % 4 == 0;
    case PanelFormat::kFp8:
      return w.block_k == w.kp || w.block_k == 128;
    case PanelFormat::kW4A16:
    case PanelFormat::kW4A16Zp:
      return w.kp % w.block_k == 0;
    case PanelFormat::kNvfp4:
      return w.block_k == 16 && w.kp % 16 == 0;
    case PanelFormat::kMxfp4:
    case PanelFormat::kMxfp8:
      return w.block_k == 32 && w.kp % 32 == 0;
  }
  return false;
}

float panel_weight_ref(const PanelMatrix& w, int64_t row, int64_t col) {
  const int64_t p = row / kPanelRows;
  const int64_t r = row % kPanelRows;
  const uint8_t* panel = w.data + p * panel_bytes(w);
  const int64_t b = col / w.block_k;
  const int64_t t = col - b * w.block_k;  // column inside the block
  const uint8_t* blk = panel + b * panel_block_bytes(w.format, w.block_k);
  const uint8_t* codes = blk + header_bytes(w.format);
  const auto nibble = [&]() -> uint8_t {
    const uint8_t byte = codes[(t / 2) * kPanelRows + r];
    return (t % 2 == 0) ? (byte & 0xF) : (byte >> 4);
  };
  const auto scale16 = [&]() -> float {
    uint16_t bits;
    std::memcpy(&bits, blk + 2 * r, 2);
    return w.scale_type == ScaleType::F16 ? f16_to_float(bits) : bf16_to_float(bits);
  };
  switch (w.format) {
    case PanelFormat::kW8A16: {
      const auto q = static_cast<int8_t>(codes[t * kPanelRows + r]);
      return static_cast<float>(q) * load_f32(blk + 4 * r);
    }
    case PanelFormat::kFp8:
      return e4m3fn_to_float(codes[t * kPanelRows + r]) * load_f32(blk + 4 * r);
    case PanelFormat::kMxfp8:
      return e4m3fn_to_float(codes[t * kPanelRows + r]) * e8m0_to_float(blk[r]);
    case PanelFormat::kW4A16:
      return static_cast<float>(static_cast<int>(nibble()) - 8) * scale16();
    case PanelFormat::kW4A16Zp:
      return static_cast<float>(static_cast<int>(nibble()) - blk[32 + r]) * scale16();
    case PanelFormat::kNvfp4:
      return e2m1_to_float(nibble()) * (e4m3fn_to_float(blk[r]) * w.tensor_scale);
    case PanelFormat::kMxfp4:
      return e2m1_to_float(nibble()) * e8m0_to_float(blk[r]);
    case PanelFormat::kW8A8: {
      const auto q = static_cast<int8_t>(codes[(t / 4) * 64 + 4 * r + t % 4]);
      return static_cast<float>(q) * load_f32(blk + 4 * r);
    }
  }
  return 0.0f;
}

void panel_row_to_f32(const PanelMatrix& w, int64_t row, float* out) {
  for (int64_t k = 0; k < w.cols; ++k) out[k] = panel_weight_ref(w, row, k);
}

void qmatmul_ref(const PanelMatrix& w, const float* x, int64_t m, float* y) {
  QF_CHECK(w.format != PanelFormat::kW8A8);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < w.rows; ++r) {
      float acc = 0.0f;
      for (int64_t k = 0; k < w.kp; ++k) {
        acc = std::fma(panel_weight_ref(w, r, k), x[i * w.kp + k], acc);
      }
      y[i * w.rows + r] = acc;
    }
  }
}

void qmatmul_w8a8_ref(const PanelMatrix& w, const int8_t* xq, const float* x_scale, int64_t m,
                      float* y) {
  QF_CHECK(w.format == PanelFormat::kW8A8);
  const int64_t pb = panel_bytes(w);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < w.rows; ++r) {
      const uint8_t* panel = w.data + (r / kPanelRows) * pb;
      const int64_t lane = r % kPanelRows;
      int32_t acc = 0;
      for (int64_t k = 0; k < w.kp; ++k) {
        const auto q = static_cast<int8_t>(panel[128 + (k / 4) * 64 + 4 * lane + k % 4]);
        acc += static_cast<int32_t>(q) * xq[i * w.kp + k];
      }
      y[i * w.rows + r] = static_cast<float>(acc) * x_scale[i] * load_f32(panel + 4 * lane);
    }
  }
}

}  // namespace qforge::cpu
