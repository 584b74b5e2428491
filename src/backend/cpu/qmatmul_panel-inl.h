// Per-target panel GEMV / GEMM templates of qmatmul.h, shared by the weight families. A family
// supplies a decoder (Dec) that turns one column pair of a panel's lane chunk into two F32
// vectors of exactly dequantized weights; the templates do the rest:
//   GemvPanelsT   decode: each panel streamed once, decoded in registers, kM <= 4 x rows
//   GemmPanelsT   prefill: 256-column chunks of two panels decoded into an L1 buffer, then a
//                 kP x kM register-blocked F32 micro-kernel over every x row
// Both accumulate each output strictly in column order with one MulAdd per column, so they
// agree bit for bit. Included per target by the family .cpp files; no include guard on purpose.
//
// Decoder interface (all HWY_INLINE):
//   static constexpr size_t kHeader      bytes of a block's header (scales) before its codes
//   static constexpr size_t kPairBytes   bytes of one column pair of a panel (16 or 32)
//   struct State                         per lane chunk, loaded once per block
//   State Prepare(const uint8_t* blk, size_t c) const
//   void Pair(const State&, const uint8_t* codes, size_t t, size_t c, VF& w0, VF& w1) const
// where c is the lane chunk (rows c*N .. c*N+N-1 of the panel) and t the column pair of the
// block (columns 2t, 2t+1).

#if defined(QFORGE_BACKEND_CPU_QMATMUL_PANEL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_QMATMUL_PANEL_INL_H_
#undef QFORGE_BACKEND_CPU_QMATMUL_PANEL_INL_H_
#else
#define QFORGE_BACKEND_CPU_QMATMUL_PANEL_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/qmatmul.h"
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using PDF = hn::ScalableTag<float>;
using PVF = hn::Vec<PDF>;
using PDI = hn::RebindToSigned<PDF>;
using PDU = hn::RebindToUnsigned<PDF>;
using PVI = hn::Vec<PDI>;
using PVU = hn::Vec<PDU>;

constexpr size_t kPN = hn::MaxLanes(PDF());  // lanes of one F32 vector
static_assert(kPN <= 16 && 16 % kPN == 0, "a 16-row panel is a whole number of vectors");
constexpr size_t kPV = 16 / kPN;  // vectors per panel

// Panels decoded together by the GEMV. Each panel's accumulator is one dependent FMA chain per
// vector (columns in order), so the panels in flight set how many chains hide the FMA latency:
// four (AVX-512, one vector per panel) or two panels of two vectors (AVX2) for one or two x
// rows, fewer when the x rows' accumulators and broadcasts fill the registers.
template <int kM>
constexpr int GemvPanelsPerStep() {
  if constexpr (kPV == 1) return kM <= 2 ? 4 : 2;
  return kPV == 2 && kM <= 2 ? 2 : 1;
}

// N unsigned bytes widened to u32 lanes.
HWY_INLINE PVU LoadU8(const uint8_t* p) {
  const hn::Rebind<uint8_t, PDF> d8;
  return hn::PromoteTo(PDU(), hn::LoadU(d8, p));
}
HWY_INLINE PVI LoadI8(const uint8_t* p) {
  const hn::Rebind<int8_t, PDF> d8;
  return hn::PromoteTo(PDI(), hn::LoadU(d8, reinterpret_cast<const int8_t*>(p)));
}

// E4M3FN codes (u32 lanes holding one byte) to F32, exact (NaN codes are never stored). Moving
// s.eeee.mmm to float bit 31 / bits 26..20 gives the value times 2^-120 (E4M3 subnormals land
// on float subnormals), and the multiply by 2^120 is exact.
HWY_INLINE PVF DecodeE4m3(PVU b) {
  const PDF df;
  const PDI di;
  const PVI t = hn::ShiftRight<4>(hn::ShiftLeft<24>(hn::BitCast(di, b)));  // arithmetic
  const PVI bits = hn::And(t, hn::Set(di, static_cast<int32_t>(0x87FFFFFFu)));
  return hn::Mul(hn::BitCast(df, bits), hn::Set(df, 0x1.0p120f));
}

// E8M0 codes to F32 (2^(e-127); code 0 is the float subnormal 2^-127).
HWY_INLINE PVF DecodeE8m0(PVU e) {
  const PDF df;
  const PDU du;
  const PVU bits =
      hn::IfThenElse(hn::Eq(e, hn::Zero(du)), hn::Set(du, 0x00400000u), hn::ShiftLeft<23>(e));
  return hn::BitCast(df, bits);
}

