// Hand-written scalar codec cases, spelled out from the specs (OCP OFP8 r1.0, AMD FNUZ, OCP MX
// v1.0, IEEE 754): saturation and overflow thresholds, special values, ties, smallest
// subnormals, E8M0 scales (MX v1.0 section 6.3), integer codecs and format-name parsing.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr Saturation kSat = Saturation::kSatFinite;
constexpr Saturation kNonSat = Saturation::kNonSat;

// One encode case: the code in each saturation mode.
struct Case {
  float x;
  uint16_t sat;
  uint16_t nonsat;
};

void expect_encodes(ScalarFormat f, std::initializer_list<Case> cases) {
  // Codes compare as hex strings so that a failure prints them in hex.
  const auto hex = [](uint16_t code) { return fmt::format("0x{:02x}", code); };
  for (const Case& c : cases) {
    const std::string input =
        fmt::format("{} input {:g} (f32 0x{:08x})", scalar_format_info(f).name,
                    static_cast<double>(c.x), std::bit_cast<uint32_t>(c.x));
    EXPECT_EQ(hex(encode_scalar(f, c.x, kSat)), hex(c.sat)) << input << " satfinite";
    EXPECT_EQ(hex(encode_scalar(f, c.x, kNonSat)), hex(c.nonsat)) << input << " nonsat";
  }
}

// Same code in both modes.
Case both(float x, uint16_t code) {
  return {x, code, code};
}

float bits_to_float(uint32_t bits) {
  return std::bit_cast<float>(bits);
}

uint32_t float_bits(float x) {
  return std::bit_cast<uint32_t>(x);
}

