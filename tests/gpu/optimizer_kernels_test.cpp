// Multi-tensor AdamW (kernels/adamw.cu) and the deterministic sum of squares behind the gradient
// norm (kernels/grad_norm.cu) against CpuOps::adamw_update and CpuOps::sum_squares:
//  - AdamW over tensors of 0, 1, 7, 100, 4099 and 70001 elements plus 100 small ones (several
//    launches), both lerp branches (beta1 0.9 and 0.3), with and without weight decay, a device
//    gradient scale, with and without a bf16 model copy: master weights and moments within 1e-5
//    of the CPU (f32 in both), the bf16 copy exactly the rounding of the new master, guards intact,
//    two runs bitwise equal;
//  - the sum of squares over the same kind of list within 1e-10 of the CPU's f64 sums, bitwise
//    repeatable, 0 for an empty list.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "backend/ops.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/adamw.cuh"
#include "kernels/grad_norm.cuh"

namespace tailor::testing {
namespace {

constexpr double kF32Tol = 1e-5;

std::vector<std::int64_t> tensor_sizes() {
  std::vector<std::int64_t> sizes = {0, 1, 7, 100, 4099, 70001};
  for (std::int64_t i = 0; i < 100; ++i) sizes.push_back((i * 37) % 500 + 1);
  return sizes;
}

struct AdamWCase {
  double beta1;
  double weight_decay;
  std::int64_t step;
  bool model_copy;
  float grad_scale;  // 1: no scale pointer
};

std::string adamw_case_name(const ::testing::TestParamInfo<AdamWCase>& info) {
  return fmt::format("case{}", info.index);
}

class AdamWKernelTest : public ::testing::TestWithParam<AdamWCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// The state of one tensor on the host.
struct HostParam {
  std::vector<float> master, grad, m, v;
};

TEST_P(AdamWKernelTest, MatchesCpu) {
  const AdamWCase c = GetParam();
  const std::vector<std::int64_t> sizes = tensor_sizes();
  std::vector<HostParam> host;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::int64_t n = sizes[i];
    host.push_back({random_normal(n, 61, 4 * i), random_normal(n, 61, 4 * i + 1),
                    random_normal(n, 61, 4 * i + 2, 0.01),
                    random_uniform(n, 61, 4 * i + 3, 0.0, 0.01)});
  }
  backend::AdamWHyper hyper;
  hyper.lr = 3e-4;
  hyper.beta1 = c.beta1;
  hyper.beta2 = 0.95;
  hyper.eps = 1e-8;
  hyper.weight_decay = c.weight_decay;
  hyper.step = c.step;
  // CPU reference, tensor by tensor, on the scaled gradients (the GPU scales on the fly).
  std::vector<HostParam> want = host;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    HostParam& p = want[i];
    for (float& g : p.grad) g *= c.grad_scale;
    const Shape s{sizes[i]};
    cpu_ops().adamw_update(cpu_view(p.master, s), cpu_view(p.grad, s), cpu_view(p.m, s),
                           cpu_view(p.v, s), hyper);
  }

