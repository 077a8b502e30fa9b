// Elementwise kernels, the bias pair and dropout (see elementwise.cuh for the contract).
//
// Flat ops are grid-stride loops over the elements (results do not depend on the grid). Each
// expression follows elementwise.cpp term by term, with __fmul_rn / __fadd_rn where a product
// meets a sum so that nvcc cannot contract them into an FMA the CPU does not do:
//   add:      y = y + (alpha * x)
//   scale:    x = x * alpha
//   add_bias: y = y + bias
//   scale_columns: y = y * s
// bias_backward and scale_columns_backward are the two-pass column reduction of docs/kernels.md
// (as rmsnorm's dw); scale_columns_backward's product is rounded before the sum (__fmul_rn).
//
// Dropout: one thread per Philox block touched by a row, i.e. per group of four consecutive
// global indices 4b .. 4b + 3; it computes the block's four words once and writes the (up to
// four) elements of its row whose global index falls in the group. The Philox4x32-10 rounds and
// the (counter, key) of block b, {b, stream} and {seed}, are those of core/rng.cpp.
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/elementwise.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;

constexpr unsigned kThreads = 256;

// ---- flat ops ---------------------------------------------------------------------------------
// The value is rounded to T on the device (bf16: round to nearest even, as float_to_bf16).
template <typename T>
__global__ void fill_kernel(T* __restrict__ x, std::int64_t n, float value) {
  const T v = from_float<T>(value);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = v;
}

// y and x may be the same memory: each element is read and then written by one thread.
template <typename Y, typename X>
__global__ void add_kernel(Y* y, const X* x, std::int64_t n, float alpha) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    y[i] = from_float<Y>(__fadd_rn(to_float(y[i]), __fmul_rn(alpha, to_float(x[i]))));
}

template <typename T>
__global__ void scale_kernel(T* __restrict__ x, std::int64_t n, float alpha) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(__fmul_rn(to_float(x[i]), alpha));
}

// Rows stride over blockIdx.y, columns over blockIdx.x: no index division.
template <typename T>
__global__ void add_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, std::int64_t rows,
                                std::int64_t cols) {
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    T* yr = y + r * cols;
    for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         j < cols; j += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
      yr[j] = from_float<T>(__fadd_rn(to_float(yr[j]), to_float(bias[j])));
  }
}

template <typename T>
__global__ void scale_columns_kernel(T* __restrict__ y, const T* __restrict__ s, std::int64_t rows,
                                     std::int64_t cols) {
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    T* yr = y + r * cols;
    for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         j < cols; j += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
      yr[j] = from_float<T>(__fmul_rn(to_float(yr[j]), to_float(s[j])));
  }
}

// partial[chunk, j] = sum over the chunk's rows r, in order, of dy[r, j] * x[r, j].
template <typename T>
__global__ void scale_columns_partials_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                              float* __restrict__ partial, std::int64_t rows,
                                              std::int64_t cols, std::int64_t rows_per_chunk) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t r0 = chunk * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r)
    acc = __fadd_rn(acc, __fmul_rn(to_float(dy[r * cols + j]), to_float(x[r * cols + j])));
  partial[chunk * cols + j] = acc;
}

// partial[chunk, j] = sum over the chunk's rows r, in order, of dy[r, j].
template <typename T>
__global__ void bias_partials_kernel(const T* __restrict__ dy, float* __restrict__ partial,
                                     std::int64_t rows, std::int64_t cols,
                                     std::int64_t rows_per_chunk) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t r0 = chunk * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) acc += to_float(dy[r * cols + j]);
  partial[chunk * cols + j] = acc;
}

// ---- dropout ----------------------------------------------------------------------------------
constexpr std::uint32_t kPhiloxMul0 = 0xD2511F53u;
constexpr std::uint32_t kPhiloxMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kPhiloxWeyl1 = 0xBB67AE85u;

