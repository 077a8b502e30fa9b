// RMSNorm kernels (see rmsnorm.cuh for the contract).
//
// Forward and dx: one block per row, row_block_threads(D) threads striding over the columns;
// the row's sum goes through detail::block_sum. The expressions follow norm.cpp term by term:
//   y  = (x * rs) * w
//   dx = dy * w * rs - x * c,   c = sum_k(dy_k w_k x_k) * rs^3 / D
//   dw += sum_rows dy * (x * rs)
// dw: pass 1 gives each (chunk of rows, column) one thread that sums its chunk's rows in order
// into the workspace partial[chunk, D]; pass 2 (detail::add_column_partials) sums the chunks in
// order and adds once. Pass 1 runs before dx is written, so dx may alias dy.
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/rmsnorm.cuh"

namespace tailor::kernels {
namespace {

using detail::block_sum;
using detail::from_float;
using detail::to_float;

template <typename T>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                       T* __restrict__ y, float* __restrict__ rstd,
                                       std::int64_t cols, float eps, float inv_d) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  T* yr = y + row * cols;
  float ss = 0.0f;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_float(xr[j]);
    ss += v * v;
  }
  const float ms = block_sum(ss, scratch) * inv_d;
  const float rs = 1.0f / sqrtf(ms + eps);
  if (threadIdx.x == 0) rstd[row] = rs;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    yr[j] = from_float<T>((to_float(xr[j]) * rs) * to_float(w[j]));
}

// dy and dx may be the same memory: each element is read by the thread that later writes it, and
// the block barrier in block_sum orders every read of the row before any write.
template <typename T>
__global__ void rmsnorm_backward_dx_kernel(const T* dy, const T* __restrict__ x,
                                           const T* __restrict__ w, const float* __restrict__ rstd,
                                           T* dx, std::int64_t cols, float inv_d) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* dyr = dy + row * cols;
  const T* xr = x + row * cols;
  T* dxr = dx + row * cols;
  const float rs = rstd[row];
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    s += to_float(dyr[j]) * to_float(w[j]) * to_float(xr[j]);
  const float c = block_sum(s, scratch) * rs * rs * rs * inv_d;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float g = to_float(dyr[j]);
    dxr[j] = from_float<T>(g * to_float(w[j]) * rs - to_float(xr[j]) * c);
  }
}

// partial[chunk, j] = sum over the chunk's rows r, in order, of dy[r, j] * (x[r, j] * rstd[r]).
template <typename T>
__global__ void rmsnorm_dw_partials_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                           const float* __restrict__ rstd,
                                           float* __restrict__ partial, std::int64_t rows,
                                           std::int64_t cols, std::int64_t rows_per_chunk) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t r0 = chunk * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r)
    acc += to_float(dy[r * cols + j]) * (to_float(x[r * cols + j]) * rstd[r]);
  partial[chunk * cols + j] = acc;
}

void check_shape(RmsNormShape s) {
  TAILOR_ASSERT(s.rows >= 0 && s.cols >= 0 && s.rows <= 0x7fffffff, "rmsnorm: bad shape [{}, {}]",
                s.rows, s.cols);
}

template <typename T>
void forward(const T* x, const T* w, T* y, float* rstd, RmsNormShape s, double eps,
             cudaStream_t stream) {
  check_shape(s);
  if (s.rows == 0) return;
  TAILOR_ASSERT(s.cols > 0, "rmsnorm_forward: rows of 0 columns");
  const float inv_d = 1.0f / static_cast<float>(s.cols);
  rmsnorm_forward_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          x, w, y, rstd, s.cols, static_cast<float>(eps), inv_d);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(const T* dy, const T* x, const T* w, const float* rstd, T* dx, float* dw,
              void* workspace, RmsNormShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.rows == 0 || s.cols == 0) return;
  if (dw != nullptr) {
    TAILOR_ASSERT(workspace != nullptr, "rmsnorm_backward: dw needs a workspace");
    const detail::RowChunks chunks = detail::plan_row_chunks(s.rows);
    auto* partial = static_cast<float*>(workspace);
    const dim3 grid(static_cast<unsigned>((s.cols + detail::kColumnTile - 1) / detail::kColumnTile),
                    static_cast<unsigned>(chunks.count));
    rmsnorm_dw_partials_kernel<T><<<grid, detail::kColumnTile, 0, stream>>>(
        dy, x, rstd, partial, s.rows, s.cols, chunks.rows_per_chunk);
    TAILOR_CUDA_CHECK_LAUNCH();
    detail::add_column_partials(partial, chunks.count, s.cols, dw, stream);
  }
  const float inv_d = 1.0f / static_cast<float>(s.cols);
  rmsnorm_backward_dx_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          dy, x, w, rstd, dx, s.cols, inv_d);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, RmsNormShape shape,
                     double eps, cudaStream_t stream) {
  forward(x, w, y, rstd, shape, eps, stream);
}
void rmsnorm_forward(const std::uint16_t* x, const std::uint16_t* w, std::uint16_t* y, float* rstd,
                     RmsNormShape shape, double eps, cudaStream_t stream) {
  forward(x, w, y, rstd, shape, eps, stream);
}

std::size_t rmsnorm_backward_workspace_bytes(RmsNormShape shape) {
  check_shape(shape);
  const detail::RowChunks chunks = detail::plan_row_chunks(shape.rows);
  return static_cast<std::size_t>(chunks.count * shape.cols) * sizeof(float);
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, void* workspace, RmsNormShape shape, cudaStream_t stream) {
  backward(dy, x, w, rstd, dx, dw, workspace, shape, stream);
}
void rmsnorm_backward(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* w,
                      const float* rstd, std::uint16_t* dx, float* dw, void* workspace,
                      RmsNormShape shape, cudaStream_t stream) {
  backward(dy, x, w, rstd, dx, dw, workspace, shape, stream);
}

}  // namespace tailor::kernels
