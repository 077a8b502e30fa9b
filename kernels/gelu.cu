// GELU kernels (see gelu.cuh). Grid-stride loops, one element per step; tanhf is the
// full-precision one (no fast-math). The expressions follow activation.cpp:
//   out = 0.5 v (1 + tanh(c (v + a v^3)))
//   dx  = dy * (0.5 (1 + t) + 0.5 v (1 - t^2) c (1 + 3 a v^2)),   t = tanh(c (v + a v^3))
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/gelu.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;

constexpr unsigned kThreads = 256;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

// No __restrict__: the output may alias an input (same index only).
template <typename T>
__global__ void gelu_forward_kernel(const T* x, T* out, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = to_float(x[i]);
    const float inner = kGeluC * (v + kGeluA * (v * v * v));
    out[i] = from_float<T>(0.5f * v * (1.0f + tanhf(inner)));
  }
}

template <typename T>
__global__ void gelu_backward_kernel(const T* dout, const T* x, T* dx, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = to_float(x[i]);
    const float t = tanhf(kGeluC * (v + kGeluA * (v * v * v)));
    const float dinner = kGeluC * (1.0f + 3.0f * kGeluA * v * v);
    const float grad = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dinner;
    dx[i] = from_float<T>(to_float(dout[i]) * grad);
  }
}

void check_shape(GeluShape s) { TAILOR_ASSERT(s.numel >= 0, "gelu: negative size {}", s.numel); }

template <typename T>
void forward(const T* x, T* out, GeluShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  gelu_forward_kernel<T>
      <<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(x, out, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(const T* dout, const T* x, T* dx, GeluShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  gelu_backward_kernel<T><<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
      dout, x, dx, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gelu_forward(const float* x, float* out, GeluShape shape, cudaStream_t stream) {
  forward(x, out, shape, stream);
}
void gelu_forward(const std::uint16_t* x, std::uint16_t* out, GeluShape shape,
                  cudaStream_t stream) {
  forward(x, out, shape, stream);
}
void gelu_backward(const float* dout, const float* x, float* dx, GeluShape shape,
                   cudaStream_t stream) {
  backward(dout, x, dx, shape, stream);
}
void gelu_backward(const std::uint16_t* dout, const std::uint16_t* x, std::uint16_t* dx,
                   GeluShape shape, cudaStream_t stream) {
  backward(dout, x, dx, shape, stream);
}

}  // namespace tailor::kernels
