// Element conversion between host buffers of f32, f64 and bf16, as PyTorch converts: to bf16
// through f32 (f64 -> f32 -> bf16, rounded to nearest even). The one conversion behind
// CpuOps::copy, CudaOps's host-side staging, the MPI communicator's bf16 staging and the emulated
// device's bf16 widening.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tailor::backend {

// dst[i] = src[i] converted, for i in [begin, end) (element indices of both buffers).
// InternalError for a dtype other than f32, f64 or bf16.
void convert_host(void* dst, DType dst_dtype, const void* src, DType src_dtype,
                  std::int64_t begin, std::int64_t end);

}  // namespace tailor::backend
