// AdamW, step for step as torch.optim.AdamW (single-tensor path) computes it:
//   p *= 1 - lr * wd
//   m  = lerp(m, g, 1 - beta1)          (torch: m + w (g - m) for w < 0.5, else g - (g - m)(1 - w))
//   v  = v * beta2 + (1 - beta2) * g * g
//   p += (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc_i = 1 - beta_i^step.
// Scalars are formed in double (Python floats) and rounded once to the tensor's dtype, as
// PyTorch does when a Python scalar meets an f32 tensor. Elementwise, in blocks of kElemBlock.
#include <cmath>
#include <cstdint>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {

void CpuOps::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                          const AdamWHyper& hyper) {
  constexpr std::string_view kOp = "adamw_update";
  cpu::check_cpu(kOp, param);
  cpu::check_like(kOp, param, grad);
  cpu::check_like(kOp, param, m);
  cpu::check_like(kOp, param, v);
  TAILOR_ASSERT(hyper.step >= 1, "{}: step {} (1-based)", kOp, hyper.step);
  const auto step = static_cast<double>(hyper.step);
  const double bc1 = 1.0 - std::pow(hyper.beta1, step);
  const double bc2 = 1.0 - std::pow(hyper.beta2, step);
  cpu::dispatch_float(kOp, param, [&](auto tag) {
    using T = decltype(tag);
    T* pp = param.ptr<T>();
    const T* pg = grad.ptr<T>();
    T* pm = m.ptr<T>();
    T* pv = v.ptr<T>();
    const T decay = static_cast<T>(1.0 - hyper.lr * hyper.weight_decay);
    const T w1 = static_cast<T>(1.0 - hyper.beta1);
    const bool small_w1 = std::abs(1.0 - hyper.beta1) < 0.5;
    const T w1c = T(1) - w1;  // torch: 1 - weight, in the tensor dtype
    const T b2 = static_cast<T>(hyper.beta2);
    const T w2 = static_cast<T>(1.0 - hyper.beta2);
    const T neg_step = static_cast<T>(-(hyper.lr / bc1));
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    const T eps = static_cast<T>(hyper.eps);
    pool_.parallel_for(param.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const T g = pg[i];
        const T p = pp[i] * decay;
        const T mi = small_w1 ? pm[i] + w1 * (g - pm[i]) : g - (g - pm[i]) * w1c;
        const T vi = pv[i] * b2 + w2 * g * g;
        const T denom = std::sqrt(vi) / bc2_sqrt + eps;
        pm[i] = mi;
        pv[i] = vi;
        pp[i] = p + neg_step * mi / denom;
      }
    });
  });
}

}  // namespace tailor::backend
