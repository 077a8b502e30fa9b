// GELU with the tanh approximation (GPT-2's "gelu_new"), as CpuOps::gelu_* (src/backend/cpu/
// activation.cpp) defines it:  out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
//
// Storage f32 or bf16 (raw bits in std::uint16_t), arithmetic f32. The gradient is written (=).
// Elementwise, so deterministic for any launch.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct GeluShape {
  std::int64_t numel = 0;  // x, out, dout, dx all hold numel elements
};

// out = gelu(x); out may alias x.
void gelu_forward(const float* x, float* out, GeluShape shape, cudaStream_t stream);
void gelu_forward(const std::uint16_t* x, std::uint16_t* out, GeluShape shape, cudaStream_t stream);
// dx = dout * gelu'(x); dx may alias dout or x.
void gelu_backward(const float* dout, const float* x, float* dx, GeluShape shape,
                   cudaStream_t stream);
void gelu_backward(const std::uint16_t* dout, const std::uint16_t* x, std::uint16_t* dx,
                   GeluShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
