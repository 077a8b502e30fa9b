// RoPE kernels (kernels/rope.cu) against CpuOps::rope_forward / rope_backward (HF rotate_half
// pairing, angle formed in f32), in place, f32 and bf16 storage, positions up to 8191 and Llama's
// theta = 500000: within the mode's tolerance, finite, guards intact, backward undoing forward,
// two runs bitwise equal.
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/rope.cuh"

namespace tailor::testing {
namespace {

using RopeCase = std::tuple<std::int64_t, std::int64_t, std::int64_t, DType>;  // N, H, Dh, storage

std::string rope_case_name(const ::testing::TestParamInfo<RopeCase>& info) {
  const auto [tokens, heads, head_dim, storage] = info.param;
  return fmt::format("n{}_h{}_dh{}_{}", tokens, heads, head_dim, dtype_label(storage));
}

class RopeKernelTest : public ::testing::TestWithParam<RopeCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

TEST_P(RopeKernelTest, MatchesCpu) {
  const auto [tokens, heads, head_dim, st] = GetParam();
  const std::int64_t half = head_dim / 2;
  const std::int64_t n = tokens * heads * head_dim;
  std::vector<float> x = random_normal(n, 21, 1);
  std::vector<float> dy = random_normal(n, 21, 2);
  round_for(st, x);
  round_for(st, dy);
  std::vector<std::int32_t> pos = random_ints(tokens, 21, 3, 0, 8192);
  if (tokens > 1) pos[1] = 0;  // the identity rotation
  std::vector<float> inv_freq(static_cast<std::size_t>(half));
  for (std::int64_t i = 0; i < half; ++i)
    inv_freq[static_cast<std::size_t>(i)] = static_cast<float>(
        1.0 / std::pow(500000.0, static_cast<double>(2 * i) / static_cast<double>(head_dim)));

  std::vector<float> y = x;
  std::vector<float> dx = dy;
  cpu_ops().rope_forward(cpu_view(y, {tokens, heads, head_dim}), cpu_view(pos, {tokens}),
                         cpu_view(inv_freq, {half}));
  cpu_ops().rope_backward(cpu_view(dx, {tokens, heads, head_dim}), cpu_view(pos, {tokens}),
                          cpu_view(inv_freq, {half}));

  const kernels::RopeShape shape{tokens, heads, head_dim};
  const DeviceTensor gpos = DeviceTensor::from_i32(pos);
  const DeviceTensor gfreq = DeviceTensor::from(DType::kF32, inv_freq);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor> o{DeviceTensor::from(st, x), DeviceTensor::from(st, dy)};
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::rope_forward(std::get<0>(o).template as<T>(), gpos.as<std::int32_t>(),
                            gfreq.as<float>(), shape, nullptr);
      kernels::rope_backward(std::get<1>(o).template as<T>(), gpos.as<std::int32_t>(),
                             gfreq.as<float>(), shape, nullptr);
    });
    sync_device();
    return o;
  };
  const auto a = run();
  expect_matches("forward", std::get<0>(a), y, tolerance(st));
  expect_matches("backward", std::get<1>(a), dx, tolerance(st));
  EXPECT_TRUE(gpos.guards_intact() && gfreq.guards_intact());

  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes()) << "forward not deterministic";
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes()) << "backward not deterministic";

  // The backward rotation is the inverse: backward(forward(x)) = x up to rounding.
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::rope_backward(std::get<0>(a).template as<T>(), gpos.as<std::int32_t>(),
                           gfreq.as<float>(), shape, nullptr);
  });
  sync_device();
  EXPECT_LT(rel_error(std::get<0>(a).to_f32(), x), st == DType::kF32 ? 1e-5 : 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeKernelTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 7, 33),
                                            ::testing::Values<std::int64_t>(3),
                                            ::testing::Values<std::int64_t>(2, 64, 128),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         rope_case_name);

}  // namespace
}  // namespace tailor::testing
