// Packed block formats for group-quantized tensors: POD structs whose bytes ARE the qforge
// in-memory and checkpoint layout (little-endian), in the style of ggml's block_q4_0.
// Specs: OCP Microscaling (MX) v1.0 (MXFP4, MXFP8), NVIDIA NVFP4, GPTQ/AWQ-style INT4 groups.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qforge {

// Every 4-bit block packs two codes per byte: byte i holds element 2i in its LOW nibble
// (bits 0..3) and element 2i+1 in its HIGH nibble (bits 4..7).
//   qs[i] = (code[2i] & 0xF) | (code[2i+1] << 4)
// A row whose length is not a multiple of the block size is padded with zeros up to a whole
// block; the padding quantizes like any 0.0 (code 0; the zero point for UINT4) and
// dequantization never returns it.

// INT4 symmetric group of G elements (W4A16 RTN / AWQ / GPTQ without zero point).
//   bytes [0, 2)        scale: F16 or BF16 bits (QuantSpec::scale_type), little-endian
//   bytes [2, 2 + G/2)  codes: signed 4-bit two's complement (-8..7), low nibble first
//   x[i] = code[i] * scale
template <int G>
struct BlockInt4 {
  static_assert(G >= 2 && G % 2 == 0, "INT4 groups hold an even number of elements");
  static constexpr int kGroupSize = G;
  uint16_t scale;
  uint8_t qs[G / 2];
};
static_assert(sizeof(BlockInt4<32>) == 18);
static_assert(sizeof(BlockInt4<64>) == 34);
static_assert(sizeof(BlockInt4<128>) == 66);

// UINT4 asymmetric group of G elements (AWQ / GPTQ with zero point).
//   bytes [0, 2)        scale: F16 or BF16 bits, little-endian
//   byte  2             zero point, 0..15
//   byte  3             reserved, always 0 (keeps the codes 2-byte aligned)
//   bytes [4, 4 + G/2)  codes: unsigned 4-bit (0..15), low nibble first
//   x[i] = (code[i] - zero) * scale
template <int G>
struct BlockUint4 {
  static_assert(G >= 2 && G % 2 == 0, "UINT4 groups hold an even number of elements");
  static constexpr int kGroupSize = G;
  uint16_t scale;
  uint8_t zero;
  uint8_t reserved;
  uint8_t qs[G / 2];
};
static_assert(sizeof(BlockUint4<32>) == 20);
static_assert(sizeof(BlockUint4<64>) == 36);
static_assert(sizeof(BlockUint4<128>) == 68);

// Byte size of one INT4 / UINT4 group of any even size g (the layouts above, generalised).
constexpr int64_t int4_block_bytes(int64_t g) {
  return 2 + g / 2;
}
constexpr int64_t uint4_block_bytes(int64_t g) {
  return 4 + g / 2;
}

// NVFP4: 16 E2M1 codes and one E4M3FN block scale (the FP32 tensor scale is stored once per
// tensor, outside the blocks).
//   bytes [0, 8)  codes: E2M1 (sign bit 3, exponent bits 2..1, mantissa bit 0), low nibble first
//   byte  8       block scale, E4M3FN bits
//   x[i] = e2m1(code[i]) * (e4m3fn(scale_e4m3) * tensor_scale)
struct BlockNvfp4 {
  static constexpr int kBlockSize = 16;
  uint8_t qs[8];
  uint8_t scale_e4m3;
};
static_assert(sizeof(BlockNvfp4) == 9);

// MXFP4 (OCP MX v1.0): 32 E2M1 codes sharing one E8M0 scale.
//   byte  0        scale, E8M0 bits: 2^(scale_e8m0 - 127)
//   bytes [1, 17)  codes: E2M1, low nibble first
//   x[i] = e2m1(code[i]) * 2^(scale_e8m0 - 127)
struct BlockMxfp4 {
  static constexpr int kBlockSize = 32;
  uint8_t scale_e8m0;
  uint8_t qs[16];
};
static_assert(sizeof(BlockMxfp4) == 17);

// MXFP8 (OCP MX v1.0): 32 FP8 codes (E4M3FN; E5M2 when QuantSpec::fp8 says so) sharing one E8M0
// scale.
//   byte  0        scale, E8M0 bits
//   bytes [1, 33)  codes, one byte per element, element i at byte 1 + i
//   x[i] = fp8(code[i]) * 2^(scale_e8m0 - 127)
struct BlockMxfp8 {
  static constexpr int kBlockSize = 32;
  uint8_t scale_e8m0;
  uint8_t qs[32];
};
static_assert(sizeof(BlockMxfp8) == 33);

// Tile edge of FP8_BLOCK128 (DeepSeek-V3 style): one FP32 scale per 128x128 tile.
inline constexpr int64_t kFp8BlockTile = 128;

}  // namespace qforge
