// Helpers of the kernel tests (kernels/ against the CPU backend, the reference), in the manner of
// ggml's test-backend-ops: device buffers framed by guard bands, random inputs from CounterRng,
// normwise comparison, NaN/Inf checks and bitwise run-to-run comparison.
//
// A kernel test runs in one of two modes: f32 storage (tolerance 1e-5 normwise relative against
// the CPU in f32) or bf16 storage (the inputs rounded to bf16 first, so the CPU computes in f32 on
// exactly the values the GPU holds; tolerance 1e-2), as ARCHITECTURE.md's Tests section sets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/tensor.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace tailor::testing {

// Device memory for numel elements of dtype (f32, f64, bf16 or i32) between two guard bands of
// kGuardBytes filled with kGuardByte; the elements start out as 0xFF bytes (NaN for every float
// type), so an element a kernel should write but does not shows up in the NaN check.
class DeviceTensor {
 public:
  static constexpr std::size_t kGuardBytes = 512;
  static constexpr unsigned char kGuardByte = 0xA5;

  DeviceTensor(DType dtype, std::int64_t numel);
  ~DeviceTensor();
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  DeviceTensor(DeviceTensor&& other) noexcept;
  DeviceTensor& operator=(DeviceTensor&&) = delete;

  // A tensor of `dtype` holding `values` (rounded to bf16 for bf16).
  [[nodiscard]] static DeviceTensor from(DType dtype, const std::vector<float>& values);
  [[nodiscard]] static DeviceTensor from_f64(const std::vector<double>& values);
  [[nodiscard]] static DeviceTensor from_i32(const std::vector<std::int32_t>& values);

  // The element pointer as T (float, double, std::uint16_t for bf16, std::int32_t); asserts the
  // dtype matches.
  template <typename T>
  [[nodiscard]] T* as() const;

  void upload(const std::vector<float>& values);    // f32 or bf16 tensors
  [[nodiscard]] std::vector<float> to_f32() const;  // f32 or bf16 tensors, widened
  [[nodiscard]] std::vector<double> to_f64() const;
  [[nodiscard]] std::vector<std::int32_t> to_i32() const;
  [[nodiscard]] std::vector<unsigned char> bytes() const;  // the elements' raw bytes
  [[nodiscard]] bool guards_intact() const;

  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] std::int64_t numel() const noexcept { return numel_; }
  [[nodiscard]] std::size_t element_bytes() const noexcept;

 private:
  DType dtype_;
  std::int64_t numel_;
  unsigned char* base_ = nullptr;  // guard | elements | guard
};

// Raw device memory for a kernel's workspace (null for 0 bytes), guarded like DeviceTensor.
class DeviceWorkspace {
 public:
  explicit DeviceWorkspace(std::size_t bytes) : bytes_(bytes), t_(DType::kF64, words(bytes)) {}
  [[nodiscard]] void* get() const { return bytes_ == 0 ? nullptr : t_.as<double>(); }
  [[nodiscard]] bool guards_intact() const { return t_.guards_intact(); }

 private:
  static std::int64_t words(std::size_t bytes) {
    return static_cast<std::int64_t>((bytes + 7) / 8);
  }
  std::size_t bytes_;
  DeviceTensor t_;
};

// Calls fn(T{}) with T = float for f32 and std::uint16_t for bf16: the launcher overload of the
// mode.
template <typename Fn>
void dispatch_storage(DType dtype, Fn&& fn) {
  if (dtype == DType::kF32) {
    fn(float{});
  } else {
    ASSERT_EQ(dtype, DType::kBF16);
    fn(std::uint16_t{});
  }
}

// Normwise relative error |got - want|_2 / |want|_2 in f64 (|got - want|_2 when want is 0).
[[nodiscard]] double rel_error(const std::vector<float>& got, const std::vector<float>& want);
[[nodiscard]] double rel_error(const std::vector<double>& got, const std::vector<double>& want);
[[nodiscard]] bool all_finite(const std::vector<float>& v);
// The tolerance of a mode: 1e-5 for f32, 1e-2 for bf16.
[[nodiscard]] double tolerance(DType storage);

// Expects got ~ want within tol (normwise), every element of got finite, and the guards intact.
void expect_matches(const char* what, const DeviceTensor& got, const std::vector<float>& want,
                    double tol);

// Values from CounterRng(seed, stream): normal(0, sigma) / uniform [lo, hi) / integers [lo, hi).
[[nodiscard]] std::vector<float> random_normal(std::int64_t n, std::uint64_t seed,
                                               std::uint64_t stream, double sigma = 1.0);
[[nodiscard]] std::vector<float> random_uniform(std::int64_t n, std::uint64_t seed,
                                                std::uint64_t stream, double lo, double hi);
[[nodiscard]] std::vector<std::int32_t> random_ints(std::int64_t n, std::uint64_t seed,
                                                    std::uint64_t stream, std::int64_t lo,
                                                    std::int64_t hi);
// Rounds every value to bf16 when storage is bf16 (what the GPU will hold), else leaves it.
void round_for(DType storage, std::vector<float>& v);

// A CPU tensor view of host data, for calling backend::CpuOps.
[[nodiscard]] backend::Tensor cpu_view(std::vector<float>& v, Shape shape);
[[nodiscard]] backend::Tensor cpu_view(std::vector<std::int32_t>& v, Shape shape);
[[nodiscard]] backend::Tensor cpu_absent();

// The reference backend shared by all kernel tests (2 threads).
[[nodiscard]] backend::CpuOps& cpu_ops();

// Waits for the device and reports any asynchronous kernel error.
void sync_device();

[[nodiscard]] std::string dtype_label(DType storage);

}  // namespace tailor::testing
