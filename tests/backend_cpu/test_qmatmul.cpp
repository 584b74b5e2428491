// Packed-panel kernels (backend/cpu/qmatmul.h) against their scalar oracles on every compiled
// SIMD target: random codes and scales of every panel format, odd shapes (rows not a multiple of
// 16, columns not a multiple of the block) and real-ish layer shapes; the GEMV (m <= 4) and GEMM
// paths; W8A8 integer paths bit-exact (VNNI on and off); dense_matmul; determinism in m and
// the thread count.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/qmatmul.h"
#include "hwy/targets.h"
#include "kernel_test_util.h"
#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/formats/scalar.h"

namespace qforge::cpu {
namespace {

using test::random_floats;
using test::relative_l2;

struct Geometry {
  PanelFormat format;
  int64_t block;  // 0: the whole row
  ScaleType scale_type = ScaleType::F16;
  const char* name;
};

const std::vector<Geometry> kFormats = {
    {PanelFormat::kW8A16, 0, ScaleType::F16, "w8a16"},
    {PanelFormat::kW4A16, 32, ScaleType::F16, "w4a16_g32"},
    {PanelFormat::kW4A16, 128, ScaleType::BF16, "w4a16_g128_bf16"},
    {PanelFormat::kW4A16Zp, 64, ScaleType::F16, "w4a16_zp_g64"},
    {PanelFormat::kW4A16Zp, 128, ScaleType::BF16, "w4a16_zp_g128_bf16"},
    {PanelFormat::kFp8, 0, ScaleType::F16, "fp8"},
    {PanelFormat::kFp8, 128, ScaleType::F16, "fp8_block128"},
    {PanelFormat::kNvfp4, 16, ScaleType::F16, "nvfp4"},
    {PanelFormat::kMxfp4, 32, ScaleType::F16, "mxfp4"},
    {PanelFormat::kMxfp8, 32, ScaleType::F16, "mxfp8"},
};

// A panel matrix of random but valid codes and scales (no NaN codes, finite scales).
struct RandomPanels {
  PanelMatrix w;
  std::vector<uint8_t> bytes;
};

RandomPanels make_panels(const Geometry& g, int64_t rows, int64_t cols, uint64_t seed) {
  RandomPanels rp;
  PanelMatrix& w = rp.w;
  w.format = g.format;
  w.rows = rows;
  w.cols = cols;
  w.scale_type = g.scale_type;
  w.tensor_scale = 0.0123f;
  const int64_t align = g.block > 0 && g.format != PanelFormat::kFp8 ? g.block : 2;
  w.kp = (cols + align - 1) / align * align;
  w.block_k = g.block > 0 ? g.block : w.kp;
  EXPECT_TRUE(panel_matrix_valid(w)) << g.name;
  rp.bytes.resize(static_cast<size_t>(panel_matrix_bytes(w)));
  Rng rng(seed);
  for (auto& b : rp.bytes) b = static_cast<uint8_t>(rng.next_u64());
  // Valid headers and codes, block by block.
  const int64_t pb = panel_bytes(w);
  const bool fp8_codes = g.format == PanelFormat::kFp8 || g.format == PanelFormat::kMxfp8;
  for (int64_t p = 0; p < panel_count(rows); ++p) {
    uint8_t* blk = rp.bytes.data() + p * pb;
    for (int64_t kb = 0; kb < w.kp; kb += w.block_k) {
      const int64_t len = std::min(w.block_k, w.kp - kb);
      const int64_t bytes = panel_block_bytes(g.format, len);
      const int64_t header = panel_block_bytes(g.format, 0);
      for (int r = 0; r < 16; ++r) {
        switch (g.format) {
          case PanelFormat::kW8A16:
          case PanelFormat::kFp8: {
            const float s = static_cast<float>(rng.uniform(0.001, 0.1));
            std::memcpy(blk + 4 * r, &s, 4);
            break;
          }
          case PanelFormat::kW4A16:
          case PanelFormat::kW4A16Zp: {
            const float s = static_cast<float>(rng.uniform(0.001, 0.05));
            const uint16_t h = g.scale_type == ScaleType::F16 ? float_to_f16(s) : float_to_bf16(s);
            std::memcpy(blk + 2 * r, &h, 2);
            if (g.format == PanelFormat::kW4A16Zp) blk[32 + r] = rng.uniform_int(16);
            break;
          }
          case PanelFormat::kNvfp4:
            blk[r] = float_to_e4m3fn(static_cast<float>(rng.uniform(0.01, 300.0)));
            break;
          case PanelFormat::kMxfp4:
          case PanelFormat::kMxfp8:
            blk[r] = static_cast<uint8_t>(110 + rng.uniform_int(30));
            break;
          case PanelFormat::kW8A8:
            break;
        }
      }
      if (fp8_codes) {
        for (int64_t j = header; j < bytes; ++j) {
          if ((blk[j] & 0x7F) == 0x7F) blk[j] ^= 1;  // no NaN codes
        }
      }
      blk += bytes;
    }
  }
  w.data = rp.bytes.data();
  return rp;
}

// Zero-padded x: [m, kp].
std::vector<float> make_x(const PanelMatrix& w, int64_t m, uint64_t seed) {
  const auto v = random_floats(m * w.cols, seed);
  std::vector<float> x(static_cast<size_t>(m * w.kp), 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(x.data() + i * w.kp, v.data() + i * w.cols, w.cols * sizeof(float));
  }
  return x;
}

// Targets with fused multiply-add compute exactly the oracle's fmaf chain.
bool has_fma(int64_t target) {
  return target == HWY_AVX2 || target == HWY_AVX3 || target == HWY_AVX3_DL;
}

struct Shape2 {
  int64_t rows;
  int64_t cols;
};

TEST(Qmatmul, PanelKernelsMatchRefOnEveryTarget) {
  const std::vector<Shape2> shapes = {{1, 2}, {7, 30}, {16, 64}, {33, 130}, {50, 300}};
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (const Geometry& g : kFormats) {
      for (const Shape2 s : shapes) {
        const RandomPanels rp = make_panels(g, s.rows, s.cols, 10 + s.rows);
        for (int64_t m : {1, 2, 3, 4, 5, 13}) {
          const auto x = make_x(rp.w, m, 20 + m);
          std::vector<float> got(m * s.rows, -1.0f), want(m * s.rows);
          qmatmul(rp.w, x.data(), m, got.data());
          qmatmul_ref(rp.w, x.data(), m, want.data());
          if (has_fma(target.bits)) {
            EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4))
                << target.name << " " << g.name << " [" << s.rows << ", " << s.cols << "] m=" << m;
          } else {
            EXPECT_LT(relative_l2(got.data(), want.data(), m * s.rows), 1e-6)
                << target.name << " " << g.name << " [" << s.rows << ", " << s.cols << "] m=" << m;
          }
        }
      }
    }
  }
}

