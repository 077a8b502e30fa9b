// Device-side helpers shared by the kernels of this directory: conversion of the two storage
// types (f32, and bf16 held as its raw 16 bits) to and from f32, deterministic warp and block
// reductions, and the fixed work decompositions the launchers use. Included by .cu files only:
// the launcher headers (*.cuh next to each .cu) stay plain C++ that g++ can compile.
//
// Determinism: a reduction's result depends only on the order of its additions. Every helper here
// adds in an order fixed by the block size and the problem shape, and every launcher chooses its
// block size and decomposition from the shape alone (never from the device or its occupancy), so
// the same shape gives bit-identical results on every run. There are no atomics anywhere.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace tailor::kernels::detail {

// ---- storage types ----------------------------------------------------------------------------
// f32 storage is used as is; bf16 (raw bits in std::uint16_t) widens exactly to f32 and narrows
// with round-to-nearest-even, as tailor::float_to_bf16 does.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(std::uint16_t bits) {
  return __bfloat162float(__ushort_as_bfloat16(bits));
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ std::uint16_t from_float<std::uint16_t>(float v) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

// ---- reductions ---------------------------------------------------------------------------------
inline constexpr int kWarp = 32;

// Butterfly sum over the 32 lanes. Each level adds two values that every lane of a pair holds
// equally (a + b == b + a exactly), so all lanes end with the same bits.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum of v over the block, returned to every thread. blockDim.x must be a multiple of 32 (at most
// 1024); `scratch` is __shared__ storage of 32 elements. The warps' sums are added in warp order
// by every thread alike, so all threads return the same bits. Safe to call repeatedly with the
// same scratch (the first barrier waits for the readers of the previous call).
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int warps = static_cast<int>(blockDim.x) / kWarp;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = scratch[0];
  for (int w = 1; w < warps; ++w) total += scratch[w];
  return total;
}

// Maximum of v over the block (NaN-ignoring, as fmaxf), returned to every thread. Same contract
// as block_sum.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int warps = static_cast<int>(blockDim.x) / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = scratch[0];
  for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
  return m;
}

// ---- fixed decompositions (host side) ----------------------------------------------------------
// Threads of a block that reduces one row of `cols` elements: about 8 elements per thread, a
// power of two in [32, 1024]. A function of cols alone, so a row always reduces in the same order.
inline unsigned row_block_threads(std::int64_t cols) {
  unsigned t = kWarp;
  while (t < 1024 && static_cast<std::int64_t>(t) * 8 < cols) t *= 2;
  return t;
}

// Blocks of a grid-stride elementwise kernel over n elements (n > 0). Elementwise results do not
// depend on the grid, so this only caps the launch size.
inline unsigned elementwise_blocks(std::int64_t n, unsigned threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 1 << 20));
}

// Chunks of rows for a column reduction over rows (dweight of the norms): one partial row per
// chunk, partials summed in chunk order. At least kMinRows rows per chunk and at most kMaxChunks
// chunks, a function of rows alone.
struct RowChunks {
  std::int64_t rows_per_chunk = 1;
  std::int64_t count = 0;
};
inline RowChunks plan_row_chunks(std::int64_t rows) {
  constexpr std::int64_t kMinRows = 32;
  constexpr std::int64_t kMaxChunks = 256;
  RowChunks c;
  if (rows <= 0) return c;
  const std::int64_t wanted = std::min((rows + kMinRows - 1) / kMinRows, kMaxChunks);
  c.rows_per_chunk = (rows + wanted - 1) / wanted;
  c.count = (rows + c.rows_per_chunk - 1) / c.rows_per_chunk;
  return c;
}

// Threads per block (one column each) of the column-partial kernels.
inline constexpr unsigned kColumnTile = 256;

// out[j] += sum over chunks c, in order, of partial[c * cols + j]  (partial: [chunks, cols]):
// the second pass of a column reduction. The partials are summed first and added once, as
// cpu::add_partials does. Launched on `stream` and checked (device_common.cu).
void add_column_partials(const float* partial, std::int64_t chunks, std::int64_t cols, float* out,
                         cudaStream_t stream);

// Rounds a workspace offset up to 256 bytes (the alignment cudaMalloc gives).
inline std::size_t align_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace tailor::kernels::detail
