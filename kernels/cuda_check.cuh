// Checks for CUDA runtime calls and kernel launches: a failure becomes a tailor::RuntimeError
// naming the statement, function, file, line and device, never an abort.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

namespace tailor::kernels {

[[noreturn]] inline void cuda_failure(cudaError_t err, const char* stmt, const char* func,
                                      const char* file, int line) {
  int device = -1;
  (void)cudaGetDevice(&device);
  throw_runtime_error("CUDA error {} ({}) in `{}` at {} ({}:{}), device {}", cudaGetErrorName(err),
                      cudaGetErrorString(err), stmt, func, file, line, device);
}

}  // namespace tailor::kernels

#define TAILOR_CUDA_CHECK(stmt)                                                            \
  do {                                                                                     \
    const cudaError_t tailor_err_ = (stmt);                                                \
    if (tailor_err_ != cudaSuccess)                                                        \
      ::tailor::kernels::cuda_failure(tailor_err_, #stmt, __func__, __FILE__, __LINE__);   \
  } while (0)

// After every launch: catches bad launch configurations at once.
#define TAILOR_CUDA_CHECK_LAUNCH() TAILOR_CUDA_CHECK(cudaGetLastError())
