// RMSNorm over the last dimension, forward and backward, as CpuOps::rmsnorm_* (src/backend/cpu/
// norm.cpp) defines it:  y = x * rstd * w,  rstd = 1 / sqrt(mean(x^2) + eps).
//
// Storage is f32 (the tight tests' mode) or bf16 (raw bits in std::uint16_t, the training mode);
// arithmetic is f32 in both, rstd is f32, and dw is an f32 gradient buffer. dx is written (=),
// dw accumulated (+=), as ops.h says. Deterministic: one block reduces a row, with a block size
// fixed by cols; dw is reduced over rows in two passes (per-chunk partial rows in the workspace,
// then summed in chunk order), no atomics.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct RmsNormShape {
  std::int64_t rows = 0;  // N
  std::int64_t cols = 0;  // D, the normalized dimension
};

// x, y: [N, D]; w: [D]; rstd: [N] (saved for backward).
void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, RmsNormShape shape,
                     double eps, cudaStream_t stream);
void rmsnorm_forward(const std::uint16_t* x, const std::uint16_t* w, std::uint16_t* y, float* rstd,
                     RmsNormShape shape, double eps, cudaStream_t stream);

// Device workspace rmsnorm_backward needs when dw is present (0 bytes without dw).
[[nodiscard]] std::size_t rmsnorm_backward_workspace_bytes(RmsNormShape shape);

// dx[N, D] = ; dw[D] += (dw may be null: frozen weight, no workspace needed). dy, x, w: as in the
// forward pass; rstd from it. dx must not alias x or w; it may alias dy.
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, void* workspace, RmsNormShape shape, cudaStream_t stream);
void rmsnorm_backward(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* w,
                      const float* rstd, std::uint16_t* dx, float* dw, void* workspace,
                      RmsNormShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