TEST(ScalarSpecial, E4m3fnSaturationAndSpecials) {
  const ScalarFormat f = ScalarFormat::E4M3FN;
  expect_encodes(f, {
                        both(448.0f, 0x7E),
                        both(464.0f, 0x7E),  // midpoint of 448 and (absent) 480: even
                                             // code 0x7E
                        {464.00003f, 0x7E, 0x7F},
                        {465.0f, 0x7E, 0x7F},
                        {-465.0f, 0xFE, 0xFF},
                        {480.0f, 0x7E, 0x7F},
                        {kInf, 0x7E, 0x7F},
                        {-kInf, 0xFE, 0xFF},
                        both(kNan, 0x7F),
                        both(-kNan, 0xFF),
                        both(0.0f, 0x00),
                        both(-0.0f, 0x80),
                        both(1.0f, 0x38),
                        both(0x1p-6f, 0x08),   // smallest normal
                        both(0x1p-9f, 0x01),   // smallest subnormal
                        both(0x1p-10f, 0x00),  // half of it: tie to even (zero)
                        both(0x1.8p-10f, 0x01),
                        both(-0x1p-11f, 0x80),  // negative underflow keeps its sign
                        both(0x1.8p-9f, 0x02),  // tie between 0x01 and 0x02: even
                        both(0x1.1p0f, 0x38),   // 1.0625 ties to 1.0 (mantissa 000)
                        both(0x1.3p0f, 0x3A),   // 1.1875 ties to 1.25 (mantissa 010)
                    });
  EXPECT_EQ(decode_scalar(f, 0x7E), 448.0f);
  EXPECT_EQ(decode_scalar(f, 0xFE), -448.0f);
  EXPECT_EQ(decode_scalar(f, 0x01), 0x1p-9f);
  EXPECT_EQ(decode_scalar(f, 0x08), 0x1p-6f);
  EXPECT_TRUE(std::isnan(decode_scalar(f, 0x7F)));
  EXPECT_TRUE(std::isnan(decode_scalar(f, 0xFF)));
  EXPECT_TRUE(std::signbit(decode_scalar(f, 0x80)));
  EXPECT_EQ(decode_scalar(f, 0x80), 0.0f);
  // Specialised codec defaults to saturating, as FP8 quantizers do.
  EXPECT_EQ(float_to_e4m3fn(1000.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3fn(1000.0f, kNonSat), 0x7F);
  EXPECT_EQ(e4m3fn_to_float(0x38), 1.0f);
}

TEST(ScalarSpecial, E4m3fnuzSaturationAndSpecials) {
  const ScalarFormat f = ScalarFormat::E4M3FNUZ;
  expect_encodes(f, {
                        both(240.0f, 0x7F),
                        both(247.0f, 0x7F),
                        {248.0f, 0x7F, 0x80},  // tie with the absent 256 (even): overflow
                        {kInf, 0x7F, 0x80},
                        {-kInf, 0xFF, 0x80},
                        {-1000.0f, 0xFF, 0x80},
                        both(kNan, 0x80),
                        both(-kNan, 0x80),
                        both(-0.0f, 0x00),  // no -0
                        both(-0x1p-12f, 0x00),
                        both(1.0f, 0x40),
                        both(-1.0f, 0xC0),
                        both(0x1p-10f, 0x01),  // smallest subnormal
                        both(0x1p-7f, 0x08),   // smallest normal
                    });
  EXPECT_TRUE(std::isnan(decode_scalar(f, 0x80)));
  EXPECT_EQ(float_bits(decode_scalar(f, 0x00)), 0u);
  EXPECT_EQ(decode_scalar(f, 0x7F), 240.0f);
  EXPECT_EQ(decode_scalar(f, 0xFF), -240.0f);
  EXPECT_EQ(decode_scalar(f, 0x81), -0x1p-10f);
}

TEST(ScalarSpecial, E5m2SaturationAndSpecials) {
  const ScalarFormat f = ScalarFormat::E5M2;
  expect_encodes(f, {
                        both(57344.0f, 0x7B),
                        both(61439.0f, 0x7B),
                        {61440.0f, 0x7B, 0x7C},  // tie with 65536 (even): overflow
                        {-61440.0f, 0xFB, 0xFC},
                        {kInf, 0x7B, 0x7C},
                        {-kInf, 0xFB, 0xFC},
                        both(kNan, 0x7E),
                        both(-kNan, 0xFE),
                        both(-0.0f, 0x80),
                        both(1.0f, 0x3C),
                        both(0x1p-16f, 0x01),  // smallest subnormal
                        both(0x1p-17f, 0x00),
                        both(0x1p-14f, 0x04),  // smallest normal
                    });
  EXPECT_EQ(decode_scalar(f, 0x7C), kInf);
  EXPECT_EQ(decode_scalar(f, 0xFC), -kInf);
  for (uint16_t nan : {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}) {
    EXPECT_TRUE(std::isnan(decode_scalar(f, nan))) << nan;
  }
  EXPECT_EQ(decode_scalar(f, 0x7B), 57344.0f);
  EXPECT_EQ(float_to_e5m2(1e6f), 0x7B);
  EXPECT_EQ(float_to_e5m2(1e6f, kNonSat), 0x7C);
  EXPECT_EQ(e5m2_to_float(0x01), 0x1p-16f);
}

TEST(ScalarSpecial, E5m2fnuzSaturationAndSpecials) {
  const ScalarFormat f = ScalarFormat::E5M2FNUZ;
  expect_encodes(f, {
                        both(57344.0f, 0x7F),
                        {61440.0f, 0x7F, 0x80},
                        {kInf, 0x7F, 0x80},
                        both(kNan, 0x80),
                        both(-0.0f, 0x00),
                        both(1.0f, 0x40),
                        both(0x1p-17f, 0x01),  // smallest subnormal
                        both(-0x1p-18f, 0x00),
                    });
  EXPECT_TRUE(std::isnan(decode_scalar(f, 0x80)));
  EXPECT_EQ(decode_scalar(f, 0xFF), -57344.0f);
}

TEST(ScalarSpecial, E2m1AllCodesAndTies) {
  const float values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  for (uint16_t code = 0; code < 16; ++code) {
    EXPECT_EQ(float_bits(decode_scalar(ScalarFormat::E2M1, code)), float_bits(values[code]))
        << code;
    EXPECT_EQ(float_bits(e2m1_to_float(static_cast<uint8_t>(code))), float_bits(values[code]));
    EXPECT_EQ(encode_scalar(ScalarFormat::E2M1, values[code], kNonSat), code);
  }
  // No Inf or NaN: everything out of range saturates in both modes.
  expect_encodes(ScalarFormat::E2M1, {
                                         both(0.25f, 0x0),  // tie 0 / 0.5: even code 0
                                         both(0.26f, 0x1),
                                         both(0.75f, 0x2),  // tie 0.5 / 1: code 2
                                         both(1.25f, 0x2),  // tie 1 / 1.5: code 2
                                         both(1.75f, 0x4),  // tie 1.5 / 2: code 4
                                         both(2.5f, 0x4),   // tie 2 / 3: code 4 (2.0)
                                         both(3.5f, 0x6),   // tie 3 / 4: code 6 (4.0)
                                         both(5.0f, 0x6),   // tie 4 / 6: code 6 (4.0)
                                         both(5.01f, 0x7),
                                         both(7.0f, 0x7),  // tie 6 / (8): overflow, saturates
                                         both(1e30f, 0x7),
                                         both(kInf, 0x7),
                                         both(-kInf, 0xF),
                                         both(kNan, 0x7),
                                         both(-kNan, 0xF),
                                         both(-0.25f, 0x8),  // -0
                                         both(-2.5f, 0xC),
                                     });
  EXPECT_EQ(float_to_e2m1(5.0f), 0x6);
  EXPECT_EQ(float_to_e2m1(-7.0f), 0xF);
  // A nibble taken from a packed byte decodes by its low four bits.
  EXPECT_EQ(decode_scalar(ScalarFormat::E2M1, 0xA7), 6.0f);
  EXPECT_EQ(e2m1_to_float(0xA7), 6.0f);
}

TEST(ScalarSpecial, Fp6Formats) {
  expect_encodes(ScalarFormat::E2M3, {
                                         both(7.5f, 0x1F),
                                         both(7.75f, 0x1F),  // overflow saturates: no Inf/NaN
                                         both(kInf, 0x1F),
                                         both(kNan, 0x1F),
                                         both(-kNan, 0x3F),
                                         both(-0.0f, 0x20),
                                         both(1.0f, 0x08),
                                         both(0.125f, 0x01),  // smallest subnormal
                                         both(0.0625f, 0x00),
                                     });
  expect_encodes(ScalarFormat::E3M2,
                 {
                     both(28.0f, 0x1F), both(30.0f, 0x1F), both(-1e9f, 0x3F), both(1.0f, 0x0C),
                     both(0.0625f, 0x01),  // smallest subnormal
                     both(0.25f, 0x04),    // smallest normal
                 });
  EXPECT_EQ(decode_scalar(ScalarFormat::E2M3, 0x1F), 7.5f);
  EXPECT_EQ(decode_scalar(ScalarFormat::E3M2, 0x3F), -28.0f);
}

TEST(ScalarSpecial, E8m0PowersOfTwo) {
  expect_encodes(ScalarFormat::E8M0, {
                                         both(1.0f, 0x7F),
                                         both(1.5f, 0x80),         // tie 1 (0x7F) / 2 (0x80): up
                                         both(3.0f, 0x81),         // tie 2 (0x80) / 4 (0x81): up
                                         both(6.0f, 0x82),         // tie 4 (0x81) / 8 (0x82): up
                                         both(0.75f, 0x7F),        // tie 0.5 / 1: up
                                         both(0x1.8p-126f, 0x02),  // tie 2^-126 / 2^-125: up
                                         both(1.49f, 0x7F),
                                         both(1.51f, 0x80),
                                         both(0.0f, 0x00),
                                         both(-0.0f, 0x00),
                                         both(-1.0f, 0xFF),
                                         both(-0x1p-140f, 0xFF),
                                         both(-kInf, 0xFF),
                                         both(kNan, 0xFF),
                                         both(0x1p-127f, 0x00),
                                         both(0x1p-149f, 0x00),  // below 2^-127 clamps up
                                         both(0x1p-126f, 0x01),
                                         both(0x1.8p-127f, 0x01),  // tie 0x00 / 0x01: up
                                         both(0x1.7ffffcp-127f, 0x00),
                                         both(0x1p127f, 0xFE),
                                         {0x1.8p127f, 0xFE, 0xFF},  // tie up to 2^128: overflow
                                         {0x1.800002p127f, 0xFE, 0xFF},
                                         {kInf, 0xFE, 0xFF},
                                     });
  EXPECT_EQ(decode_scalar(ScalarFormat::E8M0, 0x00), 0x1p-127f);
  EXPECT_EQ(decode_scalar(ScalarFormat::E8M0, 0x7F), 1.0f);
  EXPECT_EQ(decode_scalar(ScalarFormat::E8M0, 0xFE), 0x1p127f);
  EXPECT_TRUE(std::isnan(decode_scalar(ScalarFormat::E8M0, 0xFF)));
  EXPECT_EQ(float_to_e8m0(kInf), 0xFE);
  EXPECT_EQ(float_to_e8m0(1.5f), 0x80);
  EXPECT_EQ(e8m0_to_float(0x00), 0x1p-127f);
  EXPECT_TRUE(std::isnan(e8m0_to_float(0xFF)));
}

TEST(ScalarSpecial, F16RoundingAndOverflow) {
  const ScalarFormat f = ScalarFormat::F16;
  expect_encodes(f, {
                        both(65504.0f, 0x7BFF),
                        both(65519.0f, 0x7BFF),
                        {65520.0f, 0x7BFF, 0x7C00},  // tie with 65536 (even): overflow
                        {kInf, 0x7BFF, 0x7C00},
                        {-kInf, 0xFBFF, 0xFC00},
                        both(kNan, 0x7E00),
                        both(-kNan, 0xFE00),
                        both(bits_to_float(0x7F800001), 0x7E00),  // signalling NaN stays NaN
                        both(1.0f, 0x3C00),
                        both(1.0f + 0x1p-11f, 0x3C00),      // tie: even mantissa 0
                        both(1.0f + 3 * 0x1p-11f, 0x3C02),  // tie: even mantissa 2
                        both(0x1p-24f, 0x0001),             // smallest subnormal
                        both(0x1p-25f, 0x0000),             // tie with zero
                        both(0x1.8p-25f, 0x0001),
                        both(-0x1p-26f, 0x8000),
                        both(0x1.ffep-15f, 0x0400),  // 1023.75 quanta: up out of the subnormals
                    });
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);  // default: IEEE cast overflows to Inf
  EXPECT_EQ(float_to_f16(65520.0f, kSat), 0x7BFF);
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_float(0xFC00), -kInf);
}

