// Deterministic random numbers for synthetic checkpoints, calibration sampling and tests:
// SplitMix64 (seeding) and xoshiro256** 1.0 (Blackman & Vigna, https://prng.di.unimi.it/).
// STABLE: for a given seed every output below is bit-identical across versions, compilers,
// standard libraries and IEEE-754 platforms. Changing any output is a breaking change (synthetic
// models and golden test values depend on it), so std::*_distribution (implementation-defined)
// and libm transcendental functions (not correctly rounded) are not used: log/exp/sin/cos are
// evaluated here with explicit std::fma, which is exact everywhere and immune to FMA contraction.
// Do not build with -ffast-math.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>

namespace qforge {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

namespace rng_detail {

inline constexpr double kLn2 = 0x1.62e42fefa39efp-1;
inline constexpr double kLn2Hi = 0x1.62e42fee00000p-1;  // upper bits of ln 2: k * kLn2Hi is exact
inline constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;
inline constexpr double kInvLn2 = 0x1.71547652b82fep0;
inline constexpr double kHalfPi = 0x1.921fb54442d18p0;
inline constexpr double kSqrtHalf = 0x1.6a09e667f3bcdp-1;

// 1/k! for k = 0..n-1, folded at compile time (IEEE division: the same on every compiler).
template <int N>
constexpr std::array<double, N> inverse_factorials() {
  std::array<double, N> c{};
  c[0] = 1.0;
  for (int k = 1; k < N; ++k) c[k] = c[k - 1] / k;
  return c;
}

// log(x) for finite x > 0. log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.172.
inline double log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // exact: m in [0.5, 1)
  if (m < kSqrtHalf) {
    m *= 2.0;
    --e;
  }
  const double s = (m - 1.0) / (m + 1.0);  // m - 1 is exact (Sterbenz)
  const double z = s * s;
  double p = 1.0 / 23.0;
  for (int k = 10; k >= 0; --k) p = std::fma(p, z, 1.0 / (2 * k + 1));
  return std::fma(static_cast<double>(e), kLn2, (2.0 * s) * p);
}

// exp(x); +inf above 709.78, 0 below -745.
inline double exp(double x) {
  if (x > 709.78) return std::numeric_limits<double>::infinity();
  if (x < -745.2) return 0.0;
  const double k = std::nearbyint(x * kInvLn2);
  double r = std::fma(-k, kLn2Hi, x);
  r = std::fma(-k, kLn2Lo, r);  // |r| <= 0.35
  constexpr auto c = inverse_factorials<15>();
  double p = c[14];
  for (int i = 13; i >= 0; --i) p = std::fma(p, r, c[i]);
  return std::ldexp(p, static_cast<int>(k));
}

// exp(x) - 1 without cancellation for small |x|.
inline double expm1(double x) {
  if (x < -0.35 || x > 0.35) return rng_detail::exp(x) - 1.0;
  constexpr auto c = inverse_factorials<17>();
  double p = c[16];
  for (int i = 15; i >= 1; --i) p = std::fma(p, x, c[i]);
  return x * p;
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1). Quadrant reduction on u is exact (u * 4 and
// its fractional part are exact), so there is no pi-based range reduction to go wrong.
inline void sincos_turns(double u, double* sin_out, double* cos_out) {
  const double t = u * 4.0;
  const double q = std::floor(t);
  double f = t - q;  // [0, 1) of a quarter turn
  const bool mirror = f > 0.5;
  if (mirror) f = 1.0 - f;  // exact; angle is now in [0, pi/4]
  const double x = f * kHalfPi;
  const double x2 = x * x;
  constexpr auto c = inverse_factorials<20>();
  double ps = c[19];  // sin(x)/x = sum (-1)^k x^2k / (2k+1)!
  for (int k = 8; k >= 0; --k) ps = std::fma(ps, -x2, c[2 * k + 1]);
  double pc = c[18];  // cos(x) = sum (-1)^k x^2k / (2k)!
  for (int k = 8; k >= 0; --k) pc = std::fma(pc, -x2, c[2 * k]);
  double s = x * ps;
  double co = pc;
  if (mirror) std::swap(s, co);
  // Rotate by q quarter turns: (sin, cos) of q * pi/2 + angle.
  const int quadrant = static_cast<int>(q);
  const double rs = (quadrant & 1) ? co : s;
  const double rc = (quadrant & 1) ? s : co;
  *sin_out = (quadrant == 2 || quadrant == 3) ? -rs : rs;
  *cos_out = (quadrant == 1 || quadrant == 2) ? -rc : rc;
}

}  // namespace rng_detail

// xoshiro256** seeded through SplitMix64. Not thread-safe; give each thread or tensor its own
// stream: Rng(seed, stream) is independent of Rng(seed, other_stream).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    SplitMix64 sm(seed);
    for (auto& word : s_) word = sm.next();
  }
  Rng(uint64_t seed, uint64_t stream) : Rng(SplitMix64(seed ^ SplitMix64(~stream).next()).next()) {}
  // Raw state, for reproducing published xoshiro256** vectors (must not be all zero).
  static Rng from_state(const std::array<uint64_t, 4>& state) {
    Rng rng(0);
    rng.s_ = state;
    return rng;
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }

  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // [lo, hi).
  double uniform(double lo, double hi) { return std::fma(uniform(), hi - lo, lo); }
  // Unbiased integer in [0, n) for n > 0 (Lemire's multiply-and-reject); 0 when n == 0.
  uint64_t uniform_int(uint64_t n) {
    if (n == 0) return 0;
    unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    auto low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next_u64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Standard normal, Box-Muller; the second value of each pair is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = static_cast<double>((next_u64() >> 11) + 1) * 0x1.0p-53;  // (0, 1]
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * rng_detail::log(u1));
    double s = 0;
    double c = 0;
    rng_detail::sincos_turns(u2, &s, &c);
    spare_ = r * s;
    has_spare_ = true;
    return r * c;
  }
  double normal(double mean, double stddev) { return std::fma(normal(), stddev, mean); }

  // Student's t with nu > 0 degrees of freedom (heavy-tailed weights and outliers).
  // Bailey's polar method: T = U sqrt(nu (W^(-2/nu) - 1) / W), (U, V) uniform in the unit disc.
  double student_t(double nu) {
    double u = 0;
    double w = 0;
    do {
      u = std::fma(2.0, uniform(), -1.0);
      const double v = std::fma(2.0, uniform(), -1.0);
      w = std::fma(u, u, v * v);
    } while (w > 1.0 || w == 0.0);
    const double g = rng_detail::expm1((-2.0 / nu) * rng_detail::log(w));
    return u * std::sqrt(nu * g / w);
  }

  template <typename T>
  void fill_normal(std::span<T> out, double mean = 0.0, double stddev = 1.0) {
    for (T& x : out) x = static_cast<T>(normal(mean, stddev));
  }
  template <typename T>
  void fill_uniform(std::span<T> out, double lo = 0.0, double hi = 1.0) {
    for (T& x : out) x = static_cast<T>(uniform(lo, hi));
  }
  // Fisher-Yates; the same permutation everywhere (unlike std::shuffle).
  template <typename T>
  void shuffle(std::span<T> items) {
    for (size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[static_cast<size_t>(uniform_int(i))]);
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::array<uint64_t, 4> s_{};
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace qforge
