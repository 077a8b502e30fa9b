// The second pass of the column reductions over rows (see device_common.cuh).
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"

namespace tailor::kernels::detail {
namespace {

__global__ void add_column_partials_kernel(const float* __restrict__ partial, std::int64_t chunks,
                                           std::int64_t cols, float* __restrict__ out) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float s = partial[j];
  for (std::int64_t c = 1; c < chunks; ++c) s += partial[c * cols + j];
  out[j] += s;
}

}  // namespace

void add_column_partials(const float* partial, std::int64_t chunks, std::int64_t cols, float* out,
                         cudaStream_t stream) {
  if (chunks <= 0 || cols <= 0) return;
  const auto blocks = static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile);
  add_column_partials_kernel<<<blocks, kColumnTile, 0, stream>>>(partial, chunks, cols, out);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace tailor::kernels::detail
