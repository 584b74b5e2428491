// Specialised hot-path scalar codecs (IEEE binary16, bfloat16, OCP OFP8 E4M3FN/E5M2, OCP MX
// E2M1/E8M0): integer-only round-to-nearest-even encoders and table or bit-shift decoders. Each
// equals the generic encode_scalar/decode_scalar of scalar_codecs.cpp bit for bit (tested
// exhaustively); integer arithmetic keeps them independent of the FP rounding and DAZ/FTZ modes.
#include <array>
#include <bit>
#include <cstdint>

#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

constexpr uint32_t kFloatAbsMask = 0x7FFFFFFFu;
constexpr uint32_t kFloatInfBits = 0x7F800000u;
constexpr uint32_t kFloatQuietNanBits = 0x7FC00000u;

// Rounds a finite float magnitude (its bits, sign cleared) to nearest-even in a format with
// kMant mantissa bits and bias kBias. Returns the magnitude code as if the exponent range had no
// top; callers compare it with their largest finite code. Inf bits give a code above every max.
template <int kMant, int kBias>
constexpr uint32_t round_magnitude_bits(uint32_t abs_bits) {
  constexpr int kEmin = 1 - kBias;
  constexpr uint32_t kMinNormalBits = static_cast<uint32_t>(kEmin + 127) << 23;
  constexpr int kShift = 23 - kMant;
  if (abs_bits >= kMinNormalBits) {
    // Rebias the exponent in place, then add just under half an ulp plus the kept LSB: the carry
    // out of the dropped bits is round-half-even, and a carry into the exponent field lands on
    // the next binade's code, exactly as the code layout needs.
    const uint32_t odd = (abs_bits >> kShift) & 1;
    const uint32_t rebias = static_cast<uint32_t>(127 - kBias) << 23;
    return (abs_bits - rebias + ((1u << (kShift - 1)) - 1) + odd) >> kShift;
  }
  // Subnormal (or zero) result: count quanta of 2^(emin - kMant) in significand * 2^exponent.
  const uint32_t exponent_field = abs_bits >> 23;
  const uint32_t significand =
      exponent_field == 0 ? abs_bits : ((abs_bits & 0x7FFFFFu) | 0x800000u);
  const int exponent = exponent_field == 0 ? -149 : static_cast<int>(exponent_field) - 150;
  const int shift = (kEmin - kMant) - exponent;  // >= 1 on this path
  if (shift > 24) return 0;                      // below half a quantum (significand < 2^24)
  const uint32_t kept = significand >> shift;
  const uint32_t rest = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1u : 0u);
}

// Float bits of a non-special minifloat magnitude code (exact: every such value fits in float).
template <int kMant, int kBias>
constexpr uint32_t magnitude_to_float_bits(uint32_t magnitude) {
  const uint32_t exponent_field = magnitude >> kMant;
  const uint32_t mantissa = magnitude & ((1u << kMant) - 1);
  if (exponent_field != 0) {
    return ((exponent_field - kBias + 127) << 23) | (mantissa << (23 - kMant));
  }
  if (mantissa == 0) return 0;
  // Subnormal: mantissa * 2^(1 - kBias - kMant); renormalise around its leading one.
  const int lead = std::bit_width(mantissa) - 1;
  const uint32_t float_exponent = static_cast<uint32_t>(lead + 1 - kBias - kMant + 127);
  return (float_exponent << 23) | ((mantissa << (23 - lead)) & 0x7FFFFFu);
}

// Quiet NaN keeping sign and payload, the same bits decode_scalar produces.
constexpr uint32_t nan_float_bits(bool negative, uint32_t mantissa, int mantissa_bits) {
  return (negative ? 0x80000000u : 0u) | kFloatQuietNanBits | (mantissa << (23 - mantissa_bits));
}

constexpr std::array<uint32_t, 256> make_e4m3fn_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t code = 0; code < 256; ++code) {
    const bool negative = (code & 0x80) != 0;
    const uint32_t magnitude = code & 0x7F;
    table[code] = magnitude == 0x7F
                      ? nan_float_bits(negative, 0x7, 3)
                      : (negative ? 0x80000000u : 0u) | magnitude_to_float_bits<3, 7>(magnitude);
  }
  return table;
}

constexpr std::array<uint32_t, 256> make_e5m2_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t code = 0; code < 256; ++code) {
    const bool negative = (code & 0x80) != 0;
    const uint32_t sign = negative ? 0x80000000u : 0u;
    const uint32_t magnitude = code & 0x7F;
    if (magnitude == 0x7C) {
      table[code] = sign | kFloatInfBits;
    } else if (magnitude > 0x7C) {
      table[code] = nan_float_bits(negative, magnitude & 0x3, 2);
    } else {
      table[code] = sign | magnitude_to_float_bits<2, 15>(magnitude);
    }
  }
  return table;
}

constexpr std::array<uint32_t, 16> make_e2m1_table() {
  std::array<uint32_t, 16> table{};
  for (uint32_t code = 0; code < 16; ++code) {
    table[code] = ((code & 0x8) ? 0x80000000u : 0u) | magnitude_to_float_bits<1, 1>(code & 0x7);
  }
  return table;
}

constexpr std::array<uint32_t, 256> kE4m3fnTable = make_e4m3fn_table();
constexpr std::array<uint32_t, 256> kE5m2Table = make_e5m2_table();
constexpr std::array<uint32_t, 16> kE2m1Table = make_e2m1_table();

