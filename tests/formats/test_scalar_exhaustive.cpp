// Exhaustive bit-exactness of the scalar codecs against the independent oracle (scalar_oracle.h):
// every F16 and BF16 input, both saturation modes, every target format; every code's decoding;
// random FP32 inputs; every rounding midpoint and its float neighbours; F16C as a hardware peer.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "formats/scalar_oracle.h"
#include "qforge/formats/scalar.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace qforge {
namespace {

constexpr Saturation kModes[] = {Saturation::kSatFinite, Saturation::kNonSat};
constexpr int kMaxReported = 8;  // per test and format: enough to see the pattern

const char* mode_name(Saturation s) {
  return s == Saturation::kSatFinite ? "satfinite" : "nonsat";
}

int hex_digits(ScalarFormat f) {
  return (scalar_format_info(f).bits + 3) / 4;
}

// The specialised codec for (format, mode), where one exists.
std::optional<uint16_t> hot_path_encode(ScalarFormat f, float x, Saturation s) {
  switch (f) {
    case ScalarFormat::F16:
      return float_to_f16(x, s);
    case ScalarFormat::BF16:
      return float_to_bf16(x, s);
    case ScalarFormat::E4M3FN:
      return float_to_e4m3fn(x, s);
    case ScalarFormat::E5M2:
      return float_to_e5m2(x, s);
    case ScalarFormat::E2M1:
      return float_to_e2m1(x);
    case ScalarFormat::E8M0:
      if (s == Saturation::kSatFinite) return float_to_e8m0(x);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<float> hot_path_decode(ScalarFormat f, uint16_t code) {
  switch (f) {
    case ScalarFormat::F16:
      return f16_to_float(code);
    case ScalarFormat::BF16:
      return bf16_to_float(code);
    case ScalarFormat::E4M3FN:
      return e4m3fn_to_float(static_cast<uint8_t>(code));
    case ScalarFormat::E5M2:
      return e5m2_to_float(static_cast<uint8_t>(code));
    case ScalarFormat::E2M1:
      return e2m1_to_float(static_cast<uint8_t>(code));
    case ScalarFormat::E8M0:
      return e8m0_to_float(static_cast<uint8_t>(code));
    default:
      return std::nullopt;
  }
}

// Checks one input against the oracle through the generic and the specialised encoder, counting
// mismatches and reporting the first few with format, mode, input bits, got and expected in hex.
class EncodeChecker {
 public:
  explicit EncodeChecker(ScalarFormat target) : target_(target) {}

  // `input` describes x's origin for the message, e.g. "f16 0x3c00".
  void check(float x, Saturation s, const std::string& input_kind, uint32_t input_bits,
             int input_hex_digits) {
    const uint16_t expected = oracle::encode(target_, static_cast<double>(x), s);
    const uint16_t generic = encode_scalar(target_, x, s);
    if (generic != expected)
      report("encode_scalar", generic, expected, x, s, input_kind, input_bits, input_hex_digits);
    if (auto hot = hot_path_encode(target_, x, s); hot && *hot != expected) {
      report("hot path", *hot, expected, x, s, input_kind, input_bits, input_hex_digits);
    }
    ++checked_;
  }

  void finish() const {
    EXPECT_EQ(mismatches_, 0) << mismatches_ << " mismatches in " << checked_ << " encodes to "
                              << scalar_format_info(target_).name;
  }

 private:
  void report(const char* codec, uint16_t got, uint16_t expected, float x, Saturation s,
              const std::string& input_kind, uint32_t input_bits, int input_hex_digits) {
    if (mismatches_++ >= kMaxReported) return;
    const int digits = hex_digits(target_);
    ADD_FAILURE() << fmt::format(
        "{} {} {}: input {} 0x{:0{}x} ({:g}): got 0x{:0{}x}, expected 0x{:0{}x}", codec,
        scalar_format_info(target_).name, mode_name(s), input_kind, input_bits, input_hex_digits,
        static_cast<double>(x), got, digits, expected, digits);
  }

  ScalarFormat target_;
  int mismatches_ = 0;
  int64_t checked_ = 0;
};

class ScalarExhaustive : public ::testing::TestWithParam<ScalarFormat> {};

TEST_P(ScalarExhaustive, EveryF16InputEncodesLikeOracle) {
  EncodeChecker checker(GetParam());
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float x = static_cast<float>(oracle::decode_f16_bits(static_cast<uint16_t>(bits)));
    for (Saturation s : kModes) checker.check(x, s, "f16", bits, 4);
  }
  checker.finish();
}

TEST_P(ScalarExhaustive, EveryBF16InputEncodesLikeOracle) {
  EncodeChecker checker(GetParam());
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float x = static_cast<float>(oracle::decode_bf16_bits(static_cast<uint16_t>(bits)));
    for (Saturation s : kModes) checker.check(x, s, "bf16", bits, 4);
  }
  checker.finish();
}

// Uniform bit patterns mostly land far outside the small formats' ranges, so half the inputs
// draw their exponent from around each target's range instead.
TEST_P(ScalarExhaustive, RandomFp32InputsEncodeLikeOracle) {
  const ScalarFormat target = GetParam();
  const ScalarFormatInfo& info = scalar_format_info(target);
  const int lowest = std::max(1, std::ilogb(info.min_subnormal) - 3 + 127);
  const int highest = std::min(254, std::ilogb(info.max_finite) + 3 + 127);
  std::mt19937 rng(0x5ca1a8u + static_cast<unsigned>(target));
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_int_distribution<uint32_t> in_range(static_cast<uint32_t>(lowest),
                                                   static_cast<uint32_t>(highest));
  EncodeChecker checker(target);
  constexpr int kSamples = 1 << 20;
  for (int i = 0; i < kSamples; ++i) {
    uint32_t bits = any_bits(rng);
    if (i % 2 == 1) bits = (bits & 0x807FFFFFu) | (in_range(rng) << 23);
    const float x = std::bit_cast<float>(bits);
    for (Saturation s : kModes) checker.check(x, s, "f32", bits, 8);
  }
  checker.finish();
}

// Every tie between adjacent values (the virtual one above max included) and the floats either
// side of it: the inputs where rounding direction and overflow thresholds are decided.
TEST_P(ScalarExhaustive, EveryMidpointAndNeighboursEncodeLikeOracle) {
  const ScalarFormat target = GetParam();
  const std::vector<oracle::Entry>& table = oracle::positive_table(target);
  EncodeChecker checker(target);
  for (std::size_t i = 0; i + 1 < table.size(); ++i) {
    const double mid = (table[i].value + table[i + 1].value) / 2;
    const float mid_f = static_cast<float>(mid);
    ASSERT_EQ(static_cast<double>(mid_f), mid) << "midpoint not exact in float";
    for (float x : {mid_f, std::nextafter(mid_f, 0.0f), std::nextafter(mid_f, INFINITY),
                    static_cast<float>(table[i].value)}) {
      for (float signed_x : {x, -x}) {
        for (Saturation s : kModes) {
          checker.check(signed_x, s, "f32", std::bit_cast<uint32_t>(signed_x), 8);
        }
      }
    }
  }
  checker.finish();
}

TEST_P(ScalarExhaustive, EveryCodeDecodesLikeOracleAndRoundTrips) {
  const ScalarFormat f = GetParam();
  const ScalarFormatInfo& info = scalar_format_info(f);
  const int digits = hex_digits(f);
  const bool signed_nan = oracle::spec(f).specials == oracle::Specials::kIeee ||
                          oracle::spec(f).specials == oracle::Specials::kAllOnes;
  int mismatches = 0;
  for (uint32_t c = 0; c < (1u << info.bits); ++c) {
    const uint16_t code = static_cast<uint16_t>(c);
    const double expected = oracle::decode(f, code);
    const std::string where = fmt::format("{} code 0x{:0{}x}", info.name, code, digits);
    const float generic = decode_scalar(f, code);
    std::vector<std::pair<const char*, float>> decoded = {{"decode_scalar", generic}};
    if (auto hot = hot_path_decode(f, code)) {
      decoded.push_back({"hot path", *hot});
      // NaN payloads included: the two decoders agree bit for bit.
      if (std::bit_cast<uint32_t>(*hot) != std::bit_cast<uint32_t>(generic) &&
          mismatches++ < kMaxReported) {
        ADD_FAILURE() << fmt::format("{}: hot path 0x{:08x}, decode_scalar 0x{:08x}", where,
                                     std::bit_cast<uint32_t>(*hot),
                                     std::bit_cast<uint32_t>(generic));
      }
    }
    // Bits above the format's width are ignored.
    if (info.bits < 16) {
      decoded.push_back({"decode_scalar(high bits set)",
                         decode_scalar(f, static_cast<uint16_t>(code | (0xFFFFu << info.bits)))});
    }
    for (const auto& [codec, got] : decoded) {
      bool ok;
      if (std::isnan(expected)) {
        ok = std::isnan(got) &&
             (!signed_nan || std::signbit(got) == ((code >> (info.bits - 1)) & 1));
      } else {
        ASSERT_EQ(static_cast<double>(static_cast<float>(expected)), expected) << where;
        // Bit equality also checks the sign of zero.
        ok = std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(static_cast<float>(expected));
      }
      if (!ok && mismatches++ < kMaxReported) {
        ADD_FAILURE() << fmt::format("{} {}: got {:g} (0x{:08x}), expected {:g}", codec, where,
                                     static_cast<double>(got), std::bit_cast<uint32_t>(got),
                                     expected);
      }
    }
    // encode(decode(code)) == code for every code that is a number (NaN codes canonicalise;
    // saturating mode maps Inf to max, so Inf round-trips only without saturation).
    if (!std::isnan(expected)) {
      for (Saturation s : kModes) {
        if (std::isinf(expected) && s == Saturation::kSatFinite) continue;
        const uint16_t back = encode_scalar(f, generic, s);
        if (back != code && mismatches++ < kMaxReported) {
          ADD_FAILURE() << fmt::format("round trip {} {}: encode gave 0x{:0{}x}", where,
                                       mode_name(s), back, digits);
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// The published table agrees with the oracle's reading of the format definitions.
TEST_P(ScalarExhaustive, FormatInfoMatchesOracle) {
  const ScalarFormat f = GetParam();
  const ScalarFormatInfo& info = scalar_format_info(f);
  const oracle::Spec& spec = oracle::spec(f);
  EXPECT_EQ(info.format, f);
  EXPECT_EQ(info.bits, spec.bits);
  EXPECT_EQ(info.exponent_bits, spec.exponent_bits);
  EXPECT_EQ(info.mantissa_bits, spec.mantissa_bits);
  EXPECT_EQ(info.bias, spec.bias);
  EXPECT_EQ(info.max_finite, oracle::max_finite(f));
  const std::vector<oracle::Entry>& table = oracle::positive_table(f);
  const double smallest = table[0].value == 0 ? table[1].value : table[0].value;
  EXPECT_EQ(info.min_subnormal, smallest);
  EXPECT_EQ(info.has_inf, spec.specials == oracle::Specials::kIeee);
  EXPECT_EQ(info.has_nan, spec.specials != oracle::Specials::kNone);
  EXPECT_EQ(info.has_sign, spec.specials != oracle::Specials::kE8M0);
  EXPECT_EQ(info.has_negative_zero, spec.specials != oracle::Specials::kNegZero &&
                                        spec.specials != oracle::Specials::kE8M0);
  const int emin = 1 - spec.bias;
  EXPECT_EQ(info.min_normal,
            std::ldexp(1.0, spec.specials == oracle::Specials::kE8M0 ? -127 : emin));
  EXPECT_EQ(info.name,
            std::string(scalar_format_info(parse_scalar_format(info.name).value()).name));
}

INSTANTIATE_TEST_SUITE_P(Scalar, ScalarExhaustive, ::testing::ValuesIn(all_scalar_formats()),
                         [](const ::testing::TestParamInfo<ScalarFormat>& p) {
                           return std::string(scalar_format_info(p.param).name);
                         });

#if defined(__x86_64__) || defined(__i386__)
// F16C is VEX-encoded, so it also needs the OS to save AVX state; clang 14's
// __builtin_cpu_supports does not know "f16c", hence CPUID leaf 1 directly.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  return (ecx & bit_F16C) != 0 && __builtin_cpu_supports("avx");
}

__attribute__((target("f16c"))) uint16_t f16c_encode(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float f16c_decode(uint16_t h) {
  return _cvtsh_ss(h);
}
#endif

// x86 F16C (VCVTPS2PH/VCVTPH2PS) is an IEEE binary16 implementation independent of ours.
TEST(ScalarPeerF16c, MatchesHardwareConversion) {
#if defined(__x86_64__) || defined(__i386__)
  if (!cpu_has_f16c()) GTEST_SKIP() << "CPU lacks F16C";
  int mismatches = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float hw = f16c_decode(static_cast<uint16_t>(h));
    const float ours = f16_to_float(static_cast<uint16_t>(h));
    const bool same = std::isnan(hw) ? std::isnan(ours) && std::signbit(hw) == std::signbit(ours)
                                     : std::bit_cast<uint32_t>(hw) == std::bit_cast<uint32_t>(ours);
    if (!same && mismatches++ < kMaxReported) {
      ADD_FAILURE() << fmt::format("f16_to_float 0x{:04x}: got 0x{:08x}, F16C 0x{:08x}", h,
                                   std::bit_cast<uint32_t>(ours), std::bit_cast<uint32_t>(hw));
    }
  }
  std::mt19937 rng(0xf16cu);
  std::uniform_int_distribution<uint32_t> any_bits;
  for (int i = 0; i < (1 << 20); ++i) {
    uint32_t bits = any_bits(rng);
    // Half the samples near the binary16 range, where the rounding decisions are.
    if (i % 2 == 1) bits = (bits & 0x807FFFFFu) | ((100u + bits % 45u) << 23);
    const float x = std::bit_cast<float>(bits);
    const uint16_t hw = f16c_encode(x);
    const uint16_t ours = float_to_f16(x);
    // F16C keeps NaN payloads; ours canonicalises, so NaN only needs to stay a same-signed NaN.
    const bool same = std::isnan(x) ? (ours & 0x7C00) == 0x7C00 && (ours & 0x3FF) != 0 &&
                                          (ours & 0x8000) == (hw & 0x8000)
                                    : hw == ours;
    if (!same && mismatches++ < kMaxReported) {
      ADD_FAILURE() << fmt::format("float_to_f16 input f32 0x{:08x}: got 0x{:04x}, F16C 0x{:04x}",
                                   bits, ours, hw);
    }
  }
  EXPECT_EQ(mismatches, 0);
#else
  GTEST_SKIP() << "not an x86 build";
#endif
}

}  // namespace
}  // namespace qforge
