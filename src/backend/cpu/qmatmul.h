// Matrix products on packed quantized weights, read in place (no F32 copy of the weight):
// y = x · dequant(W)ᵀ for INT8 / INT4 (+ zero point) / FP8 E4M3FN / NVFP4 / MXFP4 / MXFP8 weights
// with F32 activations, and W8A8 with INT8 activations and exact integer dot products.
//
// Panel layout. The weight is cut into panels of kPanelRows = 16 consecutive output rows (the
// last panel padded with zero rows). Inside a panel the data is k-major: for each input column
// k the 16 rows' codes sit next to each other, so one load yields a whole vector of rows, every
// x value is broadcast once per panel, and each output accumulates its products strictly in
// order k = 0, 1, ..., kp - 1 with fused multiply-adds. The decode GEMV (fused dequantization)
// and the prefill GEMM (a panel chunk dequantized into an L1 buffer, then a register-blocked F32
// micro-kernel) therefore compute every output with the same operations in the same order:
// row i of y is bit-identical whatever m, the other rows of x and the thread count.
//
// A panel is a sequence of scale blocks of block_k columns (the last one shorter); per block:
//   kW8A16   [16 x F32 row scales][len x 16 int8 codes]              (one block, block_k = kp)
//   kFp8     [16 x F32 scales][len x 16 E4M3FN codes]                (block_k = kp or 128)
//   kMxfp8   [16 x E8M0 scales][len x 16 E4M3FN codes]               (block_k = 32)
//   kW4A16   [16 x F16/BF16 scales][len/2 x 16 bytes]                (block_k = group size)
//   kW4A16Zp [16 x F16/BF16 scales][16 x u8 zero points][len/2 x 16 bytes]
//   kNvfp4   [16 x E4M3FN block scales][len/2 x 16 bytes]            (block_k = 16)
//   kMxfp4   [16 x E8M0 block scales][len/2 x 16 bytes]              (block_k = 32)
// where a 4-bit "pair" of 16 bytes holds columns (k, k+1): byte r = code(r, k) | code(r, k+1)
// << 4; INT4 codes are stored offset-binary (c + 8, 0..15), UINT4 and E2M1 codes as they are.
// Codes of byte formats: row r of column k at byte k * 16 + r of the block's code area.
//   kW8A8    [16 x F32 row scales][16 x int32 row sums of the codes][kp/4 x 64 bytes]
// where quad q holds byte 4r + j = code(r, 4q + j) (the operand layout of vpdpbusd / pmaddubsw).
// Padding columns (cols..kp) hold code zero (weight value 0) and the x scratch must hold zeros
// there too.
#pragma once

#include <array>
#include <cstdint>

#include "backend/cpu/matmul.h"
#include "qforge/formats/quant_format.h"

