// CUDA runtime error handling: turns cudaError_t into qforge Errors that name the call and the
// error string, so a failed launch surfaces as a Result instead of an abort.
#pragma once

#include <cuda_runtime.h>

#include "qforge/core/error.h"

namespace qforge::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ok_status();
  return make_error(ErrorCode::kInternal, "{}: CUDA error {} ({})", what, cudaGetErrorName(err),
                    cudaGetErrorString(err));
}

}  // namespace qforge::cuda

// QF_CUDA_TRY(call): returns a qforge Error from the enclosing function when `call` fails.
#define QF_CUDA_TRY(call) QF_TRY(::qforge::cuda::cuda_status((call), #call))
