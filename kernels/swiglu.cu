// SwiGLU and GeGLU kernels (see swiglu.cuh). Grid-stride loops, one element per step; expf is the
// full-precision one (no fast-math). The expressions follow activation.cpp:
//   out   = (g / (1 + exp(-g))) * u
//   s     = 1 / (1 + exp(-g))
//   dup   = dy * (g * s)
//   dgate = dy * u * (s * (1 + g * (1 - s)))
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/swiglu.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;

constexpr unsigned kThreads = 256;

// No __restrict__: the outputs may alias the inputs (same index only).
template <typename T>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    const float u = to_float(up[i]);
    out[i] = from_float<T>((g / (1.0f + expf(-g))) * u);
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup,
                                       std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    const float u = to_float(up[i]);
    const float dy = to_float(dout[i]);
    const float s = 1.0f / (1.0f + expf(-g));
    dup[i] = from_float<T>(dy * (g * s));
    dgate[i] = from_float<T>(dy * u * (s * (1.0f + g * (1.0f - s))));
  }
}

void check_shape(SwigluShape s) {
  TAILOR_ASSERT(s.numel >= 0, "swiglu: negative size {}", s.numel);
}

template <typename T>
void forward(const T* gate, const T* up, T* out, SwigluShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  swiglu_forward_kernel<T><<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
      gate, up, out, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, SwigluShape s,
              cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  swiglu_backward_kernel<T><<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
      dout, gate, up, dgate, dup, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void swiglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                    cudaStream_t stream) {
  forward(gate, up, out, shape, stream);
}
void swiglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                    SwigluShape shape, cudaStream_t stream) {
  forward(gate, up, out, shape, stream);
}
void swiglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                     float* dup, SwigluShape shape, cudaStream_t stream) {
  backward(dout, gate, up, dgate, dup, shape, stream);
}
void swiglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                     std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                     cudaStream_t stream) {
  backward(dout, gate, up, dgate, dup, shape, stream);
}

namespace {

// GeGLU: gelu (tanh approximation, as gelu.cu and activation.cpp) of the gate times up.
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

template <typename T>
__global__ void geglu_forward_kernel(const T* gate, const T* up, T* out, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    const float u = to_float(up[i]);
    const float inner = kGeluC * (g + kGeluA * (g * g * g));
    out[i] = from_float<T>((0.5f * g * (1.0f + tanhf(inner))) * u);
  }
}

template <typename T>
__global__ void geglu_backward_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup,
                                      std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    const float u = to_float(up[i]);
    const float dy = to_float(dout[i]);
    const float t = tanhf(kGeluC * (g + kGeluA * (g * g * g)));
    const float dinner = kGeluC * (1.0f + 3.0f * kGeluA * g * g);
    const float grad = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * dinner;
    dup[i] = from_float<T>(dy * (0.5f * g * (1.0f + t)));
    dgate[i] = from_float<T>(dy * u * grad);
  }
}

template <typename T>
void geglu_fwd(const T* gate, const T* up, T* out, SwigluShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  geglu_forward_kernel<T><<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
      gate, up, out, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void geglu_bwd(const T* dout, const T* gate, const T* up, T* dgate, T* dup, SwigluShape s,
               cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  geglu_backward_kernel<T><<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
      dout, gate, up, dgate, dup, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void geglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                   cudaStream_t stream) {
  geglu_fwd(gate, up, out, shape, stream);
}
void geglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                   SwigluShape shape, cudaStream_t stream) {
  geglu_fwd(gate, up, out, shape, stream);
}
void geglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                    float* dup, SwigluShape shape, cudaStream_t stream) {
  geglu_bwd(dout, gate, up, dgate, dup, shape, stream);
}
void geglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                    std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                    cudaStream_t stream) {
  geglu_bwd(dout, gate, up, dgate, dup, shape, stream);
}

}  // namespace tailor::kernels