// Philox4x32-10 (Salmon et al., SC'11): ten rounds of two 32x32 -> 64-bit products, the key
// bumped by the Weyl constants after each round. Word order as core/rng.cpp's philox4x32.
__device__ __forceinline__ uint4 philox4x32_10(uint4 c, std::uint32_t k0, std::uint32_t k1) {
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const std::uint32_t hi0 = __umulhi(kPhiloxMul0, c.x);
    const std::uint32_t lo0 = kPhiloxMul0 * c.x;
    const std::uint32_t hi1 = __umulhi(kPhiloxMul1, c.z);
    const std::uint32_t lo1 = kPhiloxMul1 * c.z;
    c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    k0 += kPhiloxWeyl0;
    k1 += kPhiloxWeyl1;
  }
  return c;
}

// Block `b` of CounterRng(seed, stream): counter {b, stream}, key {seed}, low words first.
__device__ __forceinline__ uint4 counter_rng_block(std::uint64_t seed, std::uint64_t stream,
                                                   std::uint64_t b) {
  const uint4 ctr =
      make_uint4(static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32),
                 static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32));
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

struct DropoutParams {
  std::uint64_t seed;
  std::uint64_t stream;
  std::int64_t rows;
  std::int64_t cols;
  std::int64_t row0;
  std::int64_t width;
  std::int64_t col0;
  std::int64_t groups_per_row;  // upper bound on the Philox blocks one row touches
  std::uint32_t threshold;      // keep <=> (word >> 8) >= threshold
  float keep_scale;             // 1 / (1 - p), rounded to f32
};

template <typename T>
__device__ __forceinline__ void dropout_one(const T* src, T* dst, std::int64_t at,
                                            std::uint32_t word, const DropoutParams& p) {
  const bool keep = (word >> 8) >= p.threshold;
  dst[at] = keep ? from_float<T>(__fmul_rn(to_float(src[at]), p.keep_scale)) : from_float<T>(0.0f);
}

// src and dst may be the same memory: each element is read and then written by one thread.
template <typename T>
__global__ void dropout_kernel(const T* src, T* dst, DropoutParams p) {
  const std::int64_t total = p.rows * p.groups_per_row;
  for (std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = t / p.groups_per_row;
    const std::int64_t g = t - r * p.groups_per_row;
    const auto first = static_cast<std::uint64_t>((p.row0 + r) * p.width + p.col0);
    const std::uint64_t block = (first >> 2) + static_cast<std::uint64_t>(g);
    // Column of the group's first index (-3 .. cols - 1 for a group that touches the row).
    const std::int64_t c0 = static_cast<std::int64_t>(block * 4u - first);
    if (c0 >= p.cols) continue;
    const uint4 w = counter_rng_block(p.seed, p.stream, block);
    const std::int64_t at = r * p.cols + c0;
    if (c0 >= 0) dropout_one(src, dst, at, w.x, p);
    if (c0 + 1 >= 0 && c0 + 1 < p.cols) dropout_one(src, dst, at + 1, w.y, p);
    if (c0 + 2 >= 0 && c0 + 2 < p.cols) dropout_one(src, dst, at + 2, w.z, p);
    if (c0 + 3 >= 0 && c0 + 3 < p.cols) dropout_one(src, dst, at + 3, w.w, p);
  }
}

// ---- launchers --------------------------------------------------------------------------------
void check_count(const char* op, std::int64_t n) {
  TAILOR_ASSERT(n >= 0, "{}: negative element count {}", op, n);
}

void check_matrix(const char* op, std::int64_t rows, std::int64_t cols) {
  TAILOR_ASSERT(rows >= 0 && cols >= 0, "{}: bad shape [{}, {}]", op, rows, cols);
}

