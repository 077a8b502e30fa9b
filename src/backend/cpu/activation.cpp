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

// The gate activations of the gated MLPs: value(g), and grad(g, a, da) giving the value and its
// derivative for the backward.
struct Silu {
  template <typename T>
  static T value(T g) noexcept {
    return g / (T(1) + cpu::fast_exp(-g));  // silu as PyTorch computes it
  }
  template <typename T>
  static void grad(T g, T& a, T& da) noexcept {
    const T sg = sigmoid(g);
    a = g * sg;
    da = sg * (T(1) + g * (T(1) - sg));  // d silu(g) / dg = s (1 + g (1 - s))
  }
};

struct GeluTanh {
  template <typename T>
  static T value(T g) noexcept {
    const T inner = kGeluC<T> * (g + kGeluA<T> * (g * g * g));
    return T(0.5) * g * (T(1) + cpu::fast_tanh(inner));
  }
  template <typename T>
  static void grad(T g, T& a, T& da) noexcept {
    const T t = cpu::fast_tanh(kGeluC<T> * (g + kGeluA<T> * (g * g * g)));
    const T dinner = kGeluC<T> * (T(1) + T(3) * kGeluA<T> * g * g);
    a = T(0.5) * g * (T(1) + t);
    da = T(0.5) * (T(1) + t) + T(0.5) * g * (T(1) - t * t) * dinner;
  }
};

// out = act(gate) * up.
template <class Act>
void gated_forward(ThreadPool& pool, std::string_view op, const Tensor& gate, const Tensor& up,
                   const Tensor& out) {
  cpu::check_cpu(op, gate);
  cpu::check_like(op, gate, up);
  cpu::check_like(op, gate, out);
  cpu::dispatch_float(op, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* po = out.ptr<T>();
    pool.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) po[i] = Act::value(pg[i]) * pu[i];
    });
  });
}

// dgate = dout * up * act'(gate); dup = dout * act(gate). Both inputs are read before either
// output is written, so dgate / dup may alias gate / up / dout.
template <class Act>
void gated_backward(ThreadPool& pool, std::string_view op, const Tensor& dout, const Tensor& gate,
                    const Tensor& up, const Tensor& dgate, const Tensor& dup) {
  cpu::check_cpu(op, gate);
  cpu::check_like(op, gate, dout);
  cpu::check_like(op, gate, up);
  cpu::check_like(op, gate, dgate);
  cpu::check_like(op, gate, dup);
  cpu::dispatch_float(op, gate, [&](auto tag) {
    using T = decltype(tag);
    const T* pdo = dout.ptr<T>();
    const T* pg = gate.ptr<T>();
    const T* pu = up.ptr<T>();
    T* pdg = dgate.ptr<T>();
    T* pdu = dup.ptr<T>();
    pool.parallel_for(gate.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T u = pu[i];
        const T dy = pdo[i];
        T a{}, da{};
        Act::grad(pg[i], a, da);
        pdu[i] = dy * a;
        pdg[i] = dy * u * da;
      }
    });
  });
}

}  // namespace

void CpuOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  gated_forward<Silu>(pool_, "swiglu_forward", gate, up, out);
}

void CpuOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                             const Tensor& dgate, const Tensor& dup) {
  gated_backward<Silu>(pool_, "swiglu_backward", dout, gate, up, dgate, dup);
}

void CpuOps::geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  gated_forward<GeluTanh>(pool_, "geglu_forward", gate, up, out);
}

void CpuOps::geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                            const Tensor& dgate, const Tensor& dup) {
  gated_backward<GeluTanh>(pool_, "geglu_backward", dout, gate, up, dgate, dup);
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
      for (std::int64_t i = b; i < e; ++i) po[i] = GeluTanh::value(px[i]);
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
        T a{}, da{};
        GeluTanh::grad(px[i], a, da);
        pdx[i] = pdo[i] * da;
      }
    });
  });
}

}  // namespace tailor::backend
