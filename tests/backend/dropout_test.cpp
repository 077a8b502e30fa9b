// Ops::dropout: the mask is CounterRng(seed, stream).uniform(global index) >= p, kept elements are
// scaled by exactly 1 / (1 - p), the kept fraction is 1 - p (statistically), a shard draws its
// slice of the full tensor's mask, and neither the thread count nor aliasing changes a bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/rng.h"

namespace tailor::backend {
namespace {

Buffer filled(DType dtype, Shape shape, double (*f)(std::int64_t)) {
  Buffer b(dtype, shape);
  for (std::int64_t i = 0; i < shape.numel(); ++i) {
    if (dtype == DType::kF64) b.ptr<double>()[i] = f(i);
    else b.ptr<float>()[i] = static_cast<float>(f(i));
  }
  return b;
}

double ramp(std::int64_t i) { return 0.5 + 0.001 * static_cast<double>(i % 997); }
double ones(std::int64_t) { return 1.0; }

TEST(Dropout, KeptFractionAndScaleAreRight) {
  CpuOps ops(2);
  const std::int64_t rows = 1000, cols = 1000;
  const double n = static_cast<double>(rows * cols);
  for (const double p : {0.1, 0.25, 0.5, 0.9}) {
    Buffer x = filled(DType::kF64, Shape{rows, cols}, ones);
    Buffer y(DType::kF64, Shape{rows, cols});
    ops.dropout(x.tensor(), y.tensor(), p, DropoutKey{7, 11, 0, 0, 0});
    std::int64_t kept = 0;
    double sum = 0.0;
    for (std::int64_t i = 0; i < rows * cols; ++i) {
      const double v = y.ptr<double>()[i];
      if (v != 0.0) {
        ++kept;
        EXPECT_EQ(v, 1.0 * (1.0 / (1.0 - p))) << i;  // exactly x / (1 - p)
      }
      sum += v;
    }
    // Binomial(n, 1 - p): within 5 standard deviations.
    const double sigma = std::sqrt(p * (1.0 - p) / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 5.0 * sigma) << "p " << p;
    // Unbiased: E[y] = x.
    EXPECT_NEAR(sum / n, 1.0, 5.0 * sigma / (1.0 - p)) << "p " << p;
  }
}

TEST(Dropout, MaskIsTheCounterStreamAtGlobalIndices) {
  CpuOps ops(1);
  const double p = 0.3;
  const DropoutKey key{123, 456, 5, 40, 8};  // rows 5.. and columns 8..24 of a 40-wide tensor
  Buffer x = filled(DType::kF64, Shape{6, 16}, ramp);
  Buffer y(DType::kF64, Shape{6, 16});
  ops.dropout(x.tensor(), y.tensor(), p, key);
  const CounterRng rng(123, 456);
  for (std::int64_t r = 0; r < 6; ++r)
    for (std::int64_t c = 0; c < 16; ++c) {
      const auto g = static_cast<std::uint64_t>((5 + r) * 40 + 8 + c);
      const bool keep = rng.uniform(g) >= p;
      const double want = keep ? x.ptr<double>()[r * 16 + c] * (1.0 / (1.0 - p)) : 0.0;
      EXPECT_EQ(y.ptr<double>()[r * 16 + c], want) << r << "," << c;
    }
}

TEST(Dropout, ShardsDrawTheirSliceOfTheFullMask) {
  CpuOps ops(2);
  const double p = 0.4;
  const std::int64_t rows = 9, cols = 24;
  Buffer full_x = filled(DType::kF32, Shape{rows, cols}, ramp);
  Buffer full_y(DType::kF32, Shape{rows, cols});
  ops.dropout(full_x.tensor(), full_y.tensor(), p, DropoutKey{1, 2, 0, cols, 0});
  // Column shards (a row-parallel input under TP) and a row range (a later micro-batch).
  for (const std::int64_t col0 : {0, 8, 16}) {
    const std::int64_t row0 = 3, n = 4, c = 8;
    Buffer x(DType::kF32, Shape{n, c}), y(DType::kF32, Shape{n, c});
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t j = 0; j < c; ++j)
        x.ptr<float>()[r * c + j] = full_x.ptr<float>()[(row0 + r) * cols + col0 + j];
    ops.dropout(x.tensor(), y.tensor(), p, DropoutKey{1, 2, row0, cols, col0});
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t j = 0; j < c; ++j)
        EXPECT_EQ(y.ptr<float>()[r * c + j], full_y.ptr<float>()[(row0 + r) * cols + col0 + j])
            << col0 << ": " << r << "," << j;
  }
}

TEST(Dropout, ThreadCountAliasingAndZeroProbability) {
  const double p = 0.2;
  const DropoutKey key{9, 10, 2, 0, 0};
  Buffer x = filled(DType::kF32, Shape{513, 300}, ramp);
  Buffer a(DType::kF32, Shape{513, 300}), b(DType::kF32, Shape{513, 300});
  CpuOps one(1), three(3);
  one.dropout(x.tensor(), a.tensor(), p, key);
  three.dropout(x.tensor(), b.tensor(), p, key);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.tensor().bytes()), 0);
  // In place.
  three.copy(b.tensor(), x.tensor());
  three.dropout(b.tensor(), b.tensor(), p, key);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.tensor().bytes()), 0);
  // Another stream: another mask (agreement ~ p^2 + (1 - p)^2 = 0.68, not 1).
  three.dropout(x.tensor(), b.tensor(), p, DropoutKey{9, 11, 2, 0, 0});
  std::int64_t same = 0;
  for (std::int64_t i = 0; i < 513 * 300; ++i)
    same += (a.ptr<float>()[i] == 0.0f) == (b.ptr<float>()[i] == 0.0f);
  EXPECT_NEAR(static_cast<double>(same) / (513.0 * 300.0), 0.68, 0.01);
  // p = 0: the identity, bit for bit.
  three.dropout(x.tensor(), b.tensor(), 0.0, key);
  EXPECT_EQ(std::memcmp(x.data(), b.data(), x.tensor().bytes()), 0);
}

}  // namespace
}  // namespace tailor::backend
