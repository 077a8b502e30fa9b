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

// The gate activations: value(g), and grad(g, a, da) giving the value and its derivative for the
// backward (each with the expressions of activation.cpp).
struct Silu {
  __device__ static float value(float g) { return g / (1.0f + expf(-g)); }
  __device__ static void grad(float g, float& a, float& da) {
    const float s = 1.0f / (1.0f + expf(-g));
    a = g * s;
    da = s * (1.0f + g * (1.0f - s));
  }
};

// GELU with the tanh approximation (gelu.cu's).
struct GeluTanh {
  static constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
  static constexpr float kA = 0.044715f;
  __device__ static float value(float g) {
    return 0.5f * g * (1.0f + tanhf(kC * (g + kA * (g * g * g))));
  }
  __device__ static void grad(float g, float& a, float& da) {
    const float t = tanhf(kC * (g + kA * (g * g * g)));
    a = 0.5f * g * (1.0f + t);
    da = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * (kC * (1.0f + 3.0f * kA * g * g));
  }
};

// No __restrict__: the outputs may alias the inputs (same index only).
template <class Act, typename T>
__global__ void gated_forward_kernel(const T* gate, const T* up, T* out, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(Act::value(to_float(gate[i])) * to_float(up[i]));
}

template <class Act, typename T>
__global__ void gated_backward_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup,
                                      std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    const float u = to_float(up[i]);
    const float dy = to_float(dout[i]);
    float a = 0.0f, da = 0.0f;
    Act::grad(g, a, da);
    dup[i] = from_float<T>(dy * a);
    dgate[i] = from_float<T>(dy * u * da);
  }
}

void check_shape(SwigluShape s) {
  TAILOR_ASSERT(s.numel >= 0, "gated activation: negative size {}", s.numel);
}

template <class Act, typename T>
void forward(const T* gate, const T* up, T* out, SwigluShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  gated_forward_kernel<Act, T>
      <<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(gate, up, out,
                                                                               s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <class Act, typename T>
void backward(const T* dout, const T* gate, const T* up, T* dgate, T* dup, SwigluShape s,
              cudaStream_t stream) {
  check_shape(s);
  if (s.numel == 0) return;
  gated_backward_kernel<Act, T>
      <<<detail::elementwise_blocks(s.numel, kThreads), kThreads, 0, stream>>>(
          dout, gate, up, dgate, dup, s.numel);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void swiglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                    cudaStream_t stream) {
  forward<Silu>(gate, up, out, shape, stream);
}
void swiglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                    SwigluShape shape, cudaStream_t stream) {
  forward<Silu>(gate, up, out, shape, stream);
}
void swiglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                     float* dup, SwigluShape shape, cudaStream_t stream) {
  backward<Silu>(dout, gate, up, dgate, dup, shape, stream);
}
void swiglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                     std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                     cudaStream_t stream) {
  backward<Silu>(dout, gate, up, dgate, dup, shape, stream);
}

void geglu_forward(const float* gate, const float* up, float* out, SwigluShape shape,
                   cudaStream_t stream) {
  forward<GeluTanh>(gate, up, out, shape, stream);
}
void geglu_forward(const std::uint16_t* gate, const std::uint16_t* up, std::uint16_t* out,
                   SwigluShape shape, cudaStream_t stream) {
  forward<GeluTanh>(gate, up, out, shape, stream);
}
void geglu_backward(const float* dout, const float* gate, const float* up, float* dgate,
                    float* dup, SwigluShape shape, cudaStream_t stream) {
  backward<GeluTanh>(dout, gate, up, dgate, dup, shape, stream);
}
void geglu_backward(const std::uint16_t* dout, const std::uint16_t* gate, const std::uint16_t* up,
                    std::uint16_t* dgate, std::uint16_t* dup, SwigluShape shape,
                    cudaStream_t stream) {
  backward<GeluTanh>(dout, gate, up, dgate, dup, shape, stream);
}

}  // namespace tailor::kernels
