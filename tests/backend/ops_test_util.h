// Helpers of the CPU op tests: host tensors with guard bands, random fills from CounterRng,
// normwise errors and central finite differences.
//
// A HostTensor keeps 64 guard bytes of a known pattern before and after its elements (as ggml's
// test-backend-ops does), so a kernel writing out of bounds fails guards_ok(). Values are read
// and written as double whatever the dtype; the naive references compute in double from the
// values the tensor actually holds (already rounded to f32 for f32 tensors).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/tensor.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace tailor::backend::test {

class HostTensor {
 public:
  HostTensor(DType dtype, Shape shape);

  [[nodiscard]] Tensor t() const;
  [[nodiscard]] std::int64_t numel() const noexcept { return shape_.numel(); }
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }

  [[nodiscard]] double get(std::int64_t i) const;
  void set(std::int64_t i, double value);
  [[nodiscard]] std::vector<double> values() const;
  void set_values(const std::vector<double>& v);

  // Normal(0, sigma) / uniform [lo, hi) / uniform integers [lo, hi) from CounterRng(seed, stream).
  HostTensor& normal(std::uint64_t seed, std::uint64_t stream, double sigma = 1.0);
  HostTensor& uniform(std::uint64_t seed, std::uint64_t stream, double lo, double hi);
  HostTensor& integers(std::uint64_t seed, std::uint64_t stream, std::int64_t lo, std::int64_t hi);

  [[nodiscard]] bool guards_ok() const;
  // Raw element bytes, for bitwise comparisons.
  [[nodiscard]] std::vector<unsigned char> bytes() const;

 private:
  [[nodiscard]] unsigned char* base() const;

  DType dtype_;
  Shape shape_;
  mutable std::vector<std::uint64_t> storage_;  // guard | elements | guard, 8-byte aligned
};

inline constexpr std::size_t kGuardBytes = 64;
inline constexpr unsigned char kGuardByte = 0xA5;

// One CpuOps (2 threads) shared by the tests that do not vary the thread count.
[[nodiscard]] CpuOps& shared_ops();

// A tensor argument that is absent (data == nullptr).
[[nodiscard]] inline Tensor absent() { return Tensor{}; }

// h's view, or an absent tensor when h is empty (optional arguments).
[[nodiscard]] inline Tensor optional_t(const HostTensor& h) {
  return h.numel() == 0 ? absent() : h.t();
}

// ||got - ref|| / max(||ref||, tiny).
[[nodiscard]] double rel_error(const std::vector<double>& got, const std::vector<double>& ref);

// Forward tolerance of a dtype against a double reference.
[[nodiscard]] inline double fwd_tol(DType d) { return d == DType::kF32 ? 2e-6 : 1e-12; }

// Central finite differences of loss() with respect to every element of x (f64), step h.
[[nodiscard]] std::vector<double> fd_grad(HostTensor& x, const std::function<double()>& loss,
                                          double h = 1e-5);

// sum_i a[i] * b[i].
[[nodiscard]] double dot(const std::vector<double>& a, const std::vector<double>& b);

[[nodiscard]] std::string dtype_label(DType d);
// Test-name generator of suites parametrized by dtype alone.
[[nodiscard]] inline std::string dtype_param_name(const ::testing::TestParamInfo<DType>& p) {
  return dtype_label(p.param);
}

[[nodiscard]] std::vector<std::int32_t> as_i32(const HostTensor& t);

// Document masks of attention tests: none, packed (contiguous runs of random length) or
// scattered (ids repeat non-contiguously: the general case the mask must also handle).
enum class Docs { kNone, kPacked, kScattered };
// doc_ids i32 [B, T] (an empty tensor for kNone).
[[nodiscard]] HostTensor make_doc_ids(std::int64_t b, std::int64_t t, Docs docs,
                                      std::uint64_t seed);
// Targets i32 [N] in [0, valid), about one row in four kIgnoreIndex (the first row never).
[[nodiscard]] HostTensor make_targets(std::int64_t n, std::int64_t valid, std::uint64_t seed);
// inv_freq f32 [Dh/2] = theta^(-2i / Dh), Llama's default.
[[nodiscard]] HostTensor make_inv_freq(std::int64_t dh, double theta = 10000.0);

}  // namespace tailor::backend::test
