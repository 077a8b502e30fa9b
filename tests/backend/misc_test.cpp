// AdamW against a hand-worked two-step example, bf16 conversion rounding, the description
// string, and the invariant checks (TAILOR_ASSERT -> InternalError) of the CPU ops.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"
#include "core/error.h"
#include "ops_test_util.h"

namespace tailor::backend::test {
namespace {

class AdamWTest : public ::testing::TestWithParam<DType> {};

TEST_P(AdamWTest, TwoStepsByHand) {
  const DType dt = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor p(dt, Shape{2});
  HostTensor g(dt, Shape{2});
  HostTensor m(dt, Shape{2});
  HostTensor v(dt, Shape{2});
  p.set_values({1.0, -2.0});
  AdamWHyper h;
  h.lr = 0.1;
  h.beta1 = 0.9;
  h.beta2 = 0.999;
  h.eps = 1e-8;
  h.weight_decay = 0.01;

  // Step 1, grads (0.5, 0):
  //   p <- p (1 - 0.001);  m = 0.1 g;  v = 0.001 g^2;  bc1 = 0.1, bc2 = 0.001
  //   element 0: m = 0.05, v = 0.00025, denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8
  //              p = 0.999 - (0.1 / 0.1) * 0.05 / (0.5 + 1e-8)
  //   element 1: g = 0, m = v = 0, so only the decay: p = -2 * 0.999
  g.set_values({0.5, 0.0});
  h.step = 1;
  ops.adamw_update(p.t(), g.t(), m.t(), v.t(), h);
  const double p0_1 = 0.999 - 0.05 / (0.5 + 1e-8);
  const double p1_1 = -2.0 * 0.999;
  const double tol = dt == DType::kF32 ? 1e-6 : 1e-14;
  EXPECT_NEAR(p.get(0), p0_1, tol);
  EXPECT_NEAR(p.get(1), p1_1, tol);
  EXPECT_NEAR(m.get(0), 0.05, tol);
  EXPECT_NEAR(v.get(0), 0.00025, tol * 1e-3);

  // Step 2, grads (-0.25, 2):
  //   element 0: m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02
  //              v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
  //              bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
  //              p = 0.999 p - (0.1 / 0.19) * 0.02 / (sqrt(0.00031225) / sqrt(0.001999) + 1e-8)
  //   element 1: m = 0.2, v = 0.004, p = 0.999 p - (0.1 / 0.19) * 0.2 / (sqrt(0.004) /
  //              sqrt(0.001999) + 1e-8)
  g.set_values({-0.25, 2.0});
  h.step = 2;
  ops.adamw_update(p.t(), g.t(), m.t(), v.t(), h);
  const double p0_2 =
      0.999 * p0_1 - (0.1 / 0.19) * 0.02 / (std::sqrt(0.00031225) / std::sqrt(0.001999) + 1e-8);
  const double p1_2 =
      0.999 * p1_1 - (0.1 / 0.19) * 0.2 / (std::sqrt(0.004) / std::sqrt(0.001999) + 1e-8);
  EXPECT_NEAR(m.get(0), 0.02, tol);
  EXPECT_NEAR(m.get(1), 0.2, tol);
  EXPECT_NEAR(v.get(0), 0.00031225, tol * 1e-3);
  EXPECT_NEAR(v.get(1), 0.004, tol * 1e-2);
  EXPECT_NEAR(p.get(0), p0_2, tol);
  EXPECT_NEAR(p.get(1), p1_2, tol);
  EXPECT_TRUE(p.guards_ok() && m.guards_ok() && v.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, AdamWTest, ::testing::Values(DType::kF32, DType::kF64),
                         dtype_param_name);

TEST(CopyBF16, RoundsToNearestEvenAndKeepsSpecials) {
  CpuOps& ops = shared_ops();
  const float one = 1.0f;
  const float half_ulp = std::ldexp(1.0f, -8);  // bf16 has 8 bits of mantissa precision
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<double, double>> cases = {
      {one + half_ulp, 1.0},                                                // tie -> even (down)
      {one + 3 * half_ulp, 1.0 + std::ldexp(1.0, -6)},                      // tie -> even (up)
      {one + half_ulp + std::ldexp(1.0f, -20), 1.0 + std::ldexp(1.0, -7)},  // above the tie
      {-(one + half_ulp), -1.0},
      {0.0, 0.0},
      {65280.0, 65280.0},
      {3.4e38, static_cast<double>(inf)},  // rounds past the largest bf16
      {static_cast<double>(-inf), static_cast<double>(-inf)},
      {1e-40, static_cast<double>(round_to_bf16(1e-40f))},  // subnormal
  };
  HostTensor src(DType::kF32, Shape{static_cast<std::int64_t>(cases.size()) + 1});
  for (std::size_t i = 0; i < cases.size(); ++i)
    src.set(static_cast<std::int64_t>(i), cases[i].first);
  src.set(static_cast<std::int64_t>(cases.size()), std::numeric_limits<double>::quiet_NaN());
  HostTensor dst(DType::kBF16, src.shape());
  ops.copy(dst.t(), src.t());
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(dst.get(static_cast<std::int64_t>(i)), cases[i].second) << "case " << i;
  EXPECT_TRUE(std::isnan(dst.get(static_cast<std::int64_t>(cases.size()))));
  // f64 -> bf16 goes through f32 (as PyTorch does); bf16 -> f64 is exact.
  HostTensor src64(DType::kF64, src.shape());
  ops.copy(src64.t(), src.t());
  HostTensor dst2(DType::kBF16, src.shape());
  ops.copy(dst2.t(), src64.t());
  EXPECT_EQ(dst2.bytes(), dst.bytes());
  HostTensor back(DType::kF64, src.shape());
  ops.copy(back.t(), dst.t());
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(cases.size()); ++i)
    EXPECT_EQ(back.get(i), dst.get(i));
  EXPECT_TRUE(dst.guards_ok() && back.guards_ok());
}

TEST(FastMath, ExpF32WithinTwoUlp) {
  // Every 97th float of [-110, 89] (about 20 million values, both signs, all exponents).
  double worst = 0;
  float worst_x = 0;
  for (std::uint32_t bits = 0; bits < 0x7f800000u; bits += 97) {
    for (float x : {std::bit_cast<float>(bits), -std::bit_cast<float>(bits)}) {
      if (x > 89.0f || x < -110.0f) continue;
      const double want = std::exp(static_cast<double>(x));
      const auto want_f = static_cast<float>(want);
      const float got = cpu::exp_f32(x);
      if (want_f < std::numeric_limits<float>::min()) {  // subnormal or 0: absolute
        ASSERT_LE(std::abs(got - want), 1.5e-45) << x;
        continue;
      }
      if (std::isinf(want_f)) {
        ASSERT_TRUE(std::isinf(got) || std::abs(got - want) <= 1e-6 * want) << x;
        continue;
      }
      const double ulp = static_cast<double>(std::nextafter(want_f, INFINITY) - want_f);
      const double err = std::abs(static_cast<double>(got) - want) / ulp;
      if (err > worst) {
        worst = err;
        worst_x = x;
      }
    }
  }
  EXPECT_LE(worst, 2.0) << "at " << worst_x;
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cpu::exp_f32(-inf), 0.0f);
  EXPECT_EQ(cpu::exp_f32(inf), inf);
  EXPECT_EQ(cpu::exp_f32(1e30f), inf);
  EXPECT_EQ(cpu::exp_f32(-1e30f), 0.0f);
  EXPECT_EQ(cpu::exp_f32(0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(cpu::exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // tanh through exp: absolute error at the ulp level of 1.
  for (float u = -12.0f; u <= 12.0f; u += 0.01f)
    ASSERT_NEAR(cpu::fast_tanh(u), std::tanh(static_cast<double>(u)), 3e-7) << u;
}

TEST(CpuOps, DescribesItsBlas) {
  CpuOps ops(2);
  EXPECT_EQ(ops.threads(), 2);
  EXPECT_EQ(ops.device(), Device::kCpu);
  const std::string blas = blas_description();
  EXPECT_NE(blas.find("OpenBLAS"), std::string::npos) << blas;
  EXPECT_NE(blas.find("threads"), std::string::npos) << blas;
  EXPECT_NE(ops.describe().find(blas), std::string::npos) << ops.describe();
}

TEST(CpuOps, GemmOnRowSlices) {
  // Views from row_slice are plain 2-D tensors: C[1:3] = A[2:4] @ B.
  CpuOps& ops = shared_ops();
  HostTensor a(DType::kF64, Shape{5, 3});
  HostTensor b(DType::kF64, Shape{3, 2});
  HostTensor c(DType::kF64, Shape{4, 2});
  a.normal(31, 1);
  b.normal(31, 2);
  ops.gemm(a.t().row_slice(2, 4), false, b.t(), false, c.t().row_slice(1, 3), 1.0, 0.0);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 2; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < 3; ++p) s += a.get((i + 2) * 3 + p) * b.get(p * 2 + j);
      EXPECT_NEAR(c.get((i + 1) * 2 + j), s, 1e-14);
    }
  EXPECT_EQ(c.get(0), 0.0);
  EXPECT_EQ(c.get(7), 0.0);
}

TEST(CpuOps, BrokenInvariantsThrow) {
  CpuOps& ops = shared_ops();
  HostTensor x(DType::kF32, Shape{2, 4});
  HostTensor x64(DType::kF64, Shape{2, 4});
  HostTensor ids(DType::kI32, Shape{2});
  HostTensor loss(DType::kF32, Shape{2});
  // Mixed dtypes, integer data, wrong sizes.
  EXPECT_THROW(ops.add(x.t(), x64.t(), 1.0), InternalError);
  EXPECT_THROW(ops.scale(ids.t(), 2.0), InternalError);
  EXPECT_THROW(ops.gemm(x.t(), false, x.t(), false, x.t(), 1.0, 0.0), InternalError);
  // Cross-entropy targets: outside [0, valid_vocab) and not kIgnoreIndex.
  ids.set_values({0, 3});
  EXPECT_THROW(ops.cross_entropy(x.t(), ids.t(), 3, loss.t(), absent(), 1.0), InternalError);
  ids.set_values({-1, 0});
  EXPECT_THROW(ops.cross_entropy(x.t(), ids.t(), 4, loss.t(), absent(), 1.0), InternalError);
  ids.set_values({kIgnoreIndex, 3});
  EXPECT_NO_THROW(ops.cross_entropy(x.t(), ids.t(), 4, loss.t(), absent(), 1.0));
  // Negative embedding ids (ids past a shard's rows are legal: they belong to other shards).
  HostTensor table(DType::kF32, Shape{3, 4});
  ids.set_values({0, -2});
  EXPECT_THROW(ops.embedding_forward(table.t(), ids.t(), 0, x.t()), InternalError);
  // Attention heads that do not group.
  HostTensor q(DType::kF32, Shape{1, 2, 3, 4});
  HostTensor kv(DType::kF32, Shape{1, 2, 2, 4});
  HostTensor lse(DType::kF32, Shape{1, 3, 2});
  EXPECT_THROW(ops.attention_forward(q.t(), kv.t(), kv.t(), absent(), 1.0, 0, q.t(), lse.t()),
               InternalError);
}

}  // namespace
}  // namespace tailor::backend::test