// A 16-entry float table indexed by u32 lanes in [0, 16).
struct Lut16 {
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
  PVF table;
  explicit Lut16(const float* values) : table(hn::LoadU(PDF(), values)) {}
  HWY_INLINE PVF operator()(PVU idx) const {
    return hn::TableLookupLanes(table, hn::IndicesFromVec(PDF(), hn::BitCast(PDI(), idx)));
  }
#endif
};

// ------------------------------------------------------------------------------------------
// GEMV: kP panels x kM x rows, panels streamed once.
// out: [kM][kP * 16] (panel p's rows at p * 16).
template <class Dec, int kP, int kM>
HWY_INLINE void GemvStep(const Dec& dec, const PanelMatrix& w, const uint8_t* panel0,
                         size_t panel_stride, const float* HWY_RESTRICT x, float* HWY_RESTRICT out,
                         size_t prefetch) {
  const PDF df;
  PVF acc[kP][kPV][kM];
  for (int p = 0; p < kP; ++p) {
    for (size_t c = 0; c < kPV; ++c) {
      for (int i = 0; i < kM; ++i) acc[p][c][i] = hn::Zero(df);
    }
  }
  const size_t kp = static_cast<size_t>(w.kp);
  const size_t bk = static_cast<size_t>(w.block_k);
  const uint8_t* blk[kP];
  for (int p = 0; p < kP; ++p) blk[p] = panel0 + p * panel_stride;
  for (size_t kb = 0; kb < kp; kb += bk) {
    const size_t len = std::min(bk, kp - kb);
    typename Dec::State st[kP][kPV];
    const uint8_t* codes[kP];
    for (int p = 0; p < kP; ++p) {
      for (size_t c = 0; c < kPV; ++c) st[p][c] = dec.Prepare(blk[p], c);
      codes[p] = blk[p] + Dec::kHeader;
    }
    const size_t pairs = len / 2;
    for (size_t t = 0; t < pairs; ++t) {
      if (prefetch != 0) {
        for (int p = 0; p < kP; ++p) {
          __builtin_prefetch(codes[p] + t * Dec::kPairBytes + prefetch);
        }
      }
      const size_t k = kb + 2 * t;
      PVF x0[kM], x1[kM];
      for (int i = 0; i < kM; ++i) {
        x0[i] = hn::Set(df, x[i * kp + k]);
        x1[i] = hn::Set(df, x[i * kp + k + 1]);
      }
      for (int p = 0; p < kP; ++p) {
        for (size_t c = 0; c < kPV; ++c) {
          PVF w0, w1;
          dec.Pair(st[p][c], codes[p], t, c, w0, w1);
          for (int i = 0; i < kM; ++i) acc[p][c][i] = hn::MulAdd(w0, x0[i], acc[p][c][i]);
          for (int i = 0; i < kM; ++i) acc[p][c][i] = hn::MulAdd(w1, x1[i], acc[p][c][i]);
        }
      }
    }
    for (int p = 0; p < kP; ++p) blk[p] = codes[p] + pairs * Dec::kPairBytes;
  }
  for (int i = 0; i < kM; ++i) {
    for (int p = 0; p < kP; ++p) {
      for (size_t c = 0; c < kPV; ++c) {
        hn::StoreU(acc[p][c][i], df, out + i * (kP * 16) + p * 16 + c * kPN);
      }
    }
  }
}

// Copies the valid rows of a step's output (panels from p, kP of them) into y.
HWY_INLINE void ScatterRows(const float* out, int kP, int kM, int64_t p, int64_t rows, float* y,
                            int64_t ldy) {
  const int64_t r0 = p * 16;
  const int64_t n = std::min<int64_t>(kP * 16, rows - r0);
  for (int i = 0; i < kM; ++i) {
    std::memcpy(y + i * ldy + r0, out + i * kP * 16, static_cast<size_t>(n) * sizeof(float));
  }
}

template <class Dec, int kM>
HWY_NOINLINE void GemvPanelsM(const Dec& dec, const PanelMatrix& w, int64_t p_begin, int64_t p_end,
                              const float* x, float* y, int64_t ldy, size_t prefetch) {
  constexpr int kP = GemvPanelsPerStep<kM>();
  const size_t stride = static_cast<size_t>(panel_bytes(w));
  HWY_ALIGN float out[kM * kP * 16];
  int64_t p = p_begin;
  for (; p + kP <= p_end; p += kP) {
    GemvStep<Dec, kP, kM>(dec, w, w.data + p * stride, stride, x, out, prefetch);
    ScatterRows(out, kP, kM, p, w.rows, y, ldy);
  }
  for (; p < p_end; ++p) {
    GemvStep<Dec, 1, kM>(dec, w, w.data + p * stride, stride, x, out, prefetch);
    ScatterRows(out, 1, kM, p, w.rows, y, ldy);
  }
}