TEST(ScalarSpecial, Bf16RoundingAndOverflow) {
  const ScalarFormat f = ScalarFormat::BF16;
  const float flt_max = std::numeric_limits<float>::max();
  expect_encodes(f, {
                        both(1.0f, 0x3F80),
                        both(1.0f + 0x1p-8f, 0x3F80),      // tie: even
                        both(1.0f + 3 * 0x1p-8f, 0x3F82),  // tie: even
                        both(0x1.fep127f, 0x7F7F),
                        both(bits_to_float(0x7F7F7FFF), 0x7F7F),
                        {bits_to_float(0x7F7F8000), 0x7F7F, 0x7F80},  // tie with 2^128: overflow
                        {flt_max, 0x7F7F, 0x7F80},
                        {-kInf, 0xFF7F, 0xFF80},
                        both(kNan, 0x7FC0),
                        both(bits_to_float(0x7F800001), 0x7FC0),  // not truncated to Inf
                        both(bits_to_float(0xFF800001), 0xFFC0),
                        both(bits_to_float(0x00008000), 0x0000),  // float subnormal tie
                        both(bits_to_float(0x00018000), 0x0002),
                        both(bits_to_float(0x00010001), 0x0001),
                        both(bits_to_float(0x807FFFFF), 0x8080),  // up into the normals
                    });
  EXPECT_EQ(float_to_bf16(flt_max), 0x7F80);
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(float_bits(bf16_to_float(0x0001)), 0x00010000u);
}

