// Independent reference for the scalar codecs, written from the format definitions (IEEE 754
// binary16, bfloat16, OCP OFP8 r1.0, AMD FNUZ FP8, OCP MX v1.0) and sharing no code with src/:
// codes decode by formula in double; encoding is a search over the sorted table of all values.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "qforge/formats/scalar.h"

namespace qforge::oracle {

// How a format spends its special codes.
enum class Specials {
  kIeee,     // exponent all ones: mantissa 0 = ±Inf, else NaN (F16, BF16, E5M2)
  kAllOnes,  // S.1111.111 = NaN, no Inf (E4M3FN)
  kNegZero,  // the code "-0" (0x80) is the only NaN, no Inf, no -0 (FNUZ)
  kNone,     // every code is a finite number (E2M3, E3M2, E2M1)
  kE8M0,     // unsigned powers of two 2^(code - 127), 0xFF = NaN
};

struct Spec {
  int bits;
  int exponent_bits;
  int mantissa_bits;
  int bias;
  Specials specials;
  uint16_t nan_code;  // canonical positive NaN code as the API documents it
};

inline const Spec& spec(ScalarFormat f) {
  static const Spec kF16{16, 5, 10, 15, Specials::kIeee, 0x7E00};
  static const Spec kBF16{16, 8, 7, 127, Specials::kIeee, 0x7FC0};
  static const Spec kE4M3FN{8, 4, 3, 7, Specials::kAllOnes, 0x7F};
  static const Spec kE4M3FNUZ{8, 4, 3, 8, Specials::kNegZero, 0x80};
  static const Spec kE5M2{8, 5, 2, 15, Specials::kIeee, 0x7E};
  static const Spec kE5M2FNUZ{8, 5, 2, 16, Specials::kNegZero, 0x80};
  static const Spec kE2M3{6, 2, 3, 1, Specials::kNone, 0};
  static const Spec kE3M2{6, 3, 2, 3, Specials::kNone, 0};
  static const Spec kE2M1{4, 2, 1, 1, Specials::kNone, 0};
  static const Spec kE8M0{8, 8, 0, 127, Specials::kE8M0, 0xFF};
  switch (f) {
    case ScalarFormat::F16:
      return kF16;
    case ScalarFormat::BF16:
      return kBF16;
    case ScalarFormat::E4M3FN:
      return kE4M3FN;
    case ScalarFormat::E4M3FNUZ:
      return kE4M3FNUZ;
    case ScalarFormat::E5M2:
      return kE5M2;
    case ScalarFormat::E5M2FNUZ:
      return kE5M2FNUZ;
    case ScalarFormat::E2M3:
      return kE2M3;
    case ScalarFormat::E3M2:
      return kE3M2;
    case ScalarFormat::E2M1:
      return kE2M1;
    case ScalarFormat::E8M0:
      return kE8M0;
  }
  return kF16;
}

// The value a code stands for, by the textbook formula:
// normal (-1)^s * 2^(E - bias) * (1 + M / 2^m), subnormal (-1)^s * 2^(1 - bias) * (M / 2^m).
inline double decode(ScalarFormat f, uint16_t code) {
  const Spec& s = spec(f);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (s.specials == Specials::kE8M0) return code == 0xFF ? nan : std::ldexp(1.0, code - 127);
  const int sign = (code >> (s.bits - 1)) & 1;
  const int e = (code >> s.mantissa_bits) & ((1 << s.exponent_bits) - 1);
  const int m = code & ((1 << s.mantissa_bits) - 1);
  const int e_all_ones = (1 << s.exponent_bits) - 1;
  const int m_all_ones = (1 << s.mantissa_bits) - 1;
  if (s.specials == Specials::kIeee && e == e_all_ones) {
    if (m != 0) return nan;
    return sign ? -std::numeric_limits<double>::infinity()
                : std::numeric_limits<double>::infinity();
  }
  if (s.specials == Specials::kAllOnes && e == e_all_ones && m == m_all_ones) return nan;
  if (s.specials == Specials::kNegZero && sign == 1 && e == 0 && m == 0) return nan;
  const double scale = std::ldexp(1.0, -s.mantissa_bits);
  const double magnitude =
      e == 0 ? std::ldexp(m * scale, 1 - s.bias) : std::ldexp(1.0 + m * scale, e - s.bias);
  return sign ? -magnitude : magnitude;
}

inline double decode_f16_bits(uint16_t bits) {
  return decode(ScalarFormat::F16, bits);
}
inline double decode_bf16_bits(uint16_t bits) {
  return decode(ScalarFormat::BF16, bits);
}

struct Entry {
  double value;
  uint16_t code;
};

// All non-negative finite values of a format in increasing order, then one virtual entry an
// ulp above the largest (the first value an unbounded exponent would add), whose code is the
// next integer, so its parity is what ties-to-even sees.
inline const std::vector<Entry>& positive_table(ScalarFormat f) {
  static std::array<std::vector<Entry>, 10> tables;
  std::vector<Entry>& table = tables[static_cast<int>(f)];
  if (!table.empty()) return table;
  const Spec& s = spec(f);
  for (uint32_t code = 0; code < (1u << s.bits); ++code) {
    double v = decode(f, static_cast<uint16_t>(code));
    if (std::isfinite(v) && !std::signbit(v)) table.push_back({v, static_cast<uint16_t>(code)});
  }
  std::sort(table.begin(), table.end(),
            [](const Entry& a, const Entry& b) { return a.value < b.value; });
  const Entry max = table.back();
  int exponent = 0;
  std::frexp(max.value, &exponent);  // max in [2^(exponent-1), 2^exponent)
  const double ulp = std::ldexp(1.0, exponent - 1 - s.mantissa_bits);
  table.push_back({max.value + ulp, static_cast<uint16_t>(max.code + 1)});
  return table;
}

inline double max_finite(ScalarFormat f) {
  const auto& t = positive_table(f);
  return t[t.size() - 2].value;
}

// The code the API must produce for x (any double; the tests pass values exact in float).
inline uint16_t encode(ScalarFormat f, double x, Saturation saturation) {
  const Spec& s = spec(f);
  const std::vector<Entry>& table = positive_table(f);
  const Entry& max = table[table.size() - 2];
  const bool has_inf = s.specials == Specials::kIeee;
  const bool has_nan = s.specials != Specials::kNone;
  const bool has_negative_zero = s.specials != Specials::kNegZero && s.specials != Specials::kE8M0;

  if (s.specials == Specials::kE8M0) {
    if (std::isnan(x) || x < 0) return 0xFF;  // -0 is not < 0: it is zero
  }
  const bool negative = std::signbit(x) && s.specials != Specials::kE8M0;
  const uint16_t sign = negative ? static_cast<uint16_t>(1u << (s.bits - 1)) : 0;

  const auto with_sign = [&](uint16_t magnitude_code) -> uint16_t {
    if (magnitude_code == 0 && !has_negative_zero) return 0;
    return sign | magnitude_code;
  };
  const auto nan_code = [&]() -> uint16_t {
    if (!has_nan) return sign | max.code;
    if (s.specials == Specials::kNegZero || s.specials == Specials::kE8M0) return s.nan_code;
    return sign | s.nan_code;
  };
  const auto overflow = [&]() -> uint16_t {
    if (saturation == Saturation::kSatFinite || (!has_inf && !has_nan)) return sign | max.code;
    if (has_inf) {
      // The Inf code: exponent all ones, mantissa zero.
      return sign | static_cast<uint16_t>(((1u << s.exponent_bits) - 1) << s.mantissa_bits);
    }
    return nan_code();
  };

  if (std::isnan(x)) return nan_code();
  const double a = std::fabs(x);
  if (std::isinf(a)) return overflow();
  if (a < table.front().value) return with_sign(table.front().code);  // only E8M0: below 2^-127
  // Last entry <= a.
  auto it = std::upper_bound(table.begin(), table.end(), a,
                             [](double v, const Entry& e) { return v < e.value; });
  std::size_t lo = static_cast<std::size_t>(it - table.begin()) - 1;
  std::size_t chosen = lo;
  if (table[lo].value != a) {
    if (lo + 1 == table.size()) return overflow();  // beyond the virtual value
    // Midpoints of these short dyadic values are exact in double.
    const double mid = (table[lo].value + table[lo + 1].value) / 2;
    if (a > mid) {
      chosen = lo + 1;
    } else if (a == mid) {
      // E8M0 ties round up (PyTorch float8_e8m0fnu, ml_dtypes); every other format to even.
      if (s.specials == Specials::kE8M0) {
        chosen = lo + 1;
      } else {
        chosen = (table[lo].code % 2 == 0) ? lo : lo + 1;
      }
    }
  }
  if (chosen + 1 == table.size()) return overflow();  // rounded to the virtual value
  return with_sign(table[chosen].code);
}

}  // namespace qforge::oracle
