// LayerNorm over the last dimension, forward and backward, as CpuOps::layernorm_* (src/backend/
// cpu/norm.cpp) defines it:  y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps) with the
// biased variance, computed in two passes over the row.
//
// Storage is f32 or bf16 (raw bits in std::uint16_t); arithmetic f32; mean, rstd f32; dw, db are
// f32 gradient buffers. dx is written (=), dw and db accumulated (+=). Deterministic: one block
// per row with a block size fixed by cols; dw and db reduced over rows in two passes through the
// workspace (per-chunk partial rows, then summed in chunk order), no atomics.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct LayerNormShape {
  std::int64_t rows = 0;  // N
  std::int64_t cols = 0;  // D, the normalized dimension
};

// x, y: [N, D]; w: [D]; b: [D] or null (no bias); mean, rstd: [N] (saved for backward).
void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean,
                       float* rstd, LayerNormShape shape, double eps, cudaStream_t stream);
void layernorm_forward(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b,
                       std::uint16_t* y, float* mean, float* rstd, LayerNormShape shape, double eps,
                       cudaStream_t stream);

// Device workspace layernorm_backward needs when dw or db is present.
[[nodiscard]] std::size_t layernorm_backward_workspace_bytes(LayerNormShape shape);

// dx[N, D] = ; dw[D] += ; db[D] += (dw, db may each be null: frozen, skipped). mean and rstd from
// the forward pass. dx must not alias x or w; it may alias dy.
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean,
                        const float* rstd, float* dx, float* dw, float* db, void* workspace,
                        LayerNormShape shape, cudaStream_t stream);
void layernorm_backward(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* w,
                        const float* mean, const float* rstd, std::uint16_t* dx, float* dw,
                        float* db, void* workspace, LayerNormShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
