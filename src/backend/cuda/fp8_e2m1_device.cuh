// Device-side scalar codecs shared by the CUDA quantizers. Each equals its CPU twin in
// include/qforge/formats/scalar.h bit for bit (round to nearest, ties to even).
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace qforge::cuda {

// PTX cvt.rn.satfinite.e4m3x2: RNE, overflow and ±Inf to ±448, NaN to 0x7F (CPU: sign kept, but
// the quantizers never pass NaN).
__device__ inline uint8_t e4m3fn_from_float(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

__device__ inline float e4m3fn_to_float_device(uint8_t code) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(code), __NV_E4M3);
  return __half2float(__half(h));
}

// E2M1 magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6} at codes 0..7. Round to nearest with ties to the
// even code: a tie between codes 2k and 2k+1 goes down, between 2k+1 and 2k+2 goes up, hence the
// alternating < and <= below. Hopper has no E2M1 cvt instruction (that arrives with sm_100).
__device__ inline uint8_t e2m1_from_float(float x) {
  const float a = fabsf(x);
  uint8_t code;
  if (a <= 0.25f) {
    code = 0;
  } else if (a < 0.75f) {
    code = 1;
  } else if (a <= 1.25f) {
    code = 2;
  } else if (a < 1.75f) {
    code = 3;
  } else if (a <= 2.5f) {
    code = 4;
  } else if (a < 3.5f) {
    code = 5;
  } else if (a <= 5.0f) {
    code = 6;
  } else {
    code = 7;  // saturates: E2M1 has no Inf
  }
  return static_cast<uint8_t>(code | (signbit(x) ? 0x8 : 0x0));
}

}  // namespace qforge::cuda
