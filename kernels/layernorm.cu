// LayerNorm kernels (see layernorm.cuh for the contract).
//
// Forward and dx: one block per row, row_block_threads(D) threads striding over the columns,
// row sums through detail::block_sum. The expressions follow norm.cpp term by term:
//   mean = sum(x) / D,  var = sum((x - mean)^2) / D,  rs = 1 / sqrt(var + eps)
//   y    = (x - mean) * rs * w + b
//   xhat = (x - mean) * rs,  g = dy * w:  dx = (g - mean(g) - xhat * mean(g xhat)) * rs
//   dw  += sum_rows dy * xhat,  db += sum_rows dy
// dw and db: pass 1 gives each (chunk of rows, column) one thread summing its chunk's rows in
// order into partial[chunk, D] (dw's partials first in the workspace, then db's); pass 2
// (detail::add_column_partials) sums the chunks in order and adds once. Pass 1 runs before dx is
// written, so dx may alias dy.
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/layernorm.cuh"

namespace tailor::kernels {
namespace {

using detail::block_sum;
using detail::from_float;
using detail::to_float;

template <typename T>
__global__ void layernorm_forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                         const T* __restrict__ b, T* __restrict__ y,
                                         float* __restrict__ mean, float* __restrict__ rstd,
                                         std::int64_t cols, float eps, float inv_d) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  T* yr = y + row * cols;
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += to_float(xr[j]);
  const float mu = block_sum(s, scratch) * inv_d;
  float ss = 0.0f;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = to_float(xr[j]) - mu;
    ss += d * d;
  }
  const float var = block_sum(ss, scratch) * inv_d;
  const float rs = 1.0f / sqrtf(var + eps);
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = (to_float(xr[j]) - mu) * rs * to_float(w[j]);
    yr[j] = from_float<T>(b != nullptr ? v + to_float(b[j]) : v);
  }
}

// dy and dx may be the same memory (every read of the row precedes the barriers in block_sum,
// and each element is rewritten by the thread that read it).
template <typename T>
__global__ void layernorm_backward_dx_kernel(const T* dy, const T* __restrict__ x,
                                             const T* __restrict__ w,
                                             const float* __restrict__ mean,
                                             const float* __restrict__ rstd, T* dx,
                                             std::int64_t cols, float inv_d) {
  __shared__ float scratch[detail::kWarp];
  const std::int64_t row = blockIdx.x;
  const T* dyr = dy + row * cols;
  const T* xr = x + row * cols;
  T* dxr = dx + row * cols;
  const float mu = mean[row];
  const float rs = rstd[row];
  float sum_g = 0.0f;
  float sum_gx = 0.0f;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float g = to_float(dyr[j]) * to_float(w[j]);
    sum_g += g;
    sum_gx += g * ((to_float(xr[j]) - mu) * rs);
  }
  const float mean_g = block_sum(sum_g, scratch) * inv_d;
  const float mean_gx = block_sum(sum_gx, scratch) * inv_d;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float xhat = (to_float(xr[j]) - mu) * rs;
    dxr[j] = from_float<T>((to_float(dyr[j]) * to_float(w[j]) - mean_g - xhat * mean_gx) * rs);
  }
}

// partial_w[chunk, j] = sum over the chunk's rows of dy * xhat; partial_b[chunk, j] = of dy.
// Either pointer may be null (that gradient is not wanted).
template <typename T>
__global__ void layernorm_dwdb_partials_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                               const float* __restrict__ mean,
                                               const float* __restrict__ rstd,
                                               float* __restrict__ partial_w,
                                               float* __restrict__ partial_b, std::int64_t rows,
                                               std::int64_t cols, std::int64_t rows_per_chunk) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t r0 = chunk * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc_w = 0.0f;
  float acc_b = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float g = to_float(dy[r * cols + j]);
    if (partial_w != nullptr) acc_w += g * ((to_float(x[r * cols + j]) - mean[r]) * rstd[r]);
    acc_b += g;
  }
  if (partial_w != nullptr) partial_w[chunk * cols + j] = acc_w;
  if (partial_b != nullptr) partial_b[chunk * cols + j] = acc_b;
}

