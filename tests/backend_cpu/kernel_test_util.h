// Helpers shared by the CPU kernel tests: deterministic random data, weights in F32/F16/BF16,
// and a relative error between two float arrays.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/rng.h"
#include "qforge/formats/scalar.h"

namespace qforge::test {

inline std::vector<float> random_floats(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal(0.0, stddev));
  return v;
}

// Weights stored as `dtype` (F32 floats or 16-bit codes), kept as raw bytes.
struct TestWeights {
  DType dtype;
  std::vector<float> f32;
  std::vector<uint16_t> half;
  const void* data() const {
    return dtype == DType::F32 ? static_cast<const void*>(f32.data())
                               : static_cast<const void*>(half.data());
  }
};

inline TestWeights make_weights(DType dtype, int64_t n, uint64_t seed, double stddev = 0.1) {
  TestWeights w{dtype, random_floats(n, seed, stddev), {}};
  if (dtype != DType::F32) {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i) {
      w.half[i] = dtype == DType::BF16 ? float_to_bf16(w.f32[i]) : float_to_f16(w.f32[i]);
    }
    w.f32.clear();
  }
  return w;
}

// ||a - b|| / max(||b||, tiny).
inline double relative_l2(const float* a, const float* b, int64_t n) {
  double num = 0;
  double den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

inline double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace qforge::test
