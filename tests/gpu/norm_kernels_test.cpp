// RMSNorm and LayerNorm kernels (kernels/rmsnorm.cu, kernels/layernorm.cu) against CpuOps, forward
// and backward, in f32 and bf16 storage, over odd and even shapes: outputs within the mode's
// tolerance, f32 statistics and weight gradients within 1e-5 in both modes (they are computed in
// f32 from the same values), no NaN/Inf, guards intact, absent dw/db/bias handled, and two runs
// bitwise equal.
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/layernorm.cuh"
#include "kernels/rmsnorm.cuh"

namespace tailor::testing {
namespace {

constexpr double kEps = 1e-5;
constexpr double kF32Tol = 1e-5;  // outputs the GPU keeps in f32 (statistics, dw, db)

using NormCase = std::tuple<std::int64_t, std::int64_t, DType>;  // rows, cols, storage

std::string norm_case_name(const ::testing::TestParamInfo<NormCase>& info) {
  const auto [rows, cols, storage] = info.param;
  return fmt::format("r{}_d{}_{}", rows, cols, dtype_label(storage));
}

class NormKernelTest : public ::testing::TestWithParam<NormCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// ---- RMSNorm --------------------------------------------------------------------------------

struct RmsOutputs {
  DeviceTensor y, rstd, dx, dw;
};

TEST_P(NormKernelTest, RmsNormMatchesCpu) {
  const auto [rows, cols, st] = GetParam();
  std::vector<float> x = random_normal(rows * cols, 11, 1);
  std::vector<float> w = random_uniform(cols, 11, 2, 0.5, 1.5);
  std::vector<float> dy = random_normal(rows * cols, 11, 3);
  const std::vector<float> dw0 = random_normal(cols, 11, 4, 0.1);
  round_for(st, x);
  round_for(st, w);
  round_for(st, dy);

  // CPU reference, f32.
  std::vector<float> y(x.size()), rstd(static_cast<std::size_t>(rows)), dx(x.size()), dw = dw0;
  auto& ops = cpu_ops();
  ops.rmsnorm_forward(cpu_view(x, {rows, cols}), cpu_view(w, {cols}), kEps,
                      cpu_view(y, {rows, cols}), cpu_view(rstd, {rows}));
  ops.rmsnorm_backward(cpu_view(dy, {rows, cols}), cpu_view(x, {rows, cols}), cpu_view(w, {cols}),
                       cpu_view(rstd, {rows}), cpu_view(dx, {rows, cols}), cpu_view(dw, {cols}));

  const kernels::RmsNormShape shape{rows, cols};
  const DeviceTensor gx = DeviceTensor::from(st, x);
  const DeviceTensor gw = DeviceTensor::from(st, w);
  const DeviceTensor gdy = DeviceTensor::from(st, dy);
  const DeviceTensor grstd_ref = DeviceTensor::from(DType::kF32, rstd);  // backward in isolation
  const std::size_t ws_bytes = kernels::rmsnorm_backward_workspace_bytes(shape);

  auto run = [&]() {
    RmsOutputs o{DeviceTensor(st, rows * cols), DeviceTensor(DType::kF32, rows),
                 DeviceTensor(st, rows * cols), DeviceTensor::from(DType::kF32, dw0)};
    const DeviceWorkspace ws(ws_bytes);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::rmsnorm_forward(gx.as<T>(), gw.as<T>(), o.y.as<T>(), o.rstd.as<float>(), shape, kEps,
                               nullptr);
      kernels::rmsnorm_backward(gdy.as<T>(), gx.as<T>(), gw.as<T>(), grstd_ref.as<float>(),
                                o.dx.as<T>(), o.dw.as<float>(), ws.get(), shape, nullptr);
    });
    sync_device();
    EXPECT_TRUE(ws.guards_intact()) << "workspace written out of bounds";
    return o;
  };
  const RmsOutputs a = run();
  expect_matches("y", a.y, y, tolerance(st));
  expect_matches("rstd", a.rstd, rstd, kF32Tol);
  expect_matches("dx", a.dx, dx, tolerance(st));
  expect_matches("dw", a.dw, dw, kF32Tol);