  const kernels::AdamWParams params{hyper.lr,  hyper.beta1,        hyper.beta2,
                                    hyper.eps, hyper.weight_decay, hyper.step};
  const DeviceTensor scale = DeviceTensor::from(DType::kF32, {c.grad_scale});
  struct DeviceParam {
    DeviceTensor master, model, grad, m, v;
  };
  auto run = [&]() {
    std::vector<DeviceParam> dev;
    std::vector<kernels::AdamWTensor> table;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      dev.push_back(
          {DeviceTensor::from(DType::kF32, host[i].master), DeviceTensor(DType::kBF16, sizes[i]),
           DeviceTensor::from(DType::kF32, host[i].grad),
           DeviceTensor::from(DType::kF32, host[i].m), DeviceTensor::from(DType::kF32, host[i].v)});
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const DeviceParam& d = dev[i];
      table.push_back({d.master.as<float>(), c.model_copy ? d.model.as<std::uint16_t>() : nullptr,
                       d.grad.as<float>(), d.m.as<float>(), d.v.as<float>(), sizes[i]});
    }
    kernels::adamw_update(table.data(), static_cast<int>(table.size()), params,
                          c.grad_scale != 1.0f ? scale.as<float>() : nullptr, nullptr);
    sync_device();
    return dev;
  };
  const std::vector<DeviceParam> a = run();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::string at = fmt::format(" of tensor {} ({} elements)", i, sizes[i]);
    expect_matches(fmt::format("master{}", at).c_str(), a[i].master, want[i].master, kF32Tol);
    expect_matches(fmt::format("m{}", at).c_str(), a[i].m, want[i].m, kF32Tol);
    expect_matches(fmt::format("v{}", at).c_str(), a[i].v, want[i].v, kF32Tol);
    EXPECT_TRUE(a[i].grad.to_f32() == host[i].grad) << "grad changed" << at;
    EXPECT_TRUE(a[i].grad.guards_intact() && a[i].model.guards_intact()) << at;
    if (c.model_copy) {
      const std::vector<float> master = a[i].master.to_f32();
      std::vector<float> rounded = master;
      round_for(DType::kBF16, rounded);
      EXPECT_TRUE(a[i].model.to_f32() == rounded) << "bf16 copy is not round(master)" << at;
    } else {
      const std::vector<unsigned char> untouched(a[i].model.bytes().size(), 0xFF);
      EXPECT_TRUE(a[i].model.bytes() == untouched) << "model copy written though absent" << at;
    }
  }
  const std::vector<DeviceParam> b = run();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(a[i].master.bytes() == b[i].master.bytes()) << "not deterministic: " << i;
    EXPECT_TRUE(a[i].m.bytes() == b[i].m.bytes() && a[i].v.bytes() == b[i].v.bytes()) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Hyper, AdamWKernelTest,
                         ::testing::Values(AdamWCase{0.9, 0.1, 1, true, 1.0f},
                                           AdamWCase{0.9, 0.0, 10, false, 0.5f},
                                           AdamWCase{0.3, 0.01, 1000, true, 0.25f}),
                         adamw_case_name);

// ---- sum of squares ---------------------------------------------------------------------------

TEST(SumSquaresKernel, MatchesCpuAndRepeats) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  std::vector<std::int64_t> sizes = tensor_sizes();
  sizes.push_back(16 * 256 * 3 + 1);  // chunk boundaries
  sizes.push_back(300000);
  for (int i = 0; i < 200; ++i) sizes.push_back(i % 3);  // more than one launch of tensors
  std::vector<std::vector<float>> host;
  std::vector<DeviceTensor> dev;
  std::vector<kernels::SumSquaresTensor> table;
  double want = 0.0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    host.push_back(random_normal(sizes[i], 62, i, 1.0 + static_cast<double>(i % 7)));
    want += cpu_ops().sum_squares(cpu_view(host.back(), {sizes[i]}));
    dev.push_back(DeviceTensor::from(DType::kF32, host.back()));
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) table.push_back({dev[i].as<float>(), sizes[i]});
  const int count = static_cast<int>(table.size());
  const DeviceWorkspace ws(kernels::sum_squares_workspace_bytes(table.data(), count));
  auto run = [&]() {
    const DeviceTensor out(DType::kF64, 1);
    kernels::sum_squares(table.data(), count, ws.get(), out.as<double>(), nullptr);
    sync_device();
    EXPECT_TRUE(out.guards_intact());
    return out.to_f64().at(0);
  };
  const double a = run();
  const double b = run();
  EXPECT_LT(rel_error(std::vector<double>{a}, std::vector<double>{want}), 1e-10)
      << a << " vs " << want;
  EXPECT_EQ(std::memcmp(&a, &b, sizeof(double)), 0) << "not deterministic";
  EXPECT_TRUE(ws.guards_intact());

  // No elements at all: 0.
  const DeviceTensor out(DType::kF64, 1);
  kernels::sum_squares(table.data(), 1, nullptr, out.as<double>(), nullptr);  // sizes[0] == 0
  kernels::sum_squares(nullptr, 0, nullptr, out.as<double>(), nullptr);
  sync_device();
  EXPECT_EQ(out.to_f64().at(0), 0.0);
}

}  // namespace
}  // namespace tailor::testing
