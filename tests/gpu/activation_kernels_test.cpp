// SwiGLU and GELU kernels (kernels/swiglu.cu, kernels/gelu.cu) against CpuOps, forward and
// backward, f32 and bf16 storage, sizes from 1 element to an odd 33 x 4096 + 5: within the mode's
// tolerance, finite (inputs reach |x| = 12, where exp and tanh saturate), guards intact, in-place
// use (outputs aliasing inputs) equal to out-of-place, two runs bitwise equal.
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/gelu.cuh"
#include "kernels/swiglu.cuh"

namespace tailor::testing {
namespace {

using ActCase = std::tuple<std::int64_t, DType>;  // numel, storage

std::string act_case_name(const ::testing::TestParamInfo<ActCase>& info) {
  return fmt::format("n{}_{}", std::get<0>(info.param), dtype_label(std::get<1>(info.param)));
}

class ActivationKernelTest : public ::testing::TestWithParam<ActCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// Inputs mostly in the curved region, plus a few saturating values.
std::vector<float> activation_input(std::int64_t n, std::uint64_t stream) {
  std::vector<float> v = random_normal(n, 31, stream, 2.0);
  const float extremes[] = {-12.0f, 12.0f, -0.0f, 0.0f, 1e-4f, -6.5f};
  for (std::size_t i = 0; i < sizeof(extremes) / sizeof(float) && i < v.size(); ++i)
    v[(i * 7919) % v.size()] = extremes[i];
  return v;
}

TEST_P(ActivationKernelTest, SwigluMatchesCpu) {
  const auto [n, st] = GetParam();
  std::vector<float> gate = activation_input(n, 1);
  std::vector<float> up = random_normal(n, 31, 2);
  std::vector<float> dout = random_normal(n, 31, 3);
  round_for(st, gate);
  round_for(st, up);
  round_for(st, dout);
  std::vector<float> out(gate.size()), dgate(gate.size()), dup(gate.size());
  cpu_ops().swiglu_forward(cpu_view(gate, {n}), cpu_view(up, {n}), cpu_view(out, {n}));
  cpu_ops().swiglu_backward(cpu_view(dout, {n}), cpu_view(gate, {n}), cpu_view(up, {n}),
                            cpu_view(dgate, {n}), cpu_view(dup, {n}));

  const kernels::SwigluShape shape{n};
  const DeviceTensor ggate = DeviceTensor::from(st, gate);
  const DeviceTensor gup = DeviceTensor::from(st, up);
  const DeviceTensor gdout = DeviceTensor::from(st, dout);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor, DeviceTensor> o{DeviceTensor(st, n), DeviceTensor(st, n),
                                                           DeviceTensor(st, n)};
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::swiglu_forward(ggate.as<T>(), gup.as<T>(), std::get<0>(o).template as<T>(), shape,
                              nullptr);
      kernels::swiglu_backward(gdout.as<T>(), ggate.as<T>(), gup.as<T>(),
                               std::get<1>(o).template as<T>(), std::get<2>(o).template as<T>(),
                               shape, nullptr);
    });
    sync_device();
    return o;
  };
  const auto a = run();
  expect_matches("out", std::get<0>(a), out, tolerance(st));
  expect_matches("dgate", std::get<1>(a), dgate, tolerance(st));
  expect_matches("dup", std::get<2>(a), dup, tolerance(st));
  const auto b = run();
  for (int i = 0; i < 3; ++i) {
    const auto& ta = i == 0 ? std::get<0>(a) : i == 1 ? std::get<1>(a) : std::get<2>(a);
    const auto& tb = i == 0 ? std::get<0>(b) : i == 1 ? std::get<1>(b) : std::get<2>(b);
    EXPECT_TRUE(ta.bytes() == tb.bytes()) << "output " << i << " not deterministic";
  }

  // In place: out over gate; dgate over gate and dup over up.
  const DeviceTensor g2 = DeviceTensor::from(st, gate);
  const DeviceTensor u2 = DeviceTensor::from(st, up);
  const DeviceTensor g3 = DeviceTensor::from(st, gate);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::swiglu_forward(g3.as<T>(), gup.as<T>(), g3.as<T>(), shape, nullptr);
    kernels::swiglu_backward(gdout.as<T>(), g2.as<T>(), u2.as<T>(), g2.as<T>(), u2.as<T>(), shape,
                             nullptr);
  });
  sync_device();
  EXPECT_TRUE(g3.bytes() == std::get<0>(a).bytes()) << "in-place forward differs";
  EXPECT_TRUE(g2.bytes() == std::get<1>(a).bytes()) << "in-place dgate differs";
  EXPECT_TRUE(u2.bytes() == std::get<2>(a).bytes()) << "in-place dup differs";
}

TEST_P(ActivationKernelTest, GeluMatchesCpu) {
  const auto [n, st] = GetParam();
  std::vector<float> x = activation_input(n, 4);
  std::vector<float> dout = random_normal(n, 31, 5);
  round_for(st, x);
  round_for(st, dout);
  std::vector<float> out(x.size()), dx(x.size());
  cpu_ops().gelu_forward(cpu_view(x, {n}), cpu_view(out, {n}));
  cpu_ops().gelu_backward(cpu_view(dout, {n}), cpu_view(x, {n}), cpu_view(dx, {n}));

  const kernels::GeluShape shape{n};
  const DeviceTensor gx = DeviceTensor::from(st, x);
  const DeviceTensor gdout = DeviceTensor::from(st, dout);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor> o{DeviceTensor(st, n), DeviceTensor(st, n)};
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::gelu_forward(gx.as<T>(), std::get<0>(o).template as<T>(), shape, nullptr);
      kernels::gelu_backward(gdout.as<T>(), gx.as<T>(), std::get<1>(o).template as<T>(), shape,
                             nullptr);
    });
    sync_device();
    return o;
  };
  const auto a = run();
  expect_matches("out", std::get<0>(a), out, tolerance(st));
  expect_matches("dx", std::get<1>(a), dx, tolerance(st));
  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes()) << "forward not deterministic";
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes()) << "backward not deterministic";

  // In place: out over x; dx over dout.
  const DeviceTensor x2 = DeviceTensor::from(st, x);
  const DeviceTensor d2 = DeviceTensor::from(st, dout);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::gelu_backward(d2.as<T>(), gx.as<T>(), d2.as<T>(), shape, nullptr);
    kernels::gelu_forward(x2.as<T>(), x2.as<T>(), shape, nullptr);
  });
  sync_device();
  EXPECT_TRUE(x2.bytes() == std::get<0>(a).bytes()) << "in-place forward differs";
  EXPECT_TRUE(d2.bytes() == std::get<1>(a).bytes()) << "in-place backward differs";
}

INSTANTIATE_TEST_SUITE_P(Sizes, ActivationKernelTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 700, 33 * 4096 + 5),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         act_case_name);

}  // namespace
}  // namespace tailor::testing