TEST(ScalarSpecial, E8m0ScaleForAmax) {
  EXPECT_EQ(e8m0_scale_for_amax(6.0f, 2), 127);    // E2M1: 2^(2 - 2) = 1
  EXPECT_EQ(e8m0_scale_for_amax(448.0f, 8), 127);  // E4M3FN: 2^(8 - 8)
  EXPECT_EQ(e8m0_scale_for_amax(1.0f, 2), 125);
  EXPECT_EQ(e8m0_scale_for_amax(7.99f, 2), 127);
  EXPECT_EQ(e8m0_scale_for_amax(8.0f, 2), 128);
  EXPECT_EQ(e8m0_scale_for_amax(0x1.fffffep-1f, 2), 124);  // floor(log2) = -1, not 0
  EXPECT_EQ(e8m0_scale_for_amax(16777215.0f, 2), 148);     // 2^24 - 1: floor(log2) = 23
  EXPECT_EQ(e8m0_scale_for_amax(-6.0f, 2), 127);           // sign ignored
  EXPECT_EQ(e8m0_scale_for_amax(0.0f, 2), 0x00);
  EXPECT_EQ(e8m0_scale_for_amax(0x1p-140f, 2), 0x00);  // clamped low
  EXPECT_EQ(e8m0_scale_for_amax(std::numeric_limits<float>::max(), 2), 252);
  EXPECT_EQ(e8m0_scale_for_amax(std::numeric_limits<float>::max(), -1), 0xFE);  // clamped high
  EXPECT_EQ(e8m0_scale_for_amax(kInf, 2), 0xFE);
  EXPECT_EQ(e8m0_scale_for_amax(kNan, 2), 0xFF);
}

