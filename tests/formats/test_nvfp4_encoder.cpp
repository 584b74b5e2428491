// The SIMD E2M1 encoder of the NVFP4 / bulk kernels (EncodeE2m1 in quantize_rows_fp4-inl.h, an
// exponent-driven round-to-nearest-even) equals the scalar codec float_to_e2m1 on every SIMD
// target: densely around every rounding boundary and code point, on random bit patterns, and
// (the *Slow* suite) on all 2^32 floats. Plus NVFP4 rows built to hit ties after the block
// division, zero / underflowing block scales and partial tails, against quantize_row_nvfp4_ref.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "formats/quantize_rows.h"
#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

// Asserts encode_e2m1_simd(x) == float_to_e2m1(x) for every x on every target.
void expect_encoder_matches(const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = float_to_e2m1(x[i]);
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    std::vector<uint8_t> got(x.size(), 0xFF);
    quantize_internal::encode_e2m1_simd(x.data(), n, got.data());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(int{got[i]}, int{ref[i]}) << "target " << t.name << ": x = " << x[i] << " (bits 0x"
                                          << std::hex << std::bit_cast<uint32_t>(x[i]) << ")";
    }
  }
}

float from_bits(uint32_t bits) {
  return std::bit_cast<float>(bits);
}

TEST(Nvfp4Encoder, DenseAroundEveryBoundaryAndCode) {
  // Rounding boundaries (E2M1 midpoints), code points, the clamp points of the encoder and the
  // binade edges it switches at; every float within 4096 ulps of each, both signs.
  const float points[] = {0.0f, 0.125f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f,   2.0f,
                          2.5f, 3.0f,   3.5f,  4.0f, 5.0f,  6.0f, 7.0f,  8.0f, 0.0625f, 16.0f};
  std::vector<float> x;
  for (float p : points) {
    const uint32_t b = std::bit_cast<uint32_t>(p);
    for (int64_t d = -4096; d <= 4096; ++d) {
      const int64_t v = static_cast<int64_t>(b) + d;
      if (v < 0) continue;
      x.push_back(from_bits(static_cast<uint32_t>(v)));
      x.push_back(-from_bits(static_cast<uint32_t>(v)));
    }
  }
  expect_encoder_matches(x);
}

TEST(Nvfp4Encoder, EveryExponentAndSpecials) {
  // Every exponent field with mantissas 0, 1, the half point and its neighbours, all ones.
  std::vector<float> x;
  for (uint32_t e = 0; e < 256; ++e) {
    for (uint32_t m : {0u, 1u, 2u, 0x1FFFFFu, 0x200000u, 0x200001u, 0x3FFFFFu, 0x400000u, 0x400001u,
                       0x5FFFFFu, 0x600000u, 0x600001u, 0x7FFFFEu, 0x7FFFFFu}) {
      for (uint32_t s : {0u, 0x80000000u}) x.push_back(from_bits(s | (e << 23) | m));
    }
  }
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-std::numeric_limits<float>::infinity());
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(-std::numeric_limits<float>::quiet_NaN());
  x.push_back(std::numeric_limits<float>::max());
  x.push_back(std::numeric_limits<float>::denorm_min());
  x.push_back(-std::numeric_limits<float>::denorm_min());
  expect_encoder_matches(x);
}

TEST(Nvfp4Encoder, RandomBitPatternsAndValues) {
  Rng rng(7);
  std::vector<float> x;
  for (int i = 0; i < (1 << 20); ++i) {
    x.push_back(from_bits(static_cast<uint32_t>(rng.next_u64())));
    x.push_back(static_cast<float>(8.0 * rng.normal()));
  }
  x.resize(x.size() - 3);  // an odd count: the vector tail path too
  expect_encoder_matches(x);
}

TEST(Nvfp4EncoderSlow, AllFloats) {
  // All 2^32 bit patterns, in chunks: the reference once per chunk, then each target.
  constexpr uint64_t kChunk = uint64_t{1} << 24;
  std::vector<float> x(kChunk);
  std::vector<uint8_t> ref(kChunk), got(kChunk);
  const std::vector<SimdTarget> targets = simd_targets();
  for (uint64_t base = 0; base < (uint64_t{1} << 32); base += kChunk) {
    for (uint64_t i = 0; i < kChunk; ++i) {
      x[i] = from_bits(static_cast<uint32_t>(base + i));
      ref[i] = float_to_e2m1(x[i]);
    }
    for (const SimdTarget& t : targets) {
      ScopedSimdTarget scope(t.bits);
      quantize_internal::encode_e2m1_simd(x.data(), static_cast<int64_t>(kChunk), got.data());
      if (std::memcmp(got.data(), ref.data(), kChunk) == 0) continue;
      for (uint64_t i = 0; i < kChunk; ++i) {
        ASSERT_EQ(int{got[i]}, int{ref[i]})
            << "target " << t.name << ": bits 0x" << std::hex << base + i;
      }
    }
  }
}