TEST(Qmatmul, DequantizedPanelsAreTheRefWeights) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (const Geometry& g : kFormats) {
      const RandomPanels rp = make_panels(g, 20, 300, 3);
      std::vector<float> dst(16 * rp.w.kp);
      for (int64_t p = 0; p < 2; ++p) {
        qdequant_panel(rp.w, p, 0, rp.w.kp, dst.data());
        for (int64_t r = 0; r < 16 && p * 16 + r < 20; ++r) {
          for (int64_t k = 0; k < rp.w.cols; ++k) {
            ASSERT_EQ(dst[k * 16 + r], panel_weight_ref(rp.w, p * 16 + r, k))
                << target.name << " " << g.name << " row " << p * 16 + r << " col " << k;
          }
        }
      }
    }
  }
}

TEST(Qmatmul, RealShapes) {
  // A Llama-style projection pair, small enough for the scalar oracle.
  for (const Geometry& g : kFormats) {
    for (const Shape2 s : {Shape2{288, 768}, Shape2{512, 1536}}) {
      const RandomPanels rp = make_panels(g, s.rows, s.cols, 7);
      for (int64_t m : {1, 8}) {
        const auto x = make_x(rp.w, m, 5);
        std::vector<float> got(m * s.rows), want(m * s.rows);
        qmatmul(rp.w, x.data(), m, got.data());
        qmatmul_ref(rp.w, x.data(), m, want.data());
        EXPECT_LT(relative_l2(got.data(), want.data(), m * s.rows), 1e-6) << g.name << " m=" << m;
      }
    }
  }
}

TEST(Qmatmul, RowsIndependentOfMAndThreads) {
  for (const Geometry& g : kFormats) {
    const RandomPanels rp = make_panels(g, 100, 520, 4);
    const int64_t rows = rp.w.rows, kp = rp.w.kp;
    const auto x = make_x(rp.w, 64, 6);
    std::vector<float> all(64 * rows), all1(64 * rows), part(rows * 3), one(rows);
    set_num_threads(2);
    qmatmul(rp.w, x.data(), 64, all.data());
    set_num_threads(1);
    qmatmul(rp.w, x.data(), 64, all1.data());
    set_num_threads(0);
    EXPECT_EQ(0, std::memcmp(all.data(), all1.data(), all.size() * 4)) << g.name;
    qmatmul(rp.w, x.data() + 10 * kp, 3, part.data());
    EXPECT_EQ(0, std::memcmp(part.data(), all.data() + 10 * rows, part.size() * 4)) << g.name;
    qmatmul(rp.w, x.data() + 63 * kp, 1, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), all.data() + 63 * rows, rows * 4)) << g.name;
  }
}

