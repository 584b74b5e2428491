// The qmatmul driver of qmatmul.h: picks the decode GEMV (m up to the tactic's gemv_max_rows) or
// the prefill GEMM per call and splits the panels over threads. Both paths compute each output
// the same way, so the split and the path never change a result.
#include "backend/cpu/qmatmul.h"

#include <algorithm>
#include <atomic>

#include "backend/cpu/qmatmul_families.h"
#include "qforge/core/error.h"
#include "qforge/core/parallel.h"

namespace qforge::cpu {
namespace {

std::atomic<int64_t> g_prefetch_bytes{kDefaultPrefetchBytes};

// Multiply-adds per parallel chunk of the GEMM.
constexpr int64_t kGemmGrainMacs = int64_t{1} << 22;

using PanelFn = void (*)(const PanelMatrix&, int64_t, int64_t, const float*, int64_t, float*,
                         int64_t);

PanelFn gemv_fn(PanelFormat f) {
  switch (f) {
    case PanelFormat::kW8A16:
      return detail::qgemv_int8;
    case PanelFormat::kW4A16:
    case PanelFormat::kW4A16Zp:
      return detail::qgemv_int4;
    case PanelFormat::kFp8:
    case PanelFormat::kMxfp8:
      return detail::qgemv_fp8;
    case PanelFormat::kNvfp4:
    case PanelFormat::kMxfp4:
      return detail::qgemv_fp4;
    case PanelFormat::kW8A8:
      break;
  }
  QF_CHECK(false && "W8A8 runs through qmatmul_w8a8");
  return nullptr;
}

PanelFn gemm_fn(PanelFormat f) {
  switch (f) {
    case PanelFormat::kW8A16:
      return detail::qgemm_int8;
    case PanelFormat::kW4A16:
    case PanelFormat::kW4A16Zp:
      return detail::qgemm_int4;
    case PanelFormat::kFp8:
    case PanelFormat::kMxfp8:
      return detail::qgemm_fp8;
    case PanelFormat::kNvfp4:
    case PanelFormat::kMxfp4:
      return detail::qgemm_fp4;
    case PanelFormat::kW8A8:
      break;
  }
  QF_CHECK(false && "W8A8 runs through qmatmul_w8a8");
  return nullptr;
}

int64_t gemv_grain(const PanelMatrix& w) {
  return std::max<int64_t>(1, w.tactic.gemv_grain_bytes / std::max<int64_t>(1, panel_bytes(w)));
}

int64_t gemm_grain(const PanelMatrix& w, int64_t m) {
  const int64_t g = kGemmGrainMacs / std::max<int64_t>(1, m * kPanelRows * w.kp);
  return std::max<int64_t>(2, (g + 1) / 2 * 2);  // whole panel pairs
}

}  // namespace

void qmatmul_set_prefetch_bytes(int64_t bytes) {
  g_prefetch_bytes.store(std::max<int64_t>(0, bytes));
}
int64_t qmatmul_prefetch_bytes() {
  return g_prefetch_bytes.load(std::memory_order_relaxed);
}

void qgemv_panels(const PanelMatrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t m,
                  float* y, int64_t ldy) {
  QF_CHECK(m >= 1 && m <= 4);
  gemv_fn(w.format)(w, p_begin, p_end, x, m, y, ldy);
}

void qdequant_panel(const PanelMatrix& w, int64_t p, int64_t k0, int64_t k1, float* dst) {
  QF_CHECK(k0 % 2 == 0 && k1 % 2 == 0 && 0 <= k0 && k0 <= k1 && k1 <= w.kp);
  switch (w.format) {
    case PanelFormat::kW8A16:
      return detail::qdequant_int8(w, p, k0, k1, dst);
    case PanelFormat::kW4A16:
    case PanelFormat::kW4A16Zp:
      return detail::qdequant_int4(w, p, k0, k1, dst);
    case PanelFormat::kFp8:
    case PanelFormat::kMxfp8:
      return detail::qdequant_fp8(w, p, k0, k1, dst);
    case PanelFormat::kNvfp4:
    case PanelFormat::kMxfp4:
      return detail::qdequant_fp4(w, p, k0, k1, dst);
    case PanelFormat::kW8A8:
      break;
  }
  QF_CHECK(false && "no F32 dequantization for W8A8 panels");
}

void qmatmul(const PanelMatrix& w, const float* x, int64_t m, float* y) {
  QF_CHECK(panel_matrix_valid(w) && w.format != PanelFormat::kW8A8 && m >= 0);
  if (m == 0) return;
  const int64_t np = panel_count(w.rows);
  if (m <= std::max<int64_t>(4, w.tactic.gemv_max_rows)) {
    const PanelFn fn = gemv_fn(w.format);
    parallel_for(0, np, gemv_grain(w), [&](int64_t b, int64_t e) {
      // Passes of up to 4 rows over this chunk of panels: the first streams it from memory,
      // the others find it in cache.
      for (int64_t r0 = 0; r0 < m; r0 += 4) {
        fn(w, b, e, x + r0 * w.kp, std::min<int64_t>(4, m - r0), y + r0 * w.rows, w.rows);
      }
    });
    return;
  }
  const PanelFn fn = gemm_fn(w.format);
  parallel_for(0, np, gemm_grain(w, m),
               [&](int64_t b, int64_t e) { fn(w, b, e, x, m, y, w.rows); });
}

void qmatmul_w8a8(const PanelMatrix& w, const int8_t* xq, const float* x_scale, int64_t m,
                  float* y) {
  QF_CHECK(panel_matrix_valid(w) && w.format == PanelFormat::kW8A8 && m >= 0);
  if (m == 0) return;
  const int64_t np = panel_count(w.rows);
  const int64_t grain = m <= 4 ? gemv_grain(w) : gemm_grain(w, m);
  parallel_for(0, np, grain, [&](int64_t b, int64_t e) {
    detail::qmatmul_w8a8_panels(w, b, e, xq, x_scale, m, y, w.rows);
  });
}

}  // namespace qforge::cpu
