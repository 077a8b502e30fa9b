// Rotary position embedding, Hugging Face "rotate_half" pairing, in place.
//
// x: [N, H, Dh] (any leading layout whose element count is N * H * Dh with Dh last). For
// i < Dh/2 the pair (x[i], x[i + Dh/2]) turns by angle = float(pos[n]) * inv_freq[i], formed in
// f32 as HF does; cos and sin are then taken in the tensor's dtype (f32 or f64). The backward
// pass applies the transpose, i.e. the rotation by -angle. Rows are independent.
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {
namespace {

// direction = +1 for the forward rotation, -1 for its transpose.
template <typename T>
void rope_apply(ThreadPool& pool, const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                T direction) {
  const std::int64_t n = positions.numel();
  const std::int64_t half = inv_freq.numel();
  const std::int64_t dh = 2 * half;
  TAILOR_ASSERT(half > 0 && x.cols() == dh && n > 0 && x.numel() % (n * dh) == 0,
                "rope: x {} does not match positions [{}] and inv_freq [{}]", x.shape.str(), n,
                half);
  const std::int64_t heads = x.numel() / (n * dh);
  T* px = x.ptr<T>();
  const std::int32_t* pos = positions.ptr<std::int32_t>();
  const float* freq = inv_freq.ptr<float>();
  const std::int64_t row = heads * dh;
  pool.parallel_for(n, cpu::rows_per_block(row), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<T> cs(static_cast<std::size_t>(dh));
    T* cosv = cs.data();
    T* sinv = cs.data() + half;
    for (std::int64_t r = r0; r < r1; ++r) {
      const float p = static_cast<float>(pos[r]);
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = p * freq[i];
        cosv[i] = std::cos(static_cast<T>(angle));
        sinv[i] = direction * std::sin(static_cast<T>(angle));
      }
      for (std::int64_t h = 0; h < heads; ++h) {
        T* x1 = px + r * row + h * dh;
        T* x2 = x1 + half;
        for (std::int64_t i = 0; i < half; ++i) {
          const T a = x1[i];
          const T b = x2[i];
          x1[i] = a * cosv[i] - b * sinv[i];
          x2[i] = b * cosv[i] + a * sinv[i];
        }
      }
    }
  });
}

void rope_checked(std::string_view op, ThreadPool& pool, const Tensor& x, const Tensor& positions,
                  const Tensor& inv_freq, double direction) {
  cpu::check_cpu(op, x);
  cpu::check_dtype(op, positions, DType::kI32);
  cpu::check_dtype(op, inv_freq, DType::kF32);
  cpu::dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    rope_apply<T>(pool, x, positions, inv_freq, static_cast<T>(direction));
  });
}

}  // namespace

void CpuOps::rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  rope_checked("rope_forward", pool_, x, positions, inv_freq, 1.0);
}

void CpuOps::rope_backward(const Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
  rope_checked("rope_backward", pool_, dx, positions, inv_freq, -1.0);
}

}  // namespace tailor::backend