// W8A8 panels of random codes in [-127, 127].
RandomPanels make_w8a8(int64_t rows, int64_t cols, uint64_t seed) {
  RandomPanels rp;
  PanelMatrix& w = rp.w;
  w.format = PanelFormat::kW8A8;
  w.rows = rows;
  w.cols = cols;
  w.kp = (cols + 3) / 4 * 4;
  w.block_k = w.kp;
  rp.bytes.assign(static_cast<size_t>(panel_matrix_bytes(w)), 0);
  Rng rng(seed);
  const int64_t pb = panel_bytes(w);
  for (int64_t p = 0; p < panel_count(rows); ++p) {
    uint8_t* panel = rp.bytes.data() + p * pb;
    for (int r = 0; r < 16; ++r) {
      const float s = static_cast<float>(rng.uniform(0.001, 0.01));
      std::memcpy(panel + 4 * r, &s, 4);
      int32_t sum = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const auto q = static_cast<int8_t>(static_cast<int>(rng.uniform_int(255)) - 127);
        panel[128 + (k / 4) * 64 + 4 * r + k % 4] = static_cast<uint8_t>(q);
        sum += q;
      }
      std::memcpy(panel + 64 + 4 * r, &sum, 4);
    }
  }
  w.data = rp.bytes.data();
  return rp;
}

TEST(Qmatmul, W8A8IsBitExactOnEveryPath) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (bool vnni_off : {false, true}) {
      qmatmul_w8a8_disable_vnni(vnni_off);
      for (const Shape2 s : {Shape2{5, 3}, Shape2{16, 64}, Shape2{45, 301}, Shape2{288, 768}}) {
        const RandomPanels rp = make_w8a8(s.rows, s.cols, 8 + s.cols);
        for (int64_t m : {1, 4, 5, 13, 30}) {
          Rng rng(m);
          std::vector<int8_t> xq(static_cast<size_t>(m * rp.w.kp), 0);
          std::vector<float> xs(m);
          for (int64_t i = 0; i < m; ++i) {
            xs[i] = static_cast<float>(rng.uniform(0.01, 0.1));
            for (int64_t k = 0; k < s.cols; ++k) {
              xq[i * rp.w.kp + k] =
                  static_cast<int8_t>(static_cast<int>(rng.uniform_int(255)) - 127);
            }
          }
          std::vector<float> got(m * s.rows, -1.0f), want(m * s.rows);
          qmatmul_w8a8(rp.w, xq.data(), xs.data(), m, got.data());
          qmatmul_w8a8_ref(rp.w, xq.data(), xs.data(), m, want.data());
          EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4))
              << target.name << " vnni_off=" << vnni_off << " [" << s.rows << ", " << s.cols
              << "] m=" << m;
        }
      }
    }
    qmatmul_w8a8_disable_vnni(false);
  }
}

TEST(Qmatmul, DenseMatmulMatchesRefAndIsDeterministic) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      for (const Shape2 s : {Shape2{7, 3}, Shape2{33, 64}, Shape2{70, 301}}) {
        const auto w = test::make_weights(dt, s.rows * s.cols, 3 + s.rows);
        const WeightView view{w.data(), dt, s.rows, s.cols, s.cols};
        const int64_t m = 40;
        const auto x = random_floats(m * s.cols, 9);
        std::vector<float> got(m * s.rows), want(m * s.rows), one(s.rows), four(4 * s.rows);
        dense_matmul(view, x.data(), m, got.data());
        matmul_ref(view, x.data(), m, want.data());
        EXPECT_LT(relative_l2(got.data(), want.data(), m * s.rows), 2e-6) << target.name;
        dense_matmul(view, x.data() + 17 * s.cols, 1, one.data());
        EXPECT_EQ(0, std::memcmp(one.data(), got.data() + 17 * s.rows, s.rows * 4))
            << target.name << " " << dtype_name(dt);
        dense_matmul(view, x.data() + 20 * s.cols, 4, four.data());
        EXPECT_EQ(0, std::memcmp(four.data(), got.data() + 20 * s.rows, 4 * s.rows * 4))
            << target.name << " " << dtype_name(dt);
      }
    }
  }
}

}  // namespace
}  // namespace qforge::cpu
