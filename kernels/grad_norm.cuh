// The global sum of squares of many f32 tensors, for the gradient norm (the caller takes the
// square root after all-reducing across ranks and counting TP-replicated tensors once), as
// CpuOps::sum_squares (src/backend/cpu/elementwise.cpp) computes it per tensor: in f64.
//
// Deterministic without atomics: every tensor is cut into fixed chunks of elements, one block
// reduces a chunk (in f64, fixed thread count and order) into its slot of the workspace, and one
// final block sums the slots in a fixed order. The decomposition depends on the tensor sizes only.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

// One tensor: a device pointer and its element count.
struct SumSquaresTensor {
  const float* data = nullptr;
  std::int64_t numel = 0;
};

inline constexpr int kSumSquaresTensorsPerLaunch = 128;

// Device workspace sum_squares needs for these tensors (one f64 per chunk).
[[nodiscard]] std::size_t sum_squares_workspace_bytes(const SumSquaresTensor* tensors, int count);

// *out (a device f64) = sum over tensors[0, count) (a host array of device pointers) of the sum
// of their squared elements. Written, not accumulated; 0 when there are no elements.
void sum_squares(const SumSquaresTensor* tensors, int count, void* workspace, double* out,
                 cudaStream_t stream);

}  // namespace tailor::kernels