static_assert(kE4m3fnTable[0x7E] == 0x43E00000u, "E4M3FN max must decode to 448");
static_assert(kE4m3fnTable[0x01] == 0x3B000000u, "E4M3FN min subnormal must decode to 2^-9");
static_assert(kE5m2Table[0x7B] == 0x47600000u, "E5M2 max must decode to 57344");
static_assert(kE2m1Table[0x7] == 0x40C00000u, "E2M1 max must decode to 6");

}  // namespace

uint16_t float_to_f16(float x, Saturation saturation) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs_bits = bits & kFloatAbsMask;
  if (abs_bits > kFloatInfBits) return sign | 0x7E00;
  uint32_t magnitude = round_magnitude_bits<10, 15>(abs_bits);
  if (magnitude > 0x7BFF) magnitude = saturation == Saturation::kSatFinite ? 0x7BFF : 0x7C00;
  return sign | static_cast<uint16_t>(magnitude);
}

float f16_to_float(uint16_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x8000) << 16;
  const uint32_t magnitude = code & 0x7FFF;
  if (magnitude >= 0x7C00) {
    if (magnitude == 0x7C00) return std::bit_cast<float>(sign | kFloatInfBits);
    return std::bit_cast<float>(nan_float_bits(sign != 0, magnitude & 0x3FF, 10));
  }
  return std::bit_cast<float>(sign | magnitude_to_float_bits<10, 15>(magnitude));
}

uint16_t float_to_bf16(float x, Saturation saturation) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs_bits = bits & kFloatAbsMask;
  if (abs_bits > kFloatInfBits) return sign | 0x7FC0;
  uint32_t magnitude = round_magnitude_bits<7, 127>(abs_bits);
  if (magnitude > 0x7F7F) magnitude = saturation == Saturation::kSatFinite ? 0x7F7F : 0x7F80;
  return sign | static_cast<uint16_t>(magnitude);
}

float bf16_to_float(uint16_t code) {
  const uint32_t magnitude = code & 0x7FFF;
  if (magnitude > 0x7F80) {
    return std::bit_cast<float>(nan_float_bits((code & 0x8000) != 0, magnitude & 0x7F, 7));
  }
  return std::bit_cast<float>(static_cast<uint32_t>(code) << 16);
}

uint8_t float_to_e4m3fn(float x, Saturation saturation) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t abs_bits = bits & kFloatAbsMask;
  if (abs_bits > kFloatInfBits) return sign | 0x7F;
  uint32_t magnitude = round_magnitude_bits<3, 7>(abs_bits);
  // No Inf: overflow is NaN unless saturating.
  if (magnitude > 0x7E) magnitude = saturation == Saturation::kSatFinite ? 0x7E : 0x7F;
  return sign | static_cast<uint8_t>(magnitude);
}

float e4m3fn_to_float(uint8_t code) {
  return std::bit_cast<float>(kE4m3fnTable[code]);
}

uint8_t float_to_e5m2(float x, Saturation saturation) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t abs_bits = bits & kFloatAbsMask;
  if (abs_bits > kFloatInfBits) return sign | 0x7E;
  uint32_t magnitude = round_magnitude_bits<2, 15>(abs_bits);
  if (magnitude > 0x7B) magnitude = saturation == Saturation::kSatFinite ? 0x7B : 0x7C;
  return sign | static_cast<uint8_t>(magnitude);
}

float e5m2_to_float(uint8_t code) {
  return std::bit_cast<float>(kE5m2Table[code]);
}

uint8_t float_to_e2m1(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 28) & 0x8);
  const uint32_t abs_bits = bits & kFloatAbsMask;
  // No Inf or NaN in E2M1: NaN, Inf and overflow all saturate to ±6 (PTX satfinite).
  if (abs_bits > kFloatInfBits) return sign | 0x7;
  const uint32_t magnitude = round_magnitude_bits<1, 1>(abs_bits);
  return sign | static_cast<uint8_t>(magnitude > 0x7 ? 0x7 : magnitude);
}

float e2m1_to_float(uint8_t code) {
  return std::bit_cast<float>(kE2m1Table[code & 0xF]);
}

uint8_t float_to_e8m0(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (bits == 0x80000000u) return 0x00;  // -0 is zero, not negative
  if ((bits >> 31) || (bits & kFloatAbsMask) > kFloatInfBits) return 0xFF;  // negative or NaN
  if (bits == kFloatInfBits) return 0xFE;  // saturating, like overflow below
  // The E8M0 code of 2^k is float's exponent field (same bias 127). The tie between 2^k and
  // 2^(k+1) is at mantissa 0x400000 and rounds up (PyTorch, ml_dtypes).
  const uint32_t exponent_field = bits >> 23;
  const uint32_t mantissa = bits & 0x7FFFFFu;
  if (exponent_field == 0) {
    // Float subnormals: mantissa * 2^-149, between codes 0 (2^-127 = mantissa 0x400000) and
    // 1 (2^-126); the tie 1.5 * 2^-127 (mantissa 0x600000) rounds up to code 1, and all below
    // 2^-127 clamps to code 0.
    return mantissa >= 0x600000u ? 0x01 : 0x00;
  }
  const bool round_up = mantissa >= 0x400000u;
  const uint32_t code = exponent_field + (round_up ? 1 : 0);
  return static_cast<uint8_t>(code > 0xFE ? 0xFE : code);
}

float e8m0_to_float(uint8_t code) {
  if (code == 0xFF) return std::bit_cast<float>(kFloatQuietNanBits);
  // 2^-127 is the float subnormal 0x00400000; every other code is float's exponent field.
  return std::bit_cast<float>(code == 0 ? 0x00400000u : static_cast<uint32_t>(code) << 23);
}

}  // namespace qforge
