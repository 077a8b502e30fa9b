// Shared helpers of the CUDA Ops implementation: argument checks (the CpuOps ones, for device
// tensors and the f32 / bf16 storage modes), storage-type dispatch and workspace carving. Private
// to src/backend/cuda.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backend/tensor.h"
#include "core/dtype.h"
#include "core/error.h"

namespace tailor::backend::cuda::detail {

inline void check_dev(std::string_view op, const Tensor& t) {
  TAILOR_ASSERT(t.device == Device::kCuda, "{}: tensor {} is not on the GPU", op, t.str());
  TAILOR_ASSERT(t.data != nullptr || t.numel() == 0, "{}: tensor {} has no data", op, t.str());
}
// A storage tensor: f32 or bf16 on the device.
inline void check_storage(std::string_view op, const Tensor& t) {
  check_dev(op, t);
  TAILOR_ASSERT(t.dtype == DType::kF32 || t.dtype == DType::kBF16,
                "{}: unsupported dtype of {} (the CUDA backend stores f32 or bf16)", op, t.str());
}
inline void check_dtype(std::string_view op, const Tensor& t, DType dtype) {
  check_dev(op, t);
  TAILOR_ASSERT(t.dtype == dtype, "{}: {} should be {}", op, t.str(), dtype_name(dtype));
}
// Same dtype and element count as `ref`.
inline void check_like(std::string_view op, const Tensor& ref, const Tensor& t) {
  check_dev(op, t);
  TAILOR_ASSERT(t.dtype == ref.dtype, "{}: dtype of {} differs from {}", op, t.str(), ref.str());
  TAILOR_ASSERT(t.numel() == ref.numel(), "{}: size of {} differs from {}", op, t.str(), ref.str());
}
inline void check_numel(std::string_view op, const Tensor& t, std::int64_t n) {
  TAILOR_ASSERT(t.numel() == n, "{}: {} should have {} elements", op, t.str(), n);
}
// An accumulator (statistics, parameter gradients, optimizer state): f32 in both modes.
inline void check_accum(std::string_view op, const Tensor& t, std::int64_t n) {
  check_dtype(op, t, DType::kF32);
  check_numel(op, t, n);
}
// Rows of the matrix view: the product of all dimensions but the last (right for [M, 0] too).
[[nodiscard]] inline std::int64_t matrix_rows(const Tensor& t) {
  std::int64_t r = 1;
  for (int i = 0; i + 1 < t.shape.rank(); ++i) r *= t.shape[i];
  return r;
}
[[nodiscard]] inline bool present(const Tensor& t) noexcept { return t.data != nullptr; }
// Whether the byte ranges of a and b intersect.
[[nodiscard]] inline bool overlaps(const Tensor& a, const Tensor& b) noexcept {
  if (a.data == nullptr || b.data == nullptr || a.bytes() == 0 || b.bytes() == 0) return false;
  const auto* a0 = static_cast<const char*>(a.data);
  const auto* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

// The device pointer of t as T (after the checks above; null for an absent tensor).
template <typename T>
[[nodiscard]] inline T* as(const Tensor& t) noexcept {
  return static_cast<T*>(t.data);
}

// Calls fn(T{}) with T = float for f32 and std::uint16_t (raw bf16 bits) for bf16: the launcher
// overload of the storage mode.
template <typename Fn>
void dispatch_storage(std::string_view op, const Tensor& t, Fn&& fn) {
  switch (t.dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kBF16:
      fn(std::uint16_t{});
      return;
    default:
      break;
  }
  TAILOR_ASSERT(false, "{}: unsupported dtype {} (the CUDA backend stores f32 or bf16)", op,
                dtype_name(t.dtype));
}

// Carves consecutive 256-byte aligned pieces out of one workspace block: first call with a null
// base to size it (total()), then with the block to get the pointers in the same order.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  template <typename T>
  T* take(std::size_t bytes) {
    char* p = base_ == nullptr ? nullptr : base_ + used_;
    used_ += (bytes + 255) / 256 * 256;
    return static_cast<T*>(static_cast<void*>(p));
  }
  [[nodiscard]] std::size_t total() const noexcept { return used_; }

 private:
  char* base_;
  std::size_t used_ = 0;
};

}  // namespace tailor::backend::cuda::detail
