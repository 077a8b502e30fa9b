// AdamW over many tensors in few launches, as CpuOps::adamw_update (src/backend/cpu/adamw.cpp)
// computes it for each tensor (torch.optim.AdamW's single-tensor path):
//   p *= 1 - lr * wd
//   m  = lerp(m, g, 1 - beta1)
//   v  = v * beta2 + (1 - beta2) * g * g
//   p += (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc_i = 1 - beta_i^step
// on f32 master weights, f32 gradients and f32 moments; a bf16 model copy, when the tensor has
// one, is refreshed from the new master weights (round to nearest even). The step's scalars are
// formed on the host in double and rounded once to f32, as the CPU op does.
//
// One launch handles up to kAdamWTensorsPerLaunch tensors, whose pointers travel in the kernel's
// parameters (no device-side table to build or keep alive). Elementwise, so deterministic.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

// One parameter tensor: device pointers, all of `numel` elements.
struct AdamWTensor {
  float* master = nullptr;         // f32 master weights, updated in place
  std::uint16_t* model = nullptr;  // bf16 model copy written from master, or null (none)
  const float* grad = nullptr;     // f32 gradient
  float* m = nullptr;              // f32 first moment
  float* v = nullptr;              // f32 second moment
  std::int64_t numel = 0;
  // bf16 moments instead of m and v (optimizer.moments: bf16): read and widened to f32, updated
  // in f32, rounded to bf16 once on store. Set these or m and v, not both.
  std::uint16_t* m16 = nullptr;
  std::uint16_t* v16 = nullptr;
};

// The hyperparameters of one parameter group (tensors with different weight decay go in
// separate calls), as backend::AdamWHyper.
struct AdamWParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled
  std::int64_t step = 1;      // 1-based, for bias correction
};

inline constexpr int kAdamWTensorsPerLaunch = 48;

// Updates tensors[0, count) (a host array; its pointers are device pointers). grad_scale: a
// device f32 scalar every gradient is multiplied by first (the clipping coefficient, computed on
// the device without a host round trip), or null for 1.
void adamw_update(const AdamWTensor* tensors, int count, const AdamWParams& params,
                  const float* grad_scale, cudaStream_t stream);

}  // namespace tailor::kernels