template <class Dec>
HWY_INLINE void GemvPanelsT(const Dec& dec, const PanelMatrix& w, int64_t p_begin, int64_t p_end,
                            const float* x, int64_t m, float* y, int64_t ldy) {
  const auto prefetch = static_cast<size_t>(qmatmul_prefetch_bytes());
  switch (m) {
    case 1:
      return GemvPanelsM<Dec, 1>(dec, w, p_begin, p_end, x, y, ldy, prefetch);
    case 2:
      return GemvPanelsM<Dec, 2>(dec, w, p_begin, p_end, x, y, ldy, prefetch);
    case 3:
      return GemvPanelsM<Dec, 3>(dec, w, p_begin, p_end, x, y, ldy, prefetch);
    default:
      return GemvPanelsM<Dec, 4>(dec, w, p_begin, p_end, x, y, ldy, prefetch);
  }
}

// ------------------------------------------------------------------------------------------
// Dequantization of columns [k0, k1) (both even) of panel p: dst: [k1 - k0][16].
template <class Dec>
HWY_INLINE void DequantPanelT(const Dec& dec, const PanelMatrix& w, int64_t p, int64_t k0,
                              int64_t k1, float* HWY_RESTRICT dst) {
  const PDF df;
  const int64_t bk = w.block_k;
  const int64_t full_block = Dec::kHeader + (bk / 2) * Dec::kPairBytes;
  const uint8_t* panel = w.data + p * panel_bytes(w);
  for (int64_t kb = (k0 / bk) * bk; kb < k1; kb += bk) {
    const uint8_t* blk = panel + (kb / bk) * full_block;
    const int64_t len = std::min(bk, w.kp - kb);
    typename Dec::State st[kPV];
    for (size_t c = 0; c < kPV; ++c) st[c] = dec.Prepare(blk, c);
    const uint8_t* codes = blk + Dec::kHeader;
    const auto ta = static_cast<size_t>((std::max(k0, kb) - kb) / 2);
    const auto tb = static_cast<size_t>((std::min(k1, kb + len) - kb) / 2);
    float* d = dst + (kb - k0) * 16;
    for (size_t t = ta; t < tb; ++t) {
      for (size_t c = 0; c < kPV; ++c) {
        PVF w0, w1;
        dec.Pair(st[c], codes, t, c, w0, w1);
        hn::StoreU(w0, df, d + (2 * t) * 16 + c * kPN);
        hn::StoreU(w1, df, d + (2 * t + 1) * 16 + c * kPN);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// GEMM micro-kernel: kP panels of dequantized weights wb: [kP][kc][16] (panel stride kc * 16)
// times kM x rows packed k-major (xk[k * kM + i]: the broadcasts of one step are contiguous,
// where x rows kp floats apart would collide in the same L1 sets) into acc rows io + i * ldo
// ([kP * 16] lanes each), continuing the sums already there unless `first`.
template <int kP, int kM>
HWY_INLINE void PanelMicroKernel(const float* HWY_RESTRICT wb, size_t kc,
                                 const float* HWY_RESTRICT xk, float* HWY_RESTRICT io, size_t ldo,
                                 bool first) {
  const PDF df;
  PVF acc[kP][kPV][kM];
  for (int i = 0; i < kM; ++i) {
    for (int p = 0; p < kP; ++p) {
      for (size_t c = 0; c < kPV; ++c) {
        acc[p][c][i] = first ? hn::Zero(df) : hn::Load(df, io + i * ldo + p * 16 + c * kPN);
      }
    }
  }
  for (size_t k = 0; k < kc; ++k) {
    PVF wv[kP][kPV];
    for (int p = 0; p < kP; ++p) {
      for (size_t c = 0; c < kPV; ++c) wv[p][c] = hn::Load(df, wb + p * kc * 16 + k * 16 + c * kPN);
    }
    for (int i = 0; i < kM; ++i) {
      const PVF xb = hn::Set(df, xk[k * kM + i]);
      for (int p = 0; p < kP; ++p) {
        for (size_t c = 0; c < kPV; ++c) acc[p][c][i] = hn::MulAdd(wv[p][c], xb, acc[p][c][i]);
      }
    }
  }
  for (int i = 0; i < kM; ++i) {
    for (int p = 0; p < kP; ++p) {
      for (size_t c = 0; c < kPV; ++c) {
        hn::Store(acc[p][c][i], df, io + i * ldo + p * 16 + c * kPN);
      }
    }
  }
}

// Panels per GEMM step: two when a panel is one vector (AVX-512), else one (16 registers).
constexpr int kGemmPanels = kPV == 1 ? 2 : 1;
// x rows per micro-kernel step: kGemmPanels * kPV * rows accumulators fill the register file.
constexpr int64_t kGemmRows = (HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86) ? 12 : (kPV >= 4 ? 3 : 6);

// The row blocks of m x rows: blocks of kGemmRows, then of 8 and of 4 (AVX-512), then single rows.
struct RowBlock {
  int64_t i0, rows;
};
HWY_INLINE std::vector<RowBlock> GemmRowBlocks(int64_t m) {
  std::vector<RowBlock> blocks;
  int64_t i = 0;
  for (; i + kGemmRows <= m; i += kGemmRows) blocks.push_back({i, kGemmRows});
  if (kGemmRows > 8) {
    for (; i + 8 <= m; i += 8) blocks.push_back({i, 8});
  }
  if (kGemmRows > 4) {
    for (; i + 4 <= m; i += 4) blocks.push_back({i, 4});
  }
  for (; i < m; ++i) blocks.push_back({i, 1});
  return blocks;
}

template <int kP>
HWY_INLINE void MicroBlock(const float* wb, size_t kc, const float* xk, int64_t rows, float* io,
                           size_t ldo, bool first) {
  if (rows == kGemmRows) return PanelMicroKernel<kP, kGemmRows>(wb, kc, xk, io, ldo, first);
  if constexpr (kGemmRows > 8) {
    if (rows == 8) return PanelMicroKernel<kP, 8>(wb, kc, xk, io, ldo, first);
  }
  if constexpr (kGemmRows > 4) {
    if (rows == 4) return PanelMicroKernel<kP, 4>(wb, kc, xk, io, ldo, first);
  }
  PanelMicroKernel<kP, 1>(wb, kc, xk, io, ldo, first);
}

inline constexpr int64_t kGemmChunkCols = 256;

// Panels [p_begin, p_end) times all m x rows (x: [m, kp]) into y: [m, ldy].
template <class Dec>
HWY_INLINE void GemmPanelsT(const Dec& dec, const PanelMatrix& w, int64_t p_begin, int64_t p_end,
                            const float* x, int64_t m, float* y, int64_t ldy) {
  const int64_t kc_max = kGemmChunkCols;
  const int64_t kp = w.kp;
  auto wbuf = hwy::AllocateAligned<float>(static_cast<size_t>(2 * kc_max * 16));
  auto acc = hwy::AllocateAligned<float>(static_cast<size_t>(m * 32));
  // x repacked per row block, k-major: block b at xpack + i0 * kp, element (k, i) at k * rows + i.
  const std::vector<RowBlock> blocks = GemmRowBlocks(m);
  auto xpack = hwy::AllocateAligned<float>(static_cast<size_t>(m * kp));
  for (const RowBlock& b : blocks) {
    float* dst = xpack.get() + b.i0 * kp;
    for (int64_t k = 0; k < kp; ++k) {
      for (int64_t i = 0; i < b.rows; ++i) dst[k * b.rows + i] = x[(b.i0 + i) * kp + k];
    }
  }
  for (int64_t p = p_begin; p < p_end; p += kGemmPanels) {
    const int kP = (kGemmPanels == 2 && p + 2 <= p_end) ? 2 : 1;
    for (int64_t k0 = 0; k0 < kp; k0 += kc_max) {
      const int64_t k1 = std::min(kp, k0 + kc_max);
      const auto kc = static_cast<size_t>(k1 - k0);
      for (int q = 0; q < kP; ++q) {
        DequantPanelT(dec, w, p + q, k0, k1, wbuf.get() + q * kc * 16);
      }
      const bool first = k0 == 0;
      for (const RowBlock& b : blocks) {
        const float* xk = xpack.get() + b.i0 * kp + k0 * b.rows;
        float* io = acc.get() + b.i0 * 32;
        if (kGemmPanels == 2 && kP == 2) {
          MicroBlock<kGemmPanels>(wbuf.get(), kc, xk, b.rows, io, 32, first);
        } else {
          MicroBlock<1>(wbuf.get(), kc, xk, b.rows, io, 32, first);
        }
      }
    }
    const int64_t r0 = p * 16;
    const int64_t n = std::min<int64_t>(kP * 16, w.rows - r0);
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(y + i * ldy + r0, acc.get() + i * 32, static_cast<size_t>(n) * sizeof(float));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