TEST(ScalarSpecial, IntegerCodecs) {
  // INT8: symmetric narrow range, ties to even.
  EXPECT_EQ(quantize_int8(2.5f, 1.0f), 2);
  EXPECT_EQ(quantize_int8(3.5f, 1.0f), 4);
  EXPECT_EQ(quantize_int8(-2.5f, 1.0f), -2);
  EXPECT_EQ(quantize_int8(127.4f, 1.0f), 127);
  EXPECT_EQ(quantize_int8(200.0f, 1.0f), 127);
  EXPECT_EQ(quantize_int8(-127.5f, 1.0f), -127);  // never -128
  EXPECT_EQ(quantize_int8(-1e30f, 1.0f), -127);
  EXPECT_EQ(quantize_int8(0.3f, 0.1f), 3);  // 0.3f / 0.1f = 3.0000002f
  EXPECT_EQ(quantize_int8(1.0f, 0.0f), 127);
  EXPECT_EQ(quantize_int8(-1.0f, 0.0f), -127);
  EXPECT_EQ(quantize_int8(0.0f, 0.0f), 0);
  EXPECT_EQ(quantize_int8(kNan, 1.0f), 0);
  // INT4: [-8, 7].
  EXPECT_EQ(quantize_int4(7.4f, 1.0f), 7);
  EXPECT_EQ(quantize_int4(7.5f, 1.0f), 7);
  EXPECT_EQ(quantize_int4(-8.5f, 1.0f), -8);
  EXPECT_EQ(quantize_int4(-9.0f, 1.0f), -8);
  EXPECT_EQ(quantize_int4(2.5f, 1.0f), 2);
  EXPECT_EQ(quantize_int4(-0.5f, 1.0f), 0);
  EXPECT_EQ(quantize_int4(1.5f, 0.5f), 3);
  // UINT4 with a zero point: [0, 15].
  EXPECT_EQ(quantize_uint4(0.0f, 1.0f, 8), 8);
  EXPECT_EQ(quantize_uint4(2.5f, 1.0f, 8), 10);
  EXPECT_EQ(quantize_uint4(-8.0f, 1.0f, 8), 0);
  EXPECT_EQ(quantize_uint4(-9.0f, 1.0f, 8), 0);
  EXPECT_EQ(quantize_uint4(7.0f, 1.0f, 8), 15);
  EXPECT_EQ(quantize_uint4(8.0f, 1.0f, 8), 15);
  EXPECT_EQ(quantize_uint4(-1.0f, 1.0f, 0), 0);
  EXPECT_EQ(quantize_uint4(1e30f, 1.0f, 0), 15);
  EXPECT_EQ(quantize_uint4(kNan, 1.0f, 8), 8);
  EXPECT_EQ(dequantize_int(10, 0.5f, 8), 1.0f);
  EXPECT_EQ(dequantize_int(-127, 2.0f), -254.0f);
}