template <typename T>
void fill_impl(T* x, std::int64_t n, float value, cudaStream_t stream) {
  check_count("fill", n);
  if (n == 0) return;
  fill_kernel<T><<<detail::elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(x, n, value);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename Y, typename X>
void add_impl(Y* y, const X* x, std::int64_t n, float alpha, cudaStream_t stream) {
  check_count("add", n);
  if (n == 0) return;
  add_kernel<Y, X>
      <<<detail::elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(y, x, n, alpha);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scale_impl(T* x, std::int64_t n, float alpha, cudaStream_t stream) {
  check_count("scale", n);
  if (n == 0) return;
  scale_kernel<T><<<detail::elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(x, n, alpha);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void add_bias_impl(T* y, const T* bias, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  check_matrix("add_bias", rows, cols);
  if (rows == 0 || cols == 0) return;
  const std::int64_t gx = std::min<std::int64_t>((cols + kThreads - 1) / kThreads, 1 << 16);
  const std::int64_t gy = std::min<std::int64_t>(rows, 65535);
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  add_bias_kernel<T><<<grid, kThreads, 0, stream>>>(y, bias, rows, cols);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void bias_backward_impl(float* dbias, const T* dy, std::int64_t rows, std::int64_t cols,
                        void* workspace, cudaStream_t stream) {
  check_matrix("bias_backward", rows, cols);
  if (rows == 0 || cols == 0) return;
  TAILOR_ASSERT(workspace != nullptr, "bias_backward: needs a workspace of {} bytes",
                bias_backward_workspace_bytes(rows, cols));
  const detail::RowChunks chunks = detail::plan_row_chunks(rows);
  auto* partial = static_cast<float*>(workspace);
  const dim3 grid(static_cast<unsigned>((cols + detail::kColumnTile - 1) / detail::kColumnTile),
                  static_cast<unsigned>(chunks.count));
  bias_partials_kernel<T>
      <<<grid, detail::kColumnTile, 0, stream>>>(dy, partial, rows, cols, chunks.rows_per_chunk);
  TAILOR_CUDA_CHECK_LAUNCH();
  detail::add_column_partials(partial, chunks.count, cols, dbias, stream);
}

template <typename T>
void scale_columns_impl(T* y, const T* s, std::int64_t rows, std::int64_t cols,
                        cudaStream_t stream) {
  check_matrix("scale_columns", rows, cols);
  if (rows == 0 || cols == 0) return;
  const std::int64_t gx = std::min<std::int64_t>((cols + kThreads - 1) / kThreads, 1 << 16);
  const std::int64_t gy = std::min<std::int64_t>(rows, 65535);
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  scale_columns_kernel<T><<<grid, kThreads, 0, stream>>>(y, s, rows, cols);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scale_columns_backward_impl(float* ds, const T* dy, const T* x, std::int64_t rows,
                                 std::int64_t cols, void* workspace, cudaStream_t stream) {
  check_matrix("scale_columns_backward", rows, cols);
  if (rows == 0 || cols == 0) return;
  TAILOR_ASSERT(workspace != nullptr, "scale_columns_backward: needs a workspace of {} bytes",
                bias_backward_workspace_bytes(rows, cols));
  const detail::RowChunks chunks = detail::plan_row_chunks(rows);
  auto* partial = static_cast<float*>(workspace);
  const dim3 grid(static_cast<unsigned>((cols + detail::kColumnTile - 1) / detail::kColumnTile),
                  static_cast<unsigned>(chunks.count));
  scale_columns_partials_kernel<T><<<grid, detail::kColumnTile, 0, stream>>>(
      dy, x, partial, rows, cols, chunks.rows_per_chunk);
  TAILOR_CUDA_CHECK_LAUNCH();
  detail::add_column_partials(partial, chunks.count, cols, ds, stream);
}

template <typename T>
void dropout_impl(const T* src, T* dst, std::int64_t rows, std::int64_t cols, double p,
                  DropoutKeyArgs key, cudaStream_t stream) {
  check_matrix("dropout", rows, cols);
  TAILOR_ASSERT(p >= 0.0 && p < 1.0, "dropout: p = {} outside [0, 1)", p);
  const std::int64_t width = key.row_width > 0 ? key.row_width : cols;
  TAILOR_ASSERT(key.col0 >= 0 && key.col0 + cols <= width && key.row0 >= 0,
                "dropout: columns [{}, {}) of a {}-wide tensor", key.col0, key.col0 + cols, width);
  if (rows == 0 || cols == 0) return;
  // As CpuOps::dropout: keep <=> (bits >> 8) * 2^-24 >= p <=> (bits >> 8) >= ceil(p * 2^24).
  const double scaled = p * 16777216.0;
  auto threshold = static_cast<std::uint32_t>(scaled);
  if (static_cast<double>(threshold) < scaled) ++threshold;
  DropoutParams params{};
  params.seed = key.seed;
  params.stream = key.stream;
  params.rows = rows;
  params.cols = cols;
  params.row0 = key.row0;
  params.width = width;
  params.col0 = key.col0;
  // A row's indices [first, first + cols) touch at most 1 + ceil((cols - 1) / 4) blocks.
  params.groups_per_row = (cols + 6) / 4;
  params.threshold = threshold;
  params.keep_scale = static_cast<float>(1.0 / (1.0 - p));
  const std::int64_t total = rows * params.groups_per_row;
  dropout_kernel<T>
      <<<detail::elementwise_blocks(total, kThreads), kThreads, 0, stream>>>(src, dst, params);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void fill(float* x, std::int64_t n, float value, cudaStream_t stream) {
  fill_impl(x, n, value, stream);
}
void fill(std::uint16_t* x, std::int64_t n, float value, cudaStream_t stream) {
  fill_impl(x, n, value, stream);
}

void add(float* y, const float* x, std::int64_t n, float alpha, cudaStream_t stream) {
  add_impl(y, x, n, alpha, stream);
}
void add(std::uint16_t* y, const std::uint16_t* x, std::int64_t n, float alpha,
         cudaStream_t stream) {
  add_impl(y, x, n, alpha, stream);
}
void add(float* y, const std::uint16_t* x, std::int64_t n, float alpha, cudaStream_t stream) {
  add_impl(y, x, n, alpha, stream);
}

void scale(float* x, std::int64_t n, float alpha, cudaStream_t stream) {
  scale_impl(x, n, alpha, stream);
}
void scale(std::uint16_t* x, std::int64_t n, float alpha, cudaStream_t stream) {
  scale_impl(x, n, alpha, stream);
}

void add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream) {
  add_bias_impl(y, bias, rows, cols, stream);
}
void add_bias(std::uint16_t* y, const std::uint16_t* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream) {
  add_bias_impl(y, bias, rows, cols, stream);
}

std::size_t bias_backward_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  check_matrix("bias_backward", rows, cols);
  const detail::RowChunks chunks = detail::plan_row_chunks(rows);
  return static_cast<std::size_t>(chunks.count * cols) * sizeof(float);
}

void bias_backward(float* dbias, const float* dy, std::int64_t rows, std::int64_t cols,
                   void* workspace, cudaStream_t stream) {
  bias_backward_impl(dbias, dy, rows, cols, workspace, stream);
}
void bias_backward(float* dbias, const std::uint16_t* dy, std::int64_t rows, std::int64_t cols,
                   void* workspace, cudaStream_t stream) {
  bias_backward_impl(dbias, dy, rows, cols, workspace, stream);
}

void scale_columns(float* y, const float* s, std::int64_t rows, std::int64_t cols,
                   cudaStream_t stream) {
  scale_columns_impl(y, s, rows, cols, stream);
}
void scale_columns(std::uint16_t* y, const std::uint16_t* s, std::int64_t rows, std::int64_t cols,
                   cudaStream_t stream) {
  scale_columns_impl(y, s, rows, cols, stream);
}

void scale_columns_backward(float* ds, const float* dy, const float* x, std::int64_t rows,
                            std::int64_t cols, void* workspace, cudaStream_t stream) {
  scale_columns_backward_impl(ds, dy, x, rows, cols, workspace, stream);
}
void scale_columns_backward(float* ds, const std::uint16_t* dy, const std::uint16_t* x,
                            std::int64_t rows, std::int64_t cols, void* workspace,
                            cudaStream_t stream) {
  scale_columns_backward_impl(ds, dy, x, rows, cols, workspace, stream);
}

void dropout(const float* src, float* dst, std::int64_t rows, std::int64_t cols, double p,
             DropoutKeyArgs key, cudaStream_t stream) {
  dropout_impl(src, dst, rows, cols, p, key, stream);
}
void dropout(const std::uint16_t* src, std::uint16_t* dst, std::int64_t rows, std::int64_t cols,
             double p, DropoutKeyArgs key, cudaStream_t stream) {
  dropout_impl(src, dst, rows, cols, p, key, stream);
}

}  // namespace tailor::kernels
