// Vocab-parallel cross-entropy kernels (see cross_entropy.cuh for the contract).
//
// Every phase runs one block per row with row_block_threads(Vl) threads striding over the
// columns. The expressions follow cross_entropy_parallel.cpp:
//   phase 1: max over x[0, valid)
//   phase 2: sum over x[0, valid) of exp(x - max);  target logit x[t - vocab_begin]
//   phase 3: loss = max + log(sum) - x_t;  g = exp(x - max) * (ds / sum), minus ds at the target
// Phase 3 rewrites each element with the thread that read it, so dlogits may alias the logits;
// the gradient of the target column is formed in f32 and rounded once.
#include <cmath>

#include "kernels/cross_entropy.cuh"
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"

namespace tailor::kernels {
namespace {

using detail::block_max;
using detail::block_sum;
using detail::from_float;
using detail::to_float;

template <typename T>
__global__ void ce_local_max_kernel(const T* __restrict__ logits, float* __restrict__ row_max,
                                    std::int64_t cols, std::int64_t valid_cols) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* x = logits + row * cols;
  float m = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < valid_cols; j += blockDim.x) m = fmaxf(m, to_float(x[j]));
  m = block_max(m, scratch);
  if (threadIdx.x == 0) row_max[row] = m;
}

template <typename T>
__global__ void ce_local_sums_kernel(const T* __restrict__ logits,
                                     const std::int32_t* __restrict__ targets,
                                     const float* __restrict__ row_max, float* __restrict__ stats,
                                     std::int64_t rows, std::int64_t cols, std::int64_t valid_cols,
                                     std::int64_t vocab_begin) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* x = logits + row * cols;
  const float mx = row_max[row];
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < valid_cols; j += blockDim.x)
    s += expf(to_float(x[j]) - mx);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    const std::int32_t target = targets[row];
    const std::int64_t t = static_cast<std::int64_t>(target) - vocab_begin;
    stats[row] = s;
    stats[rows + row] =
        (target != kCeIgnoreIndex && t >= 0 && t < valid_cols) ? to_float(x[t]) : 0.0f;
  }
}

// No __restrict__ on logits / dlogits: they may be the same memory.
template <typename T>
__global__ void ce_finish_kernel(const T* logits, const std::int32_t* __restrict__ targets,
                                 const float* __restrict__ row_max, const float* __restrict__ stats,
                                 float* __restrict__ losses, T* dlogits, float dscale,
                                 std::int64_t rows, std::int64_t cols, std::int64_t valid_cols,
                                 std::int64_t vocab_begin) {
  const std::int64_t row = blockIdx.x;
  const std::int32_t target = targets[row];
  const bool ignored = target == kCeIgnoreIndex;
  const float mx = row_max[row];
  const float sum = stats[row];
  if (threadIdx.x == 0) losses[row] = ignored ? 0.0f : mx + logf(sum) - stats[rows + row];
  if (dlogits == nullptr) return;
  const T* x = logits + row * cols;
  T* g = dlogits + row * cols;
  if (ignored) {
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) g[j] = from_float<T>(0.0f);
    return;
  }
  const float c = dscale / sum;
  const std::int64_t t = static_cast<std::int64_t>(target) - vocab_begin;
  for (std::int64_t j = threadIdx.x; j < valid_cols; j += blockDim.x) {
    float v = expf(to_float(x[j]) - mx) * c;
    if (j == t) v -= dscale;
    g[j] = from_float<T>(v);
  }
  for (std::int64_t j = valid_cols + threadIdx.x; j < cols; j += blockDim.x)
    g[j] = from_float<T>(0.0f);
}

void check_shape(const char* op, CrossEntropyShape s) {
  TAILOR_ASSERT(s.rows >= 0 && s.rows <= 0x7fffffff && s.cols >= 0 && s.valid_cols >= 0 &&
                    s.valid_cols <= s.cols,
                "{}: bad shape (logits [{}, {}], valid_cols {})", op, s.rows, s.cols, s.valid_cols);
}

template <typename T>
void local_max(const T* logits, float* row_max, CrossEntropyShape s, cudaStream_t stream) {
  check_shape("ce_local_max", s);
  if (s.rows == 0) return;
  ce_local_max_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          logits, row_max, s.cols, s.valid_cols);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void local_sums(const T* logits, const std::int32_t* targets, const float* row_max, float* stats,
                CrossEntropyShape s, cudaStream_t stream) {
  check_shape("ce_local_sums", s);
  if (s.rows == 0) return;
  ce_local_sums_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          logits, targets, row_max, stats, s.rows, s.cols, s.valid_cols, s.vocab_begin);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void finish(const T* logits, const std::int32_t* targets, const float* row_max, const float* stats,
            float* losses, T* dlogits, double dscale, CrossEntropyShape s, cudaStream_t stream) {
  check_shape("ce_finish", s);
  if (s.rows == 0) return;
  ce_finish_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          logits, targets, row_max, stats, losses, dlogits, static_cast<float>(dscale), s.rows,
          s.cols, s.valid_cols, s.vocab_begin);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void ce_local_max(const float* logits, float* row_max, CrossEntropyShape shape,
                  cudaStream_t stream) {
  local_max(logits, row_max, shape, stream);
}
void ce_local_max(const std::uint16_t* logits, float* row_max, CrossEntropyShape shape,
                  cudaStream_t stream) {
  local_max(logits, row_max, shape, stream);
}

void ce_local_sums(const float* logits, const std::int32_t* targets, const float* row_max,
                   float* stats, CrossEntropyShape shape, cudaStream_t stream) {
  local_sums(logits, targets, row_max, stats, shape, stream);
}
void ce_local_sums(const std::uint16_t* logits, const std::int32_t* targets, const float* row_max,
                   float* stats, CrossEntropyShape shape, cudaStream_t stream) {
  local_sums(logits, targets, row_max, stats, shape, stream);
}

void ce_finish(const float* logits, const std::int32_t* targets, const float* row_max,
               const float* stats, float* losses, float* dlogits, double dscale,
               CrossEntropyShape shape, cudaStream_t stream) {
  finish(logits, targets, row_max, stats, losses, dlogits, dscale, shape, stream);
}
void ce_finish(const std::uint16_t* logits, const std::int32_t* targets, const float* row_max,
               const float* stats, float* losses, std::uint16_t* dlogits, double dscale,
               CrossEntropyShape shape, cudaStream_t stream) {
  finish(logits, targets, row_max, stats, losses, dlogits, dscale, shape, stream);
}

}  // namespace tailor::kernels