namespace qforge::cpu {

inline constexpr int64_t kPanelRows = 16;

enum class PanelFormat : uint8_t { kW8A16, kW4A16, kW4A16Zp, kFp8, kNvfp4, kMxfp4, kMxfp8, kW8A8 };

// How one qmatmul / qmatmul_w8a8 call is split into work, never what it computes: every tactic
// gives the same bits (each output is the same ordered FMA chain on every path). Which one is
// fastest depends on the shape and the machine (cache sizes, core count), so the engine build
// times the kPanelTactics per layer shape ("kernel selection") and stores the winner's index
// as the packed layer's variant.
struct PanelTactic {
  // m up to this many rows of x runs the fused GEMV, in passes of up to 4 rows over each
  // parallel chunk of panels (re-read from cache); above it, panel chunks are dequantized once
  // into an L1 buffer for the register-blocked GEMM. 4..16. (W8A8 ignores it.)
  int64_t gemv_max_rows = 4;
  // Packed weight bytes per parallel chunk of the GEMV (a fork/join is only worth about a
  // millisecond of work on a shared machine; smaller chunks balance 2 cores better).
  int64_t gemv_grain_bytes = 512 << 10;
};
inline constexpr std::array<PanelTactic, 4> kPanelTactics = {{
    {4, 512 << 10},   // 0: the default
    {8, 512 << 10},   // 1: GEMV up to batch 8
    {16, 512 << 10},  // 2: GEMV up to batch 16
    {4, 128 << 10},   // 3: finer GEMV chunks
}};

struct PanelMatrix {
  PanelFormat format = PanelFormat::kW8A16;
  const uint8_t* data = nullptr;
  int64_t rows = 0;     // N, output features
  int64_t cols = 0;     // K, input features
  int64_t kp = 0;       // padded K: the column count of x and of every panel
  int64_t block_k = 0;  // columns per scale block (see above); even, a multiple of 4 for kW8A8
  ScaleType scale_type = ScaleType::F16;  // kW4A16 / kW4A16Zp scale storage
  float tensor_scale = 0.0f;              // kNvfp4: weight_scale_2
  PanelTactic tactic;                     // execution split only (see PanelTactic)
};

inline int64_t panel_count(int64_t rows) {
  return (rows + kPanelRows - 1) / kPanelRows;
}
// Bytes of one panel's block of `len` columns, of one panel, and of the whole matrix.
int64_t panel_block_bytes(PanelFormat format, int64_t len);
int64_t panel_bytes(const PanelMatrix& w);
inline int64_t panel_matrix_bytes(const PanelMatrix& w) {
  return panel_count(w.rows) * panel_bytes(w);
}
// Checks kp/block_k/format consistency (programmer errors: the packer builds these).
bool panel_matrix_valid(const PanelMatrix& w);

// ---------------------------------------------------------------------------------------------
// Float-activation formats (everything but kW8A8).
// ---------------------------------------------------------------------------------------------

// y: [m, w.rows] = x: [m, w.kp] · dequant(W)ᵀ. m <= w.tactic.gemv_max_rows: GEMV streaming each
// panel chunk once per 4 rows of x; larger m: panel chunks dequantized to F32 and a
// register-blocked GEMM. Multi-threaded over panels (parallel_for); same results for every m,
// tactic and thread count.
void qmatmul(const PanelMatrix& w, const float* x, int64_t m, float* y);
// The scalar oracle: the same dequantized values, one fmaf per column in column order
// (bit-identical to the kernels on targets with FMA; targets without it round twice).
void qmatmul_ref(const PanelMatrix& w, const float* x, int64_t m, float* y);
// One element of dequant(W) (scalar; what the oracle multiplies).
float panel_weight_ref(const PanelMatrix& w, int64_t row, int64_t col);
// out: [cols] = row `row` of dequant(W).
void panel_row_to_f32(const PanelMatrix& w, int64_t row, float* out);

// The per-target pieces, exposed for tests: the fused GEMV over panels [p_begin, p_end) for
// m <= 4 x rows, and the dequantization of columns [k0, k1) of panel p to dst: [k1 - k0][16].
void qgemv_panels(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                  float* y, int64_t ldy);
void qdequant_panel(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst);

// ---------------------------------------------------------------------------------------------
// W8A8 (SmoothQuant): INT8 weights and INT8 activations, exact int32 dot products.
// ---------------------------------------------------------------------------------------------

// y[i, r] = float(sum_k xq[i, k] * wq[r, k]) * x_scale[i] * w_scale[r]. xq: [m, w.kp] int8
// codes in [-127, 127] (zero padded). Integer sums are exact, so every path agrees bit for bit.
void qmatmul_w8a8(const PanelMatrix& w, const int8_t* xq, const float* x_scale, int64_t m,
                  float* y);
void qmatmul_w8a8_ref(const PanelMatrix& w, const int8_t* xq, const float* x_scale, int64_t m,
                      float* y);
// Forces the non-VNNI AVX-512 path (tests); false restores automatic selection.
void qmatmul_w8a8_disable_vnni(bool disable);

// ---------------------------------------------------------------------------------------------
// Dense row-major F32 / F16 / BF16 weights (matmul.h's WeightView), deterministic in m.
// ---------------------------------------------------------------------------------------------

// y: [m, w.rows] = x: [m, w.cols] · wᵀ. Every output is one vector accumulator over the whole
// vectors of columns, a fixed lane reduction, then the column tail with fmaf - the same for
// the decode GEMV (m <= 4) and the tiled prefill, and for every thread count (matmul.h's m = 1
// path splits each sum four ways, so its rows change with m).
void dense_matmul(const WeightView& w, const float* x, int64_t m, float* y);

// Software prefetch distance of the decode GEMV in bytes ahead of each panel stream (0 = off).
// Default kDefaultPrefetchBytes; the benchmark sweeps it.
inline constexpr int64_t kDefaultPrefetchBytes = 1024;
void qmatmul_set_prefetch_bytes(int64_t bytes);
int64_t qmatmul_prefetch_bytes();

}  // namespace qforge::cpu
