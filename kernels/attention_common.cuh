// Pieces shared by the attention kernels (attention_forward.cu, attention_backward.cu,
// attention_cached.cu): the tile geometry, the shared-memory tile loads and the tile product that
// forms scores. Private to kernels/; included by .cu files only.
//
// Geometry (a function of the head-dim bucket alone, never of the device): a block has kThreads
// = 256 threads seen as 16 x 16, ty = tid / 16, tx = tid % 16. A query tile holds kBr = 64 rows;
// a key tile holds kBc = 64 keys (32 for head dims above 128, to stay within shared memory). In a
// [kBr x kBc] score tile, thread (ty, tx) owns rows ty * 4 + i (i < 4) and columns tx + 16 * j
// (j < kBc / 16): the 16 threads of a row group are one half-warp, so row reductions are
// butterflies over xor offsets 8, 4, 2, 1. Head dims are bucketed to kDh = 64, 128 or 256: tiles
// are zero-padded up to kDh, and loops over the head dim as a reduction run to the real dh.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/device_common.cuh"

namespace tailor::kernels::detail::attn {

inline constexpr int kThreads = 256;
inline constexpr int kBr = 64;  // query rows per tile
inline constexpr int kRpt = 4;  // score rows per thread: kBr / 16

template <int kDh>
struct Tile {
  static constexpr int kBc = kDh > 128 ? 32 : 64;  // keys per tile
  static constexpr int kCpt = kBc / 16;            // score columns (keys) per thread
  static constexpr int kDpt = kDh / 16;            // head-dim columns per thread
  static constexpr int kLdq = kDh + 1;             // row pitch of [rows][kDh] tiles (padded)
  static constexpr int kLdk = kBc + 1;             // row pitch of [kDh][kBc] and [kBr][kBc] tiles
};

// dst[r * kLd + d] = src[r * stride + d] widened to f32, for r < rows_valid and d < dh; 0 for the
// rest of [kRows, kCols). Every thread of the block takes part; the caller synchronizes.
template <int kRows, int kCols, int kLd, typename T>
__device__ __forceinline__ void load_tile(float* dst, const T* src, std::int64_t stride,
                                          int rows_valid, int dh) {
  for (int idx = static_cast<int>(threadIdx.x); idx < kRows * kCols; idx += kThreads) {
    const int r = idx / kCols;
    const int d = idx % kCols;
    float val = 0.0f;
    if (r < rows_valid && d < dh) val = to_float(src[r * stride + d]);
    dst[r * kLd + d] = val;
  }
}

// The transpose: dst[d * kLd + r] = src[r * stride + d] (consecutive threads read consecutive d
// and write kLd apart, an odd pitch, so the stores hit distinct banks).
template <int kRows, int kCols, int kLd, typename T>
__device__ __forceinline__ void load_tile_transposed(float* dst, const T* src, std::int64_t stride,
                                                     int rows_valid, int dh) {
  for (int idx = static_cast<int>(threadIdx.x); idx < kRows * kCols; idx += kThreads) {
    const int r = idx / kCols;
    const int d = idx % kCols;
    float val = 0.0f;
    if (r < rows_valid && d < dh) val = to_float(src[r * stride + d]);
    dst[d * kLd + r] = val;
  }
}

// s[i][j] = sum over d < dh, in order, of a[(ty * 4 + i) * kLda + d] * bt[d * kLdb + tx + 16 * j]:
// the thread's part of the [kBr x kBc] product of a row tile and a transposed column tile.
template <int kCpt, int kLda, int kLdb>
__device__ __forceinline__ void tile_dot(float (&s)[kRpt][kCpt], const float* a, const float* bt,
                                         int dh, int ty, int tx) {
#pragma unroll
  for (int i = 0; i < kRpt; ++i)
#pragma unroll
    for (int j = 0; j < kCpt; ++j) s[i][j] = 0.0f;
  const float* arow = a + ty * kRpt * kLda;
  const float* bcol = bt + tx;
#pragma unroll 2
  for (int d = 0; d < dh; ++d) {
    float av[kRpt];
    float bv[kCpt];
#pragma unroll
    for (int i = 0; i < kRpt; ++i) av[i] = arow[i * kLda + d];
#pragma unroll
    for (int j = 0; j < kCpt; ++j) bv[j] = bcol[d * kLdb + 16 * j];
#pragma unroll
    for (int i = 0; i < kRpt; ++i)
#pragma unroll
      for (int j = 0; j < kCpt; ++j) s[i][j] = fmaf(av[i], bv[j], s[i][j]);
  }
}

// Whether key position `key` is visible from query position `pos` by position alone: causal,
// and inside the sliding window when window > 0 (kv > q - window, as transformers).
__device__ __forceinline__ bool in_window(int key, int pos, int window) {
  return key <= pos && (window <= 0 || key > pos - window);
}

// The first key tile (of kBc keys) that a query at position `pos0` or later can see.
__device__ __forceinline__ int first_key_tile(int pos0, int window, int kbc) {
  return window > 0 ? max(0, pos0 - window + 1) / kbc : 0;
}

// Whether any pair (query row r < rows, key column c) of the thread's part of a tile is visible
// with documents: in_window(k0 + c, pos0 + r) (pos0 is the position of query row 0) and the
// same document id. The caller reduces the answer over the block with __syncthreads_or.
template <int kCpt>
__device__ __forceinline__ bool any_visible(const std::int32_t* docq, const std::int32_t* dock,
                                            int rows, int pos0, int k0, int window, int ty,
                                            int tx) {
  bool any = false;
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    const int r = ty * kRpt + i;
#pragma unroll
    for (int j = 0; j < kCpt; ++j) {
      const int c = tx + 16 * j;
      any = any || (r < rows && in_window(k0 + c, pos0 + r, window) && docq[r] == dock[c]);
    }
  }
  return any;
}

// Parameters of the forward kernel, shared by the training forward (start == nullptr, q_len ==
// kv_cap == T) and the KV-cache attention (doc == nullptr, lse == nullptr).
template <typename T>
struct ForwardParams {
  const T* q = nullptr;                 // [B, q_len, Hq, Dh]
  const T* k = nullptr;                 // [B, kv_cap, Hkv, Dh]
  const T* v = nullptr;                 // [B, kv_cap, Hkv, Dh]
  const std::int32_t* doc = nullptr;    // [B, q_len] or null
  const std::int32_t* start = nullptr;  // [B] position of query 0 of each row, or null (0)
  T* out = nullptr;                     // [B, q_len, Hq, Dh]
  float* lse = nullptr;                 // [B, Hq, q_len] or null
  float scale = 1.0f;
  int window = 0;                       // sliding window over positions, 0: global
  int batch = 0, q_len = 0, kv_cap = 0, hq = 0, hkv = 0, dh = 0;
};

// Launches the forward kernel of the head-dim bucket of p.dh (attention_forward.cu); p is valid
// and non-empty. Checked.
template <typename T>
void launch_forward(const ForwardParams<T>& p, cudaStream_t stream);

}  // namespace tailor::kernels::detail::attn