void check_shape(LayerNormShape s) {
  TAILOR_ASSERT(s.rows >= 0 && s.cols >= 0 && s.rows <= 0x7fffffff, "layernorm: bad shape [{}, {}]",
                s.rows, s.cols);
}

template <typename T>
void forward(const T* x, const T* w, const T* b, T* y, float* mean, float* rstd, LayerNormShape s,
             double eps, cudaStream_t stream) {
  check_shape(s);
  if (s.rows == 0) return;
  TAILOR_ASSERT(s.cols > 0, "layernorm_forward: rows of 0 columns");
  const float inv_d = 1.0f / static_cast<float>(s.cols);
  layernorm_forward_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          x, w, b, y, mean, rstd, s.cols, static_cast<float>(eps), inv_d);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(const T* dy, const T* x, const T* w, const float* mean, const float* rstd, T* dx,
              float* dw, float* db, void* workspace, LayerNormShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.rows == 0 || s.cols == 0) return;
  if (dw != nullptr || db != nullptr) {
    TAILOR_ASSERT(workspace != nullptr, "layernorm_backward: dw / db need a workspace");
    const detail::RowChunks chunks = detail::plan_row_chunks(s.rows);
    float* partial_w = static_cast<float*>(workspace);
    float* partial_b = partial_w + chunks.count * s.cols;
    const dim3 grid(static_cast<unsigned>((s.cols + detail::kColumnTile - 1) / detail::kColumnTile),
                    static_cast<unsigned>(chunks.count));
    layernorm_dwdb_partials_kernel<T><<<grid, detail::kColumnTile, 0, stream>>>(
        dy, x, mean, rstd, dw != nullptr ? partial_w : nullptr, db != nullptr ? partial_b : nullptr,
        s.rows, s.cols, chunks.rows_per_chunk);
    TAILOR_CUDA_CHECK_LAUNCH();
    if (dw != nullptr) detail::add_column_partials(partial_w, chunks.count, s.cols, dw, stream);
    if (db != nullptr) detail::add_column_partials(partial_b, chunks.count, s.cols, db, stream);
  }
  const float inv_d = 1.0f / static_cast<float>(s.cols);
  layernorm_backward_dx_kernel<T>
      <<<static_cast<unsigned>(s.rows), detail::row_block_threads(s.cols), 0, stream>>>(
          dy, x, w, mean, rstd, dx, s.cols, inv_d);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean,
                       float* rstd, LayerNormShape shape, double eps, cudaStream_t stream) {
  forward(x, w, b, y, mean, rstd, shape, eps, stream);
}
void layernorm_forward(const std::uint16_t* x, const std::uint16_t* w, const std::uint16_t* b,
                       std::uint16_t* y, float* mean, float* rstd, LayerNormShape shape, double eps,
                       cudaStream_t stream) {
  forward(x, w, b, y, mean, rstd, shape, eps, stream);
}

std::size_t layernorm_backward_workspace_bytes(LayerNormShape shape) {
  check_shape(shape);
  const detail::RowChunks chunks = detail::plan_row_chunks(shape.rows);
  return 2 * static_cast<std::size_t>(chunks.count * shape.cols) * sizeof(float);
}

void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean,
                        const float* rstd, float* dx, float* dw, float* db, void* workspace,
                        LayerNormShape shape, cudaStream_t stream) {
  backward(dy, x, w, mean, rstd, dx, dw, db, workspace, shape, stream);
}
void layernorm_backward(const std::uint16_t* dy, const std::uint16_t* x, const std::uint16_t* w,
                        const float* mean, const float* rstd, std::uint16_t* dx, float* dw,
                        float* db, void* workspace, LayerNormShape shape, cudaStream_t stream) {
  backward(dy, x, w, mean, rstd, dx, dw, db, workspace, shape, stream);
}

}  // namespace tailor::kernels
