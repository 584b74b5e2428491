// Integer scalar codecs: symmetric INT8 (narrow range [-127, 127]), signed INT4 [-8, 7] and
// UINT4 [0, 15] with a zero point, each rne(x / scale) with an IEEE float division.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "qforge/formats/scalar.h"

namespace qforge {
namespace {

// rne(x / scale) clamped to [lo, hi]. Clamping happens in float before the integer conversion,
// so ±Inf quotients (scale 0) saturate instead of overflowing the cast. A NaN quotient (NaN
// input, 0 / 0) has no integer meaning; it maps to 0, the value that perturbs a result least.
int quantize_clamped(float x, float scale, int lo, int hi) {
  const float q = std::nearbyint(x / scale);  // ties to even in the default rounding mode
  if (std::isnan(q)) return 0;
  return static_cast<int>(std::clamp(q, static_cast<float>(lo), static_cast<float>(hi)));
}

}  // namespace

int8_t quantize_int8(float x, float scale) {
  return static_cast<int8_t>(quantize_clamped(x, scale, -127, 127));
}

int8_t quantize_int4(float x, float scale) {
  return static_cast<int8_t>(quantize_clamped(x, scale, -8, 7));
}

uint8_t quantize_uint4(float x, float scale, int zero_point) {
  // The zero point is added after rounding (in double: exact for any int), so the code for x = 0
  // is exactly zero_point; a NaN quotient also lands there.
  const float q = std::nearbyint(x / scale);
  const double shifted = (std::isnan(q) ? 0.0 : static_cast<double>(q)) + zero_point;
  return static_cast<uint8_t>(std::clamp(shifted, 0.0, 15.0));
}

}  // namespace qforge
