// Bit layout of every quantized format: hand-constructed inputs must produce hand-computed
// bytes (block structs, nibble order, scale bytes, scale arrays), and the storage size must
// match quantized_bytes(). The expected bytes below are derived by hand in the comments.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "qforge/formats/blocks.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace {

QuantizedMatrix quantize_or_die(const std::vector<float>& x, int64_t rows, int64_t cols,
                                const QuantSpec& spec) {
  auto q = quantize_matrix(x.data(), rows, cols, spec);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  auto r = quantize_matrix_ref(x.data(), rows, cols, spec);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  if (q.ok() && r.ok()) {
    EXPECT_EQ(q->data, r->data);
  }
  return q.ok() ? std::move(q).value() : QuantizedMatrix{};
}

std::vector<float> dequantize_or_die(const QuantizedMatrix& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  EXPECT_TRUE(dequantize_matrix(q, out.data()).ok());
  return out;
}

template <class Block>
Block block_at(const QuantizedMatrix& q, int64_t row, int64_t index) {
  Block b;
  std::memcpy(&b, q.row_data(row) + index * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

QuantSpec spec_with_group(QuantFormat f, int g, ScaleType st = ScaleType::F16) {
  QuantSpec s = default_quant_spec(f);
  s.group_size = g;
  s.scale_type = st;
  return s;
}

TEST(BlockLayout, FieldOffsets) {
  EXPECT_EQ(offsetof(BlockInt4<128>, scale), 0u);
  EXPECT_EQ(offsetof(BlockInt4<128>, qs), 2u);
  EXPECT_EQ(offsetof(BlockUint4<128>, zero), 2u);
  EXPECT_EQ(offsetof(BlockUint4<128>, reserved), 3u);
  EXPECT_EQ(offsetof(BlockUint4<128>, qs), 4u);
  EXPECT_EQ(offsetof(BlockNvfp4, qs), 0u);
  EXPECT_EQ(offsetof(BlockNvfp4, scale_e4m3), 8u);
  EXPECT_EQ(offsetof(BlockMxfp4, scale_e8m0), 0u);
  EXPECT_EQ(offsetof(BlockMxfp4, qs), 1u);
  EXPECT_EQ(offsetof(BlockMxfp8, qs), 1u);
  EXPECT_EQ(int4_block_bytes(32), static_cast<int64_t>(sizeof(BlockInt4<32>)));
  EXPECT_EQ(uint4_block_bytes(64), static_cast<int64_t>(sizeof(BlockUint4<64>)));
}

TEST(BlockLayout, Nvfp4HandBlocks) {
  // Tensor amax 2688 = 6 * 448 makes the tensor scale s2 = 1 exactly.
  // Block 0: every E2M1 value in code order, amax 6 -> block scale 6 / (6 * 1) = 1.0 = E4M3
  //          0x38 (exponent 7 = bias, mantissa 0), divisor 1, codes 0..15.
  // Block 1: 448 x (the same values): amax 2688 -> block scale 448 = E4M3 0x7E, codes 0..15.
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> x(32);
  for (int i = 0; i < 16; ++i) {
    x[i] = e2m1[i];
    x[16 + i] = 448.0f * e2m1[i];
  }
  const QuantizedMatrix q = quantize_or_die(x, 1, 32, default_quant_spec(QuantFormat::NVFP4));
  EXPECT_EQ(q.tensor_scale, 1.0f);
  ASSERT_EQ(q.data.size(), 18u);
  // Low nibble first: byte i = code[2i] | code[2i+1] << 4.
  const uint8_t qs[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  const auto b0 = block_at<BlockNvfp4>(q, 0, 0);
  const auto b1 = block_at<BlockNvfp4>(q, 0, 1);
  EXPECT_EQ(std::memcmp(b0.qs, qs, 8), 0);
  EXPECT_EQ(b0.scale_e4m3, 0x38);
  EXPECT_EQ(std::memcmp(b1.qs, qs, 8), 0);
  EXPECT_EQ(b1.scale_e4m3, 0x7E);
  EXPECT_EQ(dequantize_or_die(q), x);
}

TEST(BlockLayout, Nvfp4TensorScaleAndRounding) {
  // Tensor amax 6: s2 = 6 / 2688. Block amax 3: 3 / (6 * s2) ~ 224 -> E4M3 0x76 (224 is exact).
  // Elements 3 / div = 6 -> code 7; 1.0 / div = 2 -> code 4; 1.25 / div = 2.5 -> tie, even
  // code 4 (2.0); 0.2 / div = 0.4 -> 0.5, code 1; -0.1 / div = -0.2 -> rounds to -0, code 8.
  std::vector<float> x(32, 0.0f);
  x[0] = 6.0f;
  const float tail[5] = {3.0f, 1.0f, 1.25f, 0.2f, -0.1f};
  for (int i = 0; i < 5; ++i) x[16 + i] = tail[i];
  const QuantizedMatrix q = quantize_or_die(x, 1, 32, default_quant_spec(QuantFormat::NVFP4));
  EXPECT_EQ(q.tensor_scale, 6.0f / 2688.0f);
  const auto b1 = block_at<BlockNvfp4>(q, 0, 1);
  EXPECT_EQ(b1.scale_e4m3, 0x76);
  EXPECT_EQ(b1.qs[0], 0x47);  // codes 7 (3.0), 4 (1.0)
  EXPECT_EQ(b1.qs[1], 0x14);  // codes 4 (1.25, tie to even), 1 (0.2)
  EXPECT_EQ(b1.qs[2], 0x08);  // codes 8 (-0.1 -> -0), 0 (padding zero)
}

TEST(BlockLayout, Int4PackingAndTies) {
  // amax 7 -> scale 7 / 7 = 1 (F16 0x3C00, BF16 0x3F80); codes are x rounded to nearest even.
  std::vector<float> x(32, 0.0f);
  const float head[10] = {7, -7, 1, 2, 0, -1, 2.5f, 3.5f, -2.5f, -3.5f};
  for (int i = 0; i < 10; ++i) x[i] = head[i];
  for (ScaleType st : {ScaleType::F16, ScaleType::BF16}) {
    const QuantizedMatrix q =
        quantize_or_die(x, 1, 32, spec_with_group(QuantFormat::INT4_GROUP, 32, st));
    ASSERT_EQ(q.data.size(), sizeof(BlockInt4<32>));
    const auto b = block_at<BlockInt4<32>>(q, 0, 0);
    EXPECT_EQ(b.scale, st == ScaleType::F16 ? 0x3C00 : 0x3F80);
    EXPECT_EQ(b.qs[0], 0x97);  // 7 -> 0x7, -7 -> 0x9 (two's complement)
    EXPECT_EQ(b.qs[1], 0x21);  // 1, 2
    EXPECT_EQ(b.qs[2], 0xF0);  // 0, -1 -> 0xF
    EXPECT_EQ(b.qs[3], 0x42);  // 2.5 -> 2, 3.5 -> 4
    EXPECT_EQ(b.qs[4], 0xCE);  // -2.5 -> -2 = 0xE, -3.5 -> -4 = 0xC
    for (int i = 5; i < 16; ++i) EXPECT_EQ(b.qs[i], 0) << i;
  }
}

TEST(BlockLayout, Uint4ZeroPointAndPadding) {
  // x[i] = i / 2 - 2 for i < 16, then the row ends (cols = 16, group 32: 16 padding zeros).
  // [lo, hi] = [-2, 5.5] -> scale 7.5 / 15 = 0.5 (F16 0x3800), zero = rne(2 / 0.5) = 4,
  // codes = rne(x / 0.5) + 4 = i; the padding zeros get code 4 = the zero point.
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i) / 2.0f - 2.0f;
  const QuantizedMatrix q =
      quantize_or_die(x, 1, 16, spec_with_group(QuantFormat::UINT4_GROUP, 32));
  EXPECT_EQ(q.padded_cols, 32);
  ASSERT_EQ(q.data.size(), sizeof(BlockUint4<32>));
  const auto b = block_at<BlockUint4<32>>(q, 0, 0);
  EXPECT_EQ(b.scale, 0x3800);
  EXPECT_EQ(b.zero, 4);
  EXPECT_EQ(b.reserved, 0);
  const uint8_t qs[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  EXPECT_EQ(std::memcmp(b.qs, qs, 8), 0);
  for (int i = 8; i < 16; ++i) EXPECT_EQ(b.qs[i], 0x44) << i;
  EXPECT_EQ(dequantize_or_die(q), x);
}

TEST(BlockLayout, Mxfp4ScalesAreFloorLog2MinusTwo) {
  // Block 0: amax 6 -> 2^(floor(log2 6) - 2) = 2^0 -> E8M0 127; codes as NVFP4's block 0.
  // Block 1: amax 0.75 -> 2^(-1 - 2) = 0.125 -> E8M0 124; 0.75 / 0.125 = 6 -> code 7,
  //          -0.25 / 0.125 = -2 -> code 0xC.
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> x(64, 0.0f);
  for (int i = 0; i < 16; ++i) x[i] = e2m1[i];
  x[32] = 0.75f;
  x[33] = -0.25f;
  const QuantizedMatrix q = quantize_or_die(x, 1, 64, default_quant_spec(QuantFormat::MXFP4));
  ASSERT_EQ(q.data.size(), 2 * sizeof(BlockMxfp4));
  const auto b0 = block_at<BlockMxfp4>(q, 0, 0);
  const auto b1 = block_at<BlockMxfp4>(q, 0, 1);
  EXPECT_EQ(b0.scale_e8m0, 127);
  const uint8_t qs[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  EXPECT_EQ(std::memcmp(b0.qs, qs, 8), 0);
  EXPECT_EQ(b1.scale_e8m0, 124);
  EXPECT_EQ(b1.qs[0], 0xC7);
  EXPECT_EQ(dequantize_or_die(q), x);
}

TEST(BlockLayout, Mxfp8CodesAndSaturation) {
  // amax 500: 2^(floor(log2 500) - 8) = 2^0 -> E8M0 127. 500 saturates to 448 (0x7E), as the
  // MX spec's clamp does; 1 = 0x38; -2 = 0xC0; 2^-9 = 0x01 (smallest subnormal); 300 rounds to
  // 288 = 1.125 * 2^8 = 0x79.
  std::vector<float> x(32, 0.0f);
  const float head[5] = {500.0f, 1.0f, -2.0f, 0.001953125f, 300.0f};
  for (int i = 0; i < 5; ++i) x[i] = head[i];
  const QuantizedMatrix q = quantize_or_die(x, 1, 32, default_quant_spec(QuantFormat::MXFP8));
  const auto b = block_at<BlockMxfp8>(q, 0, 0);
  EXPECT_EQ(b.scale_e8m0, 127);
  const uint8_t codes[5] = {0x7E, 0x38, 0xC0, 0x01, 0x79};
  EXPECT_EQ(std::memcmp(b.qs, codes, 5), 0);
}

TEST(BlockLayout, Fp8PerTensorCodesAndScale) {
  // amax 448 -> scale 448 / 448 = 1; -224 = -1.75 * 2^7 -> 1.1110.110 = 0xF6.
  const std::vector<float> x = {448.0f, -224.0f, 1.0f, 0.0f};
  const QuantizedMatrix q =
      quantize_or_die(x, 2, 2, default_quant_spec(QuantFormat::FP8_PER_TENSOR));
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(q.data, (std::vector<uint8_t>{0x7E, 0xF6, 0x38, 0x00}));
}

TEST(BlockLayout, Int8PerChannelCodesAndScales) {
  // Row 0: amax 127 -> scale 1; -63.5 -> -64 and 0.5 -> 0, 1.5 -> 2 (ties to even).
  // Row 1: amax 254 -> scale 2.
  const std::vector<float> x = {127.0f, -63.5f, 0.5f, 1.5f, 254.0f, 2.0f, -3.0f, 0.0f};
  const QuantizedMatrix q =
      quantize_or_die(x, 2, 4, default_quant_spec(QuantFormat::INT8_PER_CHANNEL));
  EXPECT_EQ(q.scales, (std::vector<float>{1.0f, 2.0f}));
  const std::vector<int8_t> codes = {127, -64, 0, 2, 127, 1, -2, 0};  // -1.5 -> -2
  ASSERT_EQ(q.data.size(), codes.size());
  EXPECT_EQ(std::memcmp(q.data.data(), codes.data(), codes.size()), 0);
}

TEST(BlockLayout, Fp8Block128ScaleGrid) {
  // [130, 200] -> 2 x 2 tiles; tile (i, j) holds one value 448 * (2i + j + 1), so its scale is
  // 2i + j + 1; the scale array is row-major over tiles.
  const int64_t rows = 130;
  const int64_t cols = 200;
  std::vector<float> x(static_cast<size_t>(rows * cols), 0.0f);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) x[(i * 128 + 1) * cols + j * 128 + 3] = 448.0f * (2 * i + j + 1);
  }
  const QuantizedMatrix q =
      quantize_or_die(x, rows, cols, default_quant_spec(QuantFormat::FP8_BLOCK128));
  EXPECT_EQ(q.scales, (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
  EXPECT_EQ(q.row_bytes, cols);
  EXPECT_EQ(q.row_data(129)[131], 0x7E);  // 448 * 4 / scale 4
  EXPECT_EQ(dequantize_or_die(q), x);
}

TEST(BlockLayout, F16AndBf16LittleEndian) {
  const std::vector<float> x = {1.0f, -2.0f};
  EXPECT_EQ(quantize_or_die(x, 1, 2, default_quant_spec(QuantFormat::F16)).data,
            (std::vector<uint8_t>{0x00, 0x3C, 0x00, 0xC0}));
  EXPECT_EQ(quantize_or_die(x, 1, 2, default_quant_spec(QuantFormat::BF16)).data,
            (std::vector<uint8_t>{0x80, 0x3F, 0x00, 0xC0}));
}

TEST(BlockLayout, StorageBytesMatchQuantizedBytes) {
  const int64_t shapes[][2] = {{1, 1}, {3, 17}, {7, 129}, {130, 257}};
  std::vector<QuantSpec> specs;
  for (QuantFormat f : all_quant_formats()) specs.push_back(default_quant_spec(f));
  specs.push_back(spec_with_group(QuantFormat::INT4_GROUP, 32));
  specs.push_back(spec_with_group(QuantFormat::UINT4_GROUP, 64));
  for (const QuantSpec& spec : specs) {
    for (const auto& shape : shapes) {
      const std::vector<float> x(static_cast<size_t>(shape[0] * shape[1]), 0.25f);
      auto q = quantize_matrix(x.data(), shape[0], shape[1], spec);
      ASSERT_TRUE(q.ok()) << q.error().to_string();
      EXPECT_EQ(q->storage_bytes(), quantized_bytes(spec, shape[0], shape[1]))
          << quant_spec_name(spec) << " [" << shape[0] << ", " << shape[1] << "]";
      EXPECT_EQ(static_cast<int64_t>(q->data.size()), q->rows * q->row_bytes);
      EXPECT_GE(q->padded_cols, q->cols);
    }
  }
}

}  // namespace
}  // namespace qforge