  const RmsOutputs b = run();
  EXPECT_TRUE(a.y.bytes() == b.y.bytes()) << "forward not deterministic";
  EXPECT_TRUE(a.rstd.bytes() == b.rstd.bytes());
  EXPECT_TRUE(a.dx.bytes() == b.dx.bytes()) << "backward not deterministic";
  EXPECT_TRUE(a.dw.bytes() == b.dw.bytes()) << "dw reduction not deterministic";

  // Frozen weight: no dw, no workspace; dx unchanged.
  const DeviceTensor dx2(st, rows * cols);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::rmsnorm_backward(gdy.as<T>(), gx.as<T>(), gw.as<T>(), grstd_ref.as<float>(),
                              dx2.as<T>(), nullptr, nullptr, shape, nullptr);
  });
  sync_device();
  EXPECT_TRUE(dx2.bytes() == a.dx.bytes()) << "dx depends on whether dw is wanted";
}

// ---- LayerNorm ------------------------------------------------------------------------------

struct LnOutputs {
  DeviceTensor y, mean, rstd, dx, dw, db;
};

TEST_P(NormKernelTest, LayerNormMatchesCpu) {
  const auto [rows, cols, st] = GetParam();
  std::vector<float> x = random_normal(rows * cols, 12, 1, 2.0);
  for (float& v : x) v += 0.75f;  // an offset, so the centred variance matters
  std::vector<float> w = random_uniform(cols, 12, 2, 0.5, 1.5);
  std::vector<float> b = random_normal(cols, 12, 3, 0.2);
  std::vector<float> dy = random_normal(rows * cols, 12, 4);
  const std::vector<float> dw0 = random_normal(cols, 12, 5, 0.1);
  const std::vector<float> db0 = random_normal(cols, 12, 6, 0.1);
  round_for(st, x);
  round_for(st, w);
  round_for(st, b);
  round_for(st, dy);

  std::vector<float> y(x.size()), mean(static_cast<std::size_t>(rows)), rstd(mean.size());
  std::vector<float> y_nobias(x.size()), mean2(mean.size()), rstd2(mean.size());
  std::vector<float> dx(x.size()), dw = dw0, db = db0;
  auto& ops = cpu_ops();
  ops.layernorm_forward(cpu_view(x, {rows, cols}), cpu_view(w, {cols}), cpu_view(b, {cols}), kEps,
                        cpu_view(y, {rows, cols}), cpu_view(mean, {rows}), cpu_view(rstd, {rows}));
  ops.layernorm_forward(cpu_view(x, {rows, cols}), cpu_view(w, {cols}), cpu_absent(), kEps,
                        cpu_view(y_nobias, {rows, cols}), cpu_view(mean2, {rows}),
                        cpu_view(rstd2, {rows}));
  ops.layernorm_backward(cpu_view(dy, {rows, cols}), cpu_view(x, {rows, cols}), cpu_view(w, {cols}),
                         cpu_view(mean, {rows}), cpu_view(rstd, {rows}), cpu_view(dx, {rows, cols}),
                         cpu_view(dw, {cols}), cpu_view(db, {cols}));

  const kernels::LayerNormShape shape{rows, cols};
  const DeviceTensor gx = DeviceTensor::from(st, x);
  const DeviceTensor gw = DeviceTensor::from(st, w);
  const DeviceTensor gb = DeviceTensor::from(st, b);
  const DeviceTensor gdy = DeviceTensor::from(st, dy);
  const DeviceTensor gmean_ref = DeviceTensor::from(DType::kF32, mean);
  const DeviceTensor grstd_ref = DeviceTensor::from(DType::kF32, rstd);
  const std::size_t ws_bytes = kernels::layernorm_backward_workspace_bytes(shape);

  auto run = [&]() {
    LnOutputs o{DeviceTensor(st, rows * cols),        DeviceTensor(DType::kF32, rows),
                DeviceTensor(DType::kF32, rows),      DeviceTensor(st, rows * cols),
                DeviceTensor::from(DType::kF32, dw0), DeviceTensor::from(DType::kF32, db0)};
    const DeviceWorkspace ws(ws_bytes);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::layernorm_forward(gx.as<T>(), gw.as<T>(), gb.as<T>(), o.y.as<T>(),
                                 o.mean.as<float>(), o.rstd.as<float>(), shape, kEps, nullptr);
      kernels::layernorm_backward(gdy.as<T>(), gx.as<T>(), gw.as<T>(), gmean_ref.as<float>(),
                                  grstd_ref.as<float>(), o.dx.as<T>(), o.dw.as<float>(),
                                  o.db.as<float>(), ws.get(), shape, nullptr);
    });
    sync_device();
    EXPECT_TRUE(ws.guards_intact()) << "workspace written out of bounds";
    return o;
  };
  const LnOutputs a = run();
  expect_matches("y", a.y, y, tolerance(st));
  expect_matches("mean", a.mean, mean, kF32Tol);
  expect_matches("rstd", a.rstd, rstd, kF32Tol);
  expect_matches("dx", a.dx, dx, tolerance(st));
  expect_matches("dw", a.dw, dw, kF32Tol);
  expect_matches("db", a.db, db, kF32Tol);

  const LnOutputs c = run();
  EXPECT_TRUE(a.y.bytes() == c.y.bytes()) << "forward not deterministic";
  EXPECT_TRUE(a.mean.bytes() == c.mean.bytes());
  EXPECT_TRUE(a.rstd.bytes() == c.rstd.bytes());
  EXPECT_TRUE(a.dx.bytes() == c.dx.bytes()) << "backward not deterministic";
  EXPECT_TRUE(a.dw.bytes() == c.dw.bytes()) << "dw reduction not deterministic";
  EXPECT_TRUE(a.db.bytes() == c.db.bytes()) << "db reduction not deterministic";

  // No bias forward; backward with db only (frozen weight), then with neither.
  const DeviceTensor y2(st, rows * cols), m2(DType::kF32, rows), r2(DType::kF32, rows);
  const DeviceTensor dx2(st, rows * cols), dx3(st, rows * cols);
  const DeviceTensor db2 = DeviceTensor::from(DType::kF32, db0);
  const DeviceWorkspace ws(ws_bytes);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::layernorm_forward(gx.as<T>(), gw.as<T>(), nullptr, y2.as<T>(), m2.as<float>(),
                               r2.as<float>(), shape, kEps, nullptr);
    kernels::layernorm_backward(gdy.as<T>(), gx.as<T>(), gw.as<T>(), gmean_ref.as<float>(),
                                grstd_ref.as<float>(), dx2.as<T>(), nullptr, db2.as<float>(),
                                ws.get(), shape, nullptr);
    kernels::layernorm_backward(gdy.as<T>(), gx.as<T>(), gw.as<T>(), gmean_ref.as<float>(),
                                grstd_ref.as<float>(), dx3.as<T>(), nullptr, nullptr, nullptr,
                                shape, nullptr);
  });
  sync_device();
  expect_matches("y (no bias)", y2, y_nobias, tolerance(st));
  EXPECT_TRUE(db2.bytes() == a.db.bytes()) << "db depends on whether dw is wanted";
  EXPECT_TRUE(dx2.bytes() == a.dx.bytes());
  EXPECT_TRUE(dx3.bytes() == a.dx.bytes());
  EXPECT_TRUE(ws.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(Shapes, NormKernelTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 7, 33, 300),
                                            ::testing::Values<std::int64_t>(64, 100, 4096),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         norm_case_name);

}  // namespace
}  // namespace tailor::testing
