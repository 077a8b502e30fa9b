// Multi-tensor AdamW kernel (see adamw.cuh for the contract).
//
// Each tensor is cut into chunks of kChunk elements; a launch's blocks are numbered through the
// chunks of its tensors in order, and a block finds its tensor by binary search over the
// tensors' first block numbers. The per-element arithmetic is adamw.cpp's, term by term.
#include <cmath>

#include "kernels/adamw.cuh"
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;

constexpr unsigned kThreads = 256;
constexpr std::int64_t kChunk = 8 * kThreads;  // elements per block

// The kernel's parameter block: one launch's tensors (kept under 4 KiB, the classic limit).
struct AdamWBatch {
  float* master[kAdamWTensorsPerLaunch];
  std::uint16_t* model[kAdamWTensorsPerLaunch];
  const float* grad[kAdamWTensorsPerLaunch];
  float* m[kAdamWTensorsPerLaunch];
  float* v[kAdamWTensorsPerLaunch];
  std::uint16_t* m16[kAdamWTensorsPerLaunch];  // bf16 moments (then m, v are null)
  std::uint16_t* v16[kAdamWTensorsPerLaunch];
  std::int64_t numel[kAdamWTensorsPerLaunch];
  int first_block[kAdamWTensorsPerLaunch + 1];  // block numbers of tensor i: [first[i], first[i+1])
  int count;
};
static_assert(sizeof(AdamWBatch) <= 4096, "kernel parameters must stay under 4 KiB");

// The step's scalars, in f32, rounded once from double as adamw.cpp does.
struct AdamWScalars {
  float decay;    // 1 - lr * wd
  float w1;       // 1 - beta1
  float w1c;      // 1 - w1, in f32 (torch's lerp for weights >= 0.5)
  bool small_w1;  // |1 - beta1| < 0.5: which lerp formula
  float b2;
  float w2;        // 1 - beta2
  float neg_step;  // -lr / bc1
  float bc2_sqrt;  // sqrt(bc2)
  float eps;
};

__global__ void adamw_kernel(const AdamWBatch batch, const AdamWScalars k,
                             const float* __restrict__ grad_scale) {
  const int block = static_cast<int>(blockIdx.x);
  int lo = 0;
  int hi = batch.count - 1;
  while (lo < hi) {  // the last tensor whose first block is <= block
    const int mid = (lo + hi + 1) / 2;
    if (batch.first_block[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int t = lo;
  const std::int64_t begin = static_cast<std::int64_t>(block - batch.first_block[t]) * kChunk;
  const std::int64_t end = begin + kChunk < batch.numel[t] ? begin + kChunk : batch.numel[t];
  float* __restrict__ pp = batch.master[t];
  std::uint16_t* __restrict__ pmodel = batch.model[t];
  const float* __restrict__ pg = batch.grad[t];
  float* __restrict__ pm = batch.m[t];
  float* __restrict__ pv = batch.v[t];
  std::uint16_t* __restrict__ pm16 = batch.m16[t];
  std::uint16_t* __restrict__ pv16 = batch.v16[t];
  const float scale = grad_scale != nullptr ? *grad_scale : 1.0f;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float g = grad_scale != nullptr ? pg[i] * scale : pg[i];
    const float p = pp[i] * k.decay;
    const float m_old = pm16 != nullptr ? to_float(pm16[i]) : pm[i];
    const float v_old = pv16 != nullptr ? to_float(pv16[i]) : pv[i];
    const float mi = k.small_w1 ? m_old + k.w1 * (g - m_old) : g - (g - m_old) * k.w1c;
    const float vi = v_old * k.b2 + k.w2 * g * g;
    const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
    const float p_new = p + k.neg_step * mi / denom;
    if (pm16 != nullptr) {
      pm16[i] = from_float<std::uint16_t>(mi);
      pv16[i] = from_float<std::uint16_t>(vi);
    } else {
      pm[i] = mi;
      pv[i] = vi;
    }
    pp[i] = p_new;
    if (pmodel != nullptr) pmodel[i] = from_float<std::uint16_t>(p_new);
  }
}

AdamWScalars scalars(const AdamWParams& h) {
  const auto step = static_cast<double>(h.step);
  const double bc1 = 1.0 - std::pow(h.beta1, step);
  const double bc2 = 1.0 - std::pow(h.beta2, step);
  AdamWScalars k{};
  k.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  k.w1 = static_cast<float>(1.0 - h.beta1);
  k.small_w1 = std::abs(1.0 - h.beta1) < 0.5;
  k.w1c = 1.0f - k.w1;
  k.b2 = static_cast<float>(h.beta2);
  k.w2 = static_cast<float>(1.0 - h.beta2);
  k.neg_step = static_cast<float>(-(h.lr / bc1));
  k.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  k.eps = static_cast<float>(h.eps);
  return k;
}

}  // namespace

void adamw_update(const AdamWTensor* tensors, int count, const AdamWParams& params,
                  const float* grad_scale, cudaStream_t stream) {
  TAILOR_ASSERT(count >= 0 && (count == 0 || tensors != nullptr), "adamw_update: {} tensors",
                count);
  TAILOR_ASSERT(params.step >= 1, "adamw_update: step {} (1-based)", params.step);
  const AdamWScalars k = scalars(params);
  int i = 0;
  while (i < count) {
    AdamWBatch batch{};
    std::int64_t blocks = 0;
    for (; i < count && batch.count < kAdamWTensorsPerLaunch; ++i) {
      const AdamWTensor& t = tensors[i];
      TAILOR_ASSERT(t.numel >= 0, "adamw_update: tensor {} has {} elements", i, t.numel);
      if (t.numel == 0) continue;
      const bool f32_moments = t.m != nullptr && t.v != nullptr && t.m16 == nullptr && t.v16 == nullptr;
      const bool bf16_moments = t.m16 != nullptr && t.v16 != nullptr && t.m == nullptr && t.v == nullptr;
      TAILOR_ASSERT(t.master != nullptr && t.grad != nullptr && (f32_moments || bf16_moments),
                    "adamw_update: tensor {} lacks a buffer (or has both f32 and bf16 moments)", i);
      const int b = batch.count++;
      batch.master[b] = t.master;
      batch.model[b] = t.model;
      batch.grad[b] = t.grad;
      batch.m[b] = t.m;
      batch.v[b] = t.v;
      batch.m16[b] = t.m16;
      batch.v16[b] = t.v16;
      batch.numel[b] = t.numel;
      batch.first_block[b] = static_cast<int>(blocks);
      blocks += (t.numel + kChunk - 1) / kChunk;
      TAILOR_ASSERT(blocks <= 0x7fffffff, "adamw_update: too many elements in one launch");
    }
    if (batch.count == 0) continue;
    batch.first_block[batch.count] = static_cast<int>(blocks);
    adamw_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(batch, k, grad_scale);
    TAILOR_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace tailor::kernels
