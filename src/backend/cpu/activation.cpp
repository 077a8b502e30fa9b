// MLP activations: SwiGLU (silu(gate) * up, Llama-style MLPs), GeGLU (gelu(gate) * up, Gemma's)
// and GELU with the tanh approximation (GPT-2's "gelu_new", Gemma's gelu_pytorch_tanh). Elementwise, computed in the tensor's dtype, in blocks of
// kElemBlock elements. Gradients are written (=). f32 takes exp and tanh from fast_math.h, so
// the loops vectorize.
#include <cmath>
#include <cstdint>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"

namespace tailor::backend {
namespace {

template <typename T>
[[nodiscard]] inline T sigmoid(T x) noexcept {
  return T(1) / (T(1) + cpu::fast_exp(-x));
}

// sqrt(2 / pi) and the cubic coefficient of GPT-2's gelu_new.
template <typename T>
inline constexpr T kGeluC = static_cast<T>(0.7978845608028654);  // sqrt(2 / pi)
template <typename T>
inline constexpr T kGeluA = static_cast<T>(0.044715);

}  // namespace

void CpuOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  constexpr std::string_view kOp = "swiglu_forward";
  cpu::check_cpu(kOp, gate);
  cpu::check_like(kOp, gate, up);
  cpu::check_like(kOp, gate, out);
  cpu::dispatch_float(kOp, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* po = out.ptr<T>();
    pool_.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T g = pg[i];
        po[i] = (g / (T(1) + cpu::fast_exp(-g))) * pu[i];  // silu as PyTorch computes it
      }
    });
  });
}

void CpuOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                             const Tensor& dgate, const Tensor& dup) {
  constexpr std::string_view kOp = "swiglu_backward";
  cpu::check_cpu(kOp, gate);
  cpu::check_like(kOp, gate, dout);
  cpu::check_like(kOp, gate, up);
  cpu::check_like(kOp, gate, dgate);
  cpu::check_like(kOp, gate, dup);
  cpu::dispatch_float(kOp, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pdo = dout.ptr<T>();
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* pdg = dgate.ptr<T>();
    T* pdu = dup.ptr<T>();
    pool_.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T g = pg[i];
        const T sg = sigmoid(g);
        const T dy = pdo[i];
        // d silu(g) / dg = s (1 + g (1 - s)). Both inputs are read before either output is
        // written, so dgate / dup may alias gate / up / dout.
        const T u = pu[i];
        pdu[i] = dy * (g * sg);
        pdg[i] = dy * u * (sg * (T(1) + g * (T(1) - sg)));
      }
    });
  });
}

void CpuOps::geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  constexpr std::string_view kOp = "geglu_forward";
  cpu::check_cpu(kOp, gate);
  cpu::check_like(kOp, gate, up);
  cpu::check_like(kOp, gate, out);
  cpu::dispatch_float(kOp, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* po = out.ptr<T>();
    pool_.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T g = pg[i];
        const T inner = kGeluC<T> * (g + kGeluA<T> * (g * g * g));
        po[i] = (T(0.5) * g * (T(1) + cpu::fast_tanh(inner))) * pu[i];
      }
    });
  });
}

void CpuOps::geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                            const Tensor& dgate, const Tensor& dup) {
  constexpr std::string_view kOp = "geglu_backward";
  cpu::check_cpu(kOp, gate);
  cpu::check_like(kOp, gate, dout);
  cpu::check_like(kOp, gate, up);
  cpu::check_like(kOp, gate, dgate);
  cpu::check_like(kOp, gate, dup);
  cpu::dispatch_float(kOp, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pdo = dout.ptr<T>();
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* pdg = dgate.ptr<T>();
    T* pdu = dup.ptr<T>();
    pool_.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        // Both inputs are read before either output is written (the outputs may alias them).
        const T g = pg[i];
        const T u = pu[i];
        const T dy = pdo[i];
        const T t = cpu::fast_tanh(kGeluC<T> * (g + kGeluA<T> * (g * g * g)));
        const T dinner = kGeluC<T> * (T(1) + T(3) * kGeluA<T> * g * g);
        const T grad = T(0.5) * (T(1) + t) + T(0.5) * g * (T(1) - t * t) * dinner;
        pdu[i] = dy * (T(0.5) * g * (T(1) + t));
        pdg[i] = dy * u * grad;
      }
    });
  });
}

void CpuOps::gelu_forward(const Tensor& x, const Tensor& out) {
  constexpr std::string_view kOp = "gelu_forward";
  cpu::check_cpu(kOp, x);
  cpu::check_like(kOp, x, out);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.ptr<T>();
    T* po = out.ptr<T>();
    pool_.parallel_for(x.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T v = px[i];
        const T inner = kGeluC<T> * (v + kGeluA<T> * (v * v * v));
        po[i] = T(0.5) * v * (T(1) + cpu::fast_tanh(inner));
      }
    });
  });
}

void CpuOps::gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) {
  constexpr std::string_view kOp = "gelu_backward";
  cpu::check_cpu(kOp, x);
  cpu::check_like(kOp, x, dout);
  cpu::check_like(kOp, x, dx);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* pdo = dout.ptr<T>();
    const T* px = x.ptr<T>();
    T* pdx = dx.ptr<T>();
    pool_.parallel_for(x.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T v = px[i];
        const T t = cpu::fast_tanh(kGeluC<T> * (v + kGeluA<T> * (v * v * v)));
        const T dinner = kGeluC<T> * (T(1) + T(3) * kGeluA<T> * v * v);
        const T grad = T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * dinner;
        pdx[i] = pdo[i] * grad;
      }
    });
  });
}

}  // namespace tailor::backend
