// SwiGLU, the Llama-style MLP activation, as CpuOps::swiglu_* (src/backend/cpu/activation.cpp)
// defines it:  out = silu(gate) * up,  silu(g) = g / (1 + exp(-g)).
//
// Storage f32 or bf16 (raw bits in std::uint16_t), arithmetic f32. Gradients are written (=).
// Elementwise, so deterministic for any launch.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct SwigluShape {
  std::int64_t numel = 0;  // N * F: gate, up, out and the gradients are all [N, F]
};

// out = silu(gate) * up. out may alias gate or up.
void swiglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                    cudaStream_t stream);
void swiglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                    SwigluShape shape, cudaStream_t stream);

// dgate = dout * up * silu'(gate);  dup = dout * silu(gate). Every input element is read before
// the outputs at its index are written, so dgate / dup may alias dout, gate or up.
void swiglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                     float* dup, SwigluShape shape, cudaStream_t stream);
void swiglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                     std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                     cudaStream_t stream);

// GeGLU (Gemma's MLP), as CpuOps::geglu_*: out = gelu(gate) * up with the tanh approximation
// of GELU (gelu.cuh's); the same shapes and aliasing rules as SwiGLU.
void geglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                   cudaStream_t stream);
void geglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                   SwigluShape shape, cudaStream_t stream);
void geglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                    float* dup, SwigluShape shape, cudaStream_t stream);
void geglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                    std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                    cudaStream_t stream);

}  // namespace tailor::kernels
