// Shared helpers of the CPU backend: dtype dispatch, argument checks, block sizes and the
// fixed-order inner reductions every op file uses. Private to src/backend/cpu.
//
// Determinism: every block size below is a function of the problem size only, never of the
// thread count, and every reduction combines its lanes and blocks in one fixed order. So an op
// gives bit-identical results on any ThreadPool. Inner loops are written so that the compiler can
// vectorize them without -ffast-math (independent lanes instead of reassociated sums): the
// vector width then never changes a result either.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "backend/tensor.h"
#include "core/dtype.h"
#include "core/error.h"

namespace tailor::backend::cpu {

// Elements per block of a flat elementwise op or a flat reduction.
inline constexpr std::int64_t kElemBlock = std::int64_t{1} << 15;
// Elements a row block aims at; rows per block stays within [1, kMaxRowsPerBlock].
inline constexpr std::int64_t kRowBlockElems = std::int64_t{1} << 14;
inline constexpr std::int64_t kMaxRowsPerBlock = 64;
// Upper bound on the partials of a reduction over rows (memory of the partial buffer).
inline constexpr std::int64_t kMaxPartials = 64;

// Rows per block of a row-wise op on rows of `cols` elements.
[[nodiscard]] inline std::int64_t rows_per_block(std::int64_t cols) noexcept {
  return std::clamp<std::int64_t>(kRowBlockElems / std::max<std::int64_t>(cols, 1), 1,
                                  kMaxRowsPerBlock);
}

// Row blocks of a reduction over n rows of `cols` elements: one partial per block.
struct RowBlocks {
  std::int64_t size = 1;   // rows per block
  std::int64_t count = 0;  // number of blocks (= partials)
};
[[nodiscard]] inline RowBlocks reduction_blocks(std::int64_t n, std::int64_t cols) noexcept {
  RowBlocks b;
  b.size = std::max(rows_per_block(cols), (n + kMaxPartials - 1) / kMaxPartials);
  b.count = (n + b.size - 1) / b.size;
  return b;
}

// out[j] += sum over blocks b (in order) of partial[b * cols + j]: the last step of a reduction
// over rows. The partials are summed first, then added once, as a serial column sum would be.
template <typename T>
void add_partials(std::vector<T>& partial, std::int64_t count, std::int64_t cols, T* out) {
  T* acc = partial.data();
  for (std::int64_t b = 1; b < count; ++b) {
    const T* p = partial.data() + b * cols;
    for (std::int64_t j = 0; j < cols; ++j) acc[j] += p[j];
  }
  if (count > 0)
    for (std::int64_t j = 0; j < cols; ++j) out[j] += acc[j];
}

// Calls fn(T{}) with T = float or double after the dtype of `t`; asserts on any other dtype.
template <typename Fn>
void dispatch_float(std::string_view op, const Tensor& t, Fn&& fn) {
  switch (t.dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    default:
      break;
  }
  TAILOR_ASSERT(false, "{}: unsupported dtype {} (the CPU backend computes in f32 or f64)", op,
                dtype_name(t.dtype));
}

inline void check_cpu(std::string_view op, const Tensor& t) {
  TAILOR_ASSERT(t.device == Device::kCpu, "{}: tensor {} is not on the CPU", op, t.str());
  TAILOR_ASSERT(t.data != nullptr || t.numel() == 0, "{}: tensor {} has no data", op, t.str());
}
// Same dtype and element count as `ref` (shapes may differ as views of the same layout).
inline void check_like(std::string_view op, const Tensor& ref, const Tensor& t) {
  check_cpu(op, t);
  TAILOR_ASSERT(t.dtype == ref.dtype, "{}: dtype of {} differs from {}", op, t.str(), ref.str());
  TAILOR_ASSERT(t.numel() == ref.numel(), "{}: size of {} differs from {}", op, t.str(), ref.str());
}
inline void check_dtype(std::string_view op, const Tensor& t, DType dtype) {
  check_cpu(op, t);
  TAILOR_ASSERT(t.dtype == dtype, "{}: {} should be {}", op, t.str(), dtype_name(dtype));
}
inline void check_numel(std::string_view op, const Tensor& t, std::int64_t n) {
  TAILOR_ASSERT(t.numel() == n, "{}: {} should have {} elements", op, t.str(), n);
}
// Rows of the matrix view of t: the product of all dimensions but the last. Unlike
// Shape::rows(), this stays right when the last dimension is 0 (a [M, 0] operand of a K = 0 GEMM).
[[nodiscard]] inline std::int64_t matrix_rows(const Tensor& t) {
  std::int64_t r = 1;
  for (int i = 0; i + 1 < t.shape.rank(); ++i) r *= t.shape[i];
  return r;
}
[[nodiscard]] inline bool present(const Tensor& t) noexcept { return t.data != nullptr; }

// ---- fixed-order inner reductions (kLanes interleaved accumulators, combined as a tree) -----
inline constexpr int kLanes = 8;

template <typename Acc>
[[nodiscard]] inline Acc combine_lanes(const Acc (&acc)[kLanes]) noexcept {
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// sum_i x[i] in Acc.
template <typename Acc, typename T>
[[nodiscard]] inline Acc lane_sum(const T* x, std::int64_t n) noexcept {
  Acc acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<Acc>(x[i + l]);
  for (int l = 0; i < n; ++i, ++l) acc[l] += static_cast<Acc>(x[i]);
  return combine_lanes(acc);
}

// sum_i a[i] * b[i] in Acc.
template <typename Acc, typename T>
[[nodiscard]] inline Acc lane_dot(const T* a, const T* b, std::int64_t n) noexcept {
  Acc acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      acc[l] += static_cast<Acc>(a[i + l]) * static_cast<Acc>(b[i + l]);
  for (int l = 0; i < n; ++i, ++l) acc[l] += static_cast<Acc>(a[i]) * static_cast<Acc>(b[i]);
  return combine_lanes(acc);
}

// sum_i (x[i] - c)^2 in T.
template <typename T>
[[nodiscard]] inline T lane_centered_sum_squares(const T* x, T c, std::int64_t n) noexcept {
  T acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T d = x[i + l] - c;
      acc[l] += d * d;
    }
  for (int l = 0; i < n; ++i, ++l) {
    const T d = x[i] - c;
    acc[l] += d * d;
  }
  return combine_lanes(acc);
}

// max_i x[i] (-inf when n == 0).
template <typename T>
[[nodiscard]] inline T lane_max(const T* x, std::int64_t n) noexcept {
  T lanes[kLanes];
  for (T& l : lanes) l = -std::numeric_limits<T>::infinity();
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] = lanes[l] < x[i + l] ? x[i + l] : lanes[l];
  for (int l = 0; i < n; ++i, ++l) lanes[l] = lanes[l] < x[i] ? x[i] : lanes[l];
  T m = lanes[0];
  for (int l = 1; l < kLanes; ++l) m = m < lanes[l] ? lanes[l] : m;
  return m;
}

}  // namespace tailor::backend::cpu