// quantize_row_nvfp4 == quantize_row_nvfp4_ref (all 9 bytes of every block) on every target.
void expect_row_matches(const std::vector<float>& x, float tensor_scale, const std::string& what) {
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t blocks = static_cast<size_t>((n + 15) / 16);
  std::vector<BlockNvfp4> ref(blocks);
  quantize_row_nvfp4_ref(x.data(), n, tensor_scale, ref.data());
  for (const SimdTarget& t : simd_targets()) {
    ScopedSimdTarget scope(t.bits);
    std::vector<BlockNvfp4> got(blocks);
    std::memset(got.data(), 0xAB, blocks * sizeof(BlockNvfp4));
    quantize_row_nvfp4(x.data(), n, tensor_scale, got.data());
    for (size_t b = 0; b < blocks; ++b) {
      ASSERT_EQ(std::memcmp(&got[b], &ref[b], sizeof(BlockNvfp4)), 0)
          << what << ", target " << t.name << ", block " << b << ": scale "
          << int{got[b].scale_e4m3} << " vs " << int{ref[b].scale_e4m3};
    }
  }
}

TEST(Nvfp4Encoder, RowsWithTiesAfterTheBlockDivision) {
  // Each block: amax 6 * e4m3(c) * s2 (so the block scale code is exactly c when that is
  // representable), elements t * div_b and their float neighbours for t on every E2M1 code
  // point and midpoint: x / div_b lands on the tie or one ulp either side.
  const float ties[] = {0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f,
                        2.5f,  3.0f, 3.5f,  4.0f, 5.0f,  6.0f, 0.0f};
  Rng rng(11);
  for (float s2 : {1.0f, 0.37f, 1.0e-3f, 3.0e-38f, 1.0e-42f, 12345.678f}) {
    std::vector<float> x;
    for (int code = 1; code <= 0x7E; ++code) {
      const float div = e4m3fn_to_float(static_cast<uint8_t>(code)) * s2;
      std::vector<float> block;
      block.push_back(6.0f * div);
      while (block.size() < 16) {
        const float t = ties[rng.next_u64() % std::size(ties)];
        float v = t * div;
        const uint64_t r = rng.next_u64() % 3;
        if (r == 1) v = std::nextafter(v, 0.0f);
        if (r == 2) v = std::nextafter(v, 1e30f);
        block.push_back((rng.next_u64() & 1) ? -v : v);
      }
      x.insert(x.end(), block.begin(), block.end());
    }
    expect_row_matches(x, s2, "ties, s2 = " + std::to_string(s2));
  }
}

TEST(Nvfp4Encoder, RowsWithZeroUnderflowingAndOddBlocks) {
  Rng rng(12);
  std::vector<float> x(16 * 70 + 5);
  for (float& v : x) v = static_cast<float>(rng.normal());
  for (int i = 16 * 3; i < 16 * 4; ++i) x[i] = 0.0f;                    // all-zero block
  for (int i = 16 * 5; i < 16 * 6; ++i) x[i] = (i & 1) ? -0.0f : 0.0f;  // signed zeros
  for (int i = 16 * 7; i < 16 * 8; ++i) x[i] *= 1e-9f;      // block scale underflows E4M3
  for (int i = 16 * 9; i < 16 * 10; ++i) x[i] *= 1e-40f;    // subnormal inputs
  for (int i = 16 * 11; i < 16 * 12; ++i) x[i] *= 1e30f;    // saturates the block scale
  x[16 * 13 + 4] = std::numeric_limits<float>::infinity();  // non-finite block: zero codes
  x[16 * 14 + 9] = std::numeric_limits<float>::quiet_NaN();
  x[16 * 15] = std::numeric_limits<float>::max();
  const float s2 = nvfp4_tensor_scale(1.0f);
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{16}, int64_t{17}, int64_t{16 * 16 + 3},
                    int64_t{16 * 33}, static_cast<int64_t>(x.size())}) {
    const std::vector<float> row(x.begin(), x.begin() + n);
    for (float ts : {s2, 0.0f, -1.0f, 1e-30f, 1e-44f, std::numeric_limits<float>::infinity(),
                     std::numeric_limits<float>::quiet_NaN()}) {
      expect_row_matches(row, ts, "n = " + std::to_string(n) + ", s2 = " + std::to_string(ts));
    }
  }
}

}  // namespace
}  // namespace qforge
