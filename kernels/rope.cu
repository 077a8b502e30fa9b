// RoPE kernels (see rope.cuh for the contract).
//
// One thread per (token n, frequency i): it forms the angle and its sine and cosine once
// (sincosf, full precision: the build uses no fast-math) and rotates pair i of each of the H
// heads. Consecutive threads take consecutive i, so every head's loads and stores coalesce.
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/rope.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;

constexpr unsigned kThreads = 256;

// direction: +1 forward, -1 backward (the sine's sign, as rope.cpp applies it).
template <typename T>
__global__ void rope_kernel(T* __restrict__ x, const std::int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, std::int64_t tokens,
                            std::int64_t heads, std::int64_t half, float direction) {
  const std::int64_t pairs = tokens * half;
  for (std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t n = p / half;
    const std::int64_t i = p - n * half;
    const float angle = static_cast<float>(positions[n]) * inv_freq[i];
    float s;
    float c;
    sincosf(angle, &s, &c);
    s *= direction;
    T* row = x + n * heads * 2 * half;
    for (std::int64_t h = 0; h < heads; ++h) {
      T* x1 = row + h * 2 * half + i;
      T* x2 = x1 + half;
      const float a = to_float(*x1);
      const float b = to_float(*x2);
      *x1 = from_float<T>(a * c - b * s);
      *x2 = from_float<T>(b * c + a * s);
    }
  }
}

template <typename T>
void rope(T* x, const std::int32_t* positions, const float* inv_freq, RopeShape s, float direction,
          cudaStream_t stream) {
  TAILOR_ASSERT(s.tokens >= 0 && s.heads >= 0 && s.head_dim >= 0 && s.head_dim % 2 == 0,
                "rope: bad shape [{}, {}, {}] (head_dim must be even)", s.tokens, s.heads,
                s.head_dim);
  const std::int64_t half = s.head_dim / 2;
  const std::int64_t pairs = s.tokens * half;
  if (pairs == 0 || s.heads == 0) return;
  rope_kernel<T><<<detail::elementwise_blocks(pairs, kThreads), kThreads, 0, stream>>>(
      x, positions, inv_freq, s.tokens, s.heads, half, direction);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope_forward(float* x, const std::int32_t* positions, const float* inv_freq, RopeShape shape,
                  cudaStream_t stream) {
  rope(x, positions, inv_freq, shape, 1.0f, stream);
}
void rope_forward(std::uint16_t* x, const std::int32_t* positions, const float* inv_freq,
                  RopeShape shape, cudaStream_t stream) {
  rope(x, positions, inv_freq, shape, 1.0f, stream);
}
void rope_backward(float* dx, const std::int32_t* positions, const float* inv_freq, RopeShape shape,
                   cudaStream_t stream) {
  rope(dx, positions, inv_freq, shape, -1.0f, stream);
}
void rope_backward(std::uint16_t* dx, const std::int32_t* positions, const float* inv_freq,
                   RopeShape shape, cudaStream_t stream) {
  rope(dx, positions, inv_freq, shape, -1.0f, stream);
}

}  // namespace tailor::kernels
