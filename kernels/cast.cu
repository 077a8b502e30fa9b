#include <cuda_bf16.h>

#include "kernels/cast.cuh"
#include "kernels/cuda_check.cuh"

namespace tailor::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void f32_to_bf16_kernel(const float* __restrict__ src, std::uint16_t* __restrict__ dst,
                                   std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
  }
}

__global__ void bf16_to_f32_kernel(const std::uint16_t* __restrict__ src, float* __restrict__ dst,
                                   std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = __bfloat162float(__ushort_as_bfloat16(src[i]));
  }
}

unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

}  // namespace

void cast_f32_to_bf16(const float* src, std::uint16_t* dst, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, dst, n);
  TAILOR_CUDA_CHECK_LAUNCH();
}

void cast_bf16_to_f32(const std::uint16_t* src, float* dst, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, dst, n);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace tailor::kernels