TEST(ScalarSpecial, ParseFormatNamesAndAliases) {
  const struct {
    const char* name;
    ScalarFormat format;
  } cases[] = {
      {"f16", ScalarFormat::F16},
      {"fp16", ScalarFormat::F16},
      {"HALF", ScalarFormat::F16},
      {"bf16", ScalarFormat::BF16},
      {"BFloat16", ScalarFormat::BF16},
      {"fp8", ScalarFormat::E4M3FN},
      {"FP8_E4M3", ScalarFormat::E4M3FN},
      {"float8_e4m3fn", ScalarFormat::E4M3FN},
      {"e4m3fn", ScalarFormat::E4M3FN},
      {"e4m3fnuz", ScalarFormat::E4M3FNUZ},
      {"float8_e4m3fnuz", ScalarFormat::E4M3FNUZ},
      {"fp8-e5m2", ScalarFormat::E5M2},
      {"e5m2fnuz", ScalarFormat::E5M2FNUZ},
      {"fp6_e2m3", ScalarFormat::E2M3},
      {"e3m2", ScalarFormat::E3M2},
      {"fp4", ScalarFormat::E2M1},
      {"nvfp4_e2m1", ScalarFormat::E2M1},
      {"float4_e2m1fn", ScalarFormat::E2M1},
      {"e8m0", ScalarFormat::E8M0},
      {"UE8M0", ScalarFormat::E8M0},
  };
  for (const auto& c : cases) {
    auto parsed = parse_scalar_format(c.name);
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.error().to_string();
    EXPECT_EQ(*parsed, c.format) << c.name;
  }
  for (const char* bad : {"fp9", "", "e4m3fnx", "int4"}) {
    auto parsed = parse_scalar_format(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    const std::string& message = parsed.error().message();
    EXPECT_NE(message.find(std::string("'") + bad + "'"), std::string::npos) << message;
    for (ScalarFormat f : all_scalar_formats()) {
      EXPECT_NE(message.find(scalar_format_info(f).name), std::string::npos) << message;
    }
  }
}

TEST(ScalarSpecial, AllFormatsListedInEnumOrder) {
  auto formats = all_scalar_formats();
  ASSERT_EQ(formats.size(), 10u);
  for (std::size_t i = 0; i < formats.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(formats[i]), i);
    EXPECT_EQ(scalar_format_info(formats[i]).format, formats[i]);
  }
}

}  // namespace
}  // namespace qforge
