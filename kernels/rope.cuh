// Rotary position embedding in place, Hugging Face "rotate_half" pairing, as CpuOps::rope_*
// (src/backend/cpu/rope.cpp) defines it: for i < Dh/2 the pair (x[i], x[i + Dh/2]) of every head
// turns by angle = float(positions[n]) * inv_freq[i], the angle formed in f32 as HF does:
//   x[i]        = x[i] cos - x[i + Dh/2] sin
//   x[i + Dh/2] = x[i + Dh/2] cos + x[i] sin
// The backward pass applies the transpose (the rotation by -angle) to the gradient.
//
// Storage f32 or bf16 (raw bits in std::uint16_t), arithmetic f32. Elementwise over pairs, so
// deterministic. Call once for q and once for k (they differ in head count).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct RopeShape {
  std::int64_t tokens = 0;    // N
  std::int64_t heads = 0;     // H
  std::int64_t head_dim = 0;  // Dh, even
};

// x: [N, H, Dh] rotated in place; positions: i32 [N]; inv_freq: f32 [Dh/2] (scaling variants
// such as Llama-3's folded in by the caller).
void rope_forward(float* x, const std::int32_t* positions, const float* inv_freq, RopeShape shape,
                  cudaStream_t stream);
void rope_forward(std::uint16_t* x, const std::int32_t* positions, const float* inv_freq,
                  RopeShape shape, cudaStream_t stream);
// dx: [N, H, Dh] rotated back in place.
void rope_backward(float* dx, const std::int32_t* positions, const float* inv_freq, RopeShape shape,
                   cudaStream_t stream);
void rope_backward(std::uint16_t* dx, const std::int32_t* positions, const float* inv_freq,
                   RopeShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
