// Elementwise ops, the bias pair and dropout, as CpuOps (src/backend/cpu/elementwise.cpp,
// dropout.cpp) defines them: fill, add (y += alpha x), scale, add_bias, bias_backward,
// scale_columns, scale_columns_backward, dropout.
//
// Storage is f32 (the tight tests' mode) or bf16 (raw bits in std::uint16_t, the training mode);
// arithmetic is f32 in both, rounded once on store. In f32 every op computes the CPU's expression
// term by term without fused multiply-adds, so fill, add, scale, add_bias and dropout give the
// CPU's bits exactly. bias_backward accumulates into an f32 gradient (+=) with the deterministic
// two-pass column reduction of docs/kernels.md. Dropout draws its mask from the same Philox4x32-10
// stream as CounterRng, so every backend, thread count and shard sees the same mask.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

// x[i] = value for i < n (value rounded to bf16 for bf16 storage).
void fill(float* x, std::int64_t n, float value, cudaStream_t stream);
void fill(std::uint16_t* x, std::int64_t n, float value, cudaStream_t stream);

// y[i] += alpha * x[i] for i < n: the product and the sum in f32 (not fused), rounded once to
// y's storage. The mixed overload adds a bf16 tensor into an f32 accumulator. y may alias x.
void add(float* y, const float* x, std::int64_t n, float alpha, cudaStream_t stream);
void add(std::uint16_t* y, const std::uint16_t* x, std::int64_t n, float alpha,
         cudaStream_t stream);
void add(float* y, const std::uint16_t* x, std::int64_t n, float alpha, cudaStream_t stream);

// x[i] *= alpha for i < n.
void scale(float* x, std::int64_t n, float alpha, cudaStream_t stream);
void scale(std::uint16_t* x, std::int64_t n, float alpha, cudaStream_t stream);

// y[rows, cols] += bias[cols] broadcast over rows.
void add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream);
void add_bias(std::uint16_t* y, const std::uint16_t* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream);

// Device workspace bias_backward needs (0 when there is nothing to reduce).
[[nodiscard]] std::size_t bias_backward_workspace_bytes(std::int64_t rows, std::int64_t cols);

// dbias[cols] (f32) += column sums of dy[rows, cols]. Pass 1: one thread per (chunk of rows,
// column) sums its chunk in row order into the workspace; pass 2 sums the chunks in order and
// adds once (detail::plan_row_chunks / add_column_partials).
void bias_backward(float* dbias, const float* dy, std::int64_t rows, std::int64_t cols,
                   void* workspace, cudaStream_t stream);
void bias_backward(float* dbias, const std::uint16_t* dy, std::int64_t rows, std::int64_t cols,
                   void* workspace, cudaStream_t stream);

// y[rows, cols] *= s[cols] broadcast over rows (IA3's scaling).
void scale_columns(float* y, const float* s, std::int64_t rows, std::int64_t cols,
                   cudaStream_t stream);
void scale_columns(std::uint16_t* y, const std::uint16_t* s, std::int64_t rows, std::int64_t cols,
                   cudaStream_t stream);

// ds[cols] (f32) += column sums of dy * x [rows, cols], as bias_backward (same workspace size:
// bias_backward_workspace_bytes).
void scale_columns_backward(float* ds, const float* dy, const float* x, std::int64_t rows,
                            std::int64_t cols, void* workspace, cudaStream_t stream);
void scale_columns_backward(float* ds, const std::uint16_t* dy, const std::uint16_t* x,
                            std::int64_t rows, std::int64_t cols, void* workspace,
                            cudaStream_t stream);

// Where a dropout mask's random numbers come from: backend::DropoutKey's fields (see Ops::dropout).
struct DropoutKeyArgs {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  std::int64_t row0 = 0;       // global row of the tensor's row 0
  std::int64_t row_width = 0;  // columns of the global tensor (0: cols, the tensor is whole)
  std::int64_t col0 = 0;       // global column of the tensor's column 0
};

// dst[rows, cols] = src * keep / (1 - p), keep = (word i of CounterRng(seed, stream)) >> 8 >=
// ceil(p * 2^24), i = (row0 + r) * row_width + col0 + c; as CpuOps::dropout, bit for bit in f32.
// p is a double like the CPU's, so the threshold and 1 / (1 - p) are formed from the same value.
// 0 <= p < 1; dst may alias src.
void dropout(const float* src, float* dst, std::int64_t rows, std::int64_t cols, double p,
             DropoutKeyArgs key, cudaStream_t stream);
void dropout(const std::uint16_t* src, std::uint16_t* dst, std::int64_t rows, std::int64_t cols,
             double p, DropoutKeyArgs key, cudaStream_t stream);

}  // namespace tailor::kernels
