// Elementwise kernels (kernels/elementwise.cu) against CpuOps: fill, add (and the mixed f32 += bf16
// add), scale, add_bias, bias_backward and dropout, in f32 and bf16 storage, over shapes from
// 1 x 1 to odd ones (7 x 100, 33 x 4101, 300 x 64, ...).
//
// Every op but bias_backward computes the CPU's expression term by term in f32 and rounds once,
// so its result is checked against the CPU's, rounded to the storage type, bit for bit (besides
// the usual tolerance, NaN/Inf and guard checks). bias_backward sums in a different (fixed) order
// than the CPU and is held to 1e-5, the f32 gradients' tolerance, and run twice for bitwise
// equality. Dropout is also checked in place, at p = 0, and on a shard (row0, col0, row_width
// nonzero), which must draw the corresponding slice of the whole tensor's mask.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "backend/ops.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/elementwise.cuh"

namespace tailor::testing {
namespace {

constexpr double kF32Tol = 1e-5;  // f32 gradients (bias_backward) in both modes

using ElemCase = std::tuple<std::int64_t, std::int64_t, DType>;  // rows, cols, storage

std::string elem_case_name(const ::testing::TestParamInfo<ElemCase>& info) {
  const auto [rows, cols, storage] = info.param;
  return fmt::format("r{}_d{}_{}", rows, cols, dtype_label(storage));
}

class ElementwiseKernelTest : public ::testing::TestWithParam<ElemCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// Number of elements whose bits differ (sizes must match).
std::size_t bit_mismatches(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) ++bad;
  return bad;
}

// Tolerance, finiteness and guards (expect_matches), then bit equality with `want`, which the
// caller has rounded to the storage type.
void expect_bitwise(const char* what, const DeviceTensor& got, const std::vector<float>& want) {
  expect_matches(what, got, want, tolerance(got.dtype()));
  EXPECT_EQ(bit_mismatches(got.to_f32(), want), 0u) << what << ": not the CPU's bits";
}

TEST_P(ElementwiseKernelTest, FillMatchesCpu) {
  const auto [rows, cols, st] = GetParam();
  const std::int64_t n = rows * cols;
  for (const float value : {0.3f, -1.0f, 0.0f}) {
    std::vector<float> want(static_cast<std::size_t>(n));
    cpu_ops().fill(cpu_view(want, {n}), static_cast<double>(value));
    round_for(st, want);
    const DeviceTensor g(st, n);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::fill(g.as<T>(), n, value, nullptr);
    });
    sync_device();
    expect_bitwise("fill", g, want);
  }
}

TEST_P(ElementwiseKernelTest, AddAndScaleMatchCpu) {
  const auto [rows, cols, st] = GetParam();
  const std::int64_t n = rows * cols;
  std::vector<float> y = random_normal(n, 41, 1);
  std::vector<float> x = random_normal(n, 41, 2, 3.0);
  round_for(st, y);
  round_for(st, x);
  constexpr double kAlpha = -0.37;
  constexpr double kScale = 1.7;

  std::vector<float> added = y;
  cpu_ops().add(cpu_view(added, {n}), cpu_view(x, {n}), kAlpha);
  std::vector<float> scaled = y;
  cpu_ops().scale(cpu_view(scaled, {n}), kScale);
  // The f32 accumulator += bf16 reference: f32 y (not rounded) plus the bf16-rounded x.
  std::vector<float> acc = random_normal(n, 41, 3);
  std::vector<float> xb = x;
  round_for(DType::kBF16, xb);
  std::vector<float> mixed = acc;
  cpu_ops().add(cpu_view(mixed, {n}), cpu_view(xb, {n}), kAlpha);
  round_for(st, added);
  round_for(st, scaled);

  const DeviceTensor gx = DeviceTensor::from(st, x);
  const DeviceTensor gxb = DeviceTensor::from(DType::kBF16, xb);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor, DeviceTensor> o{
        DeviceTensor::from(st, y), DeviceTensor::from(st, y), DeviceTensor::from(DType::kF32, acc)};
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::add(std::get<0>(o).template as<T>(), gx.as<T>(), n, static_cast<float>(kAlpha),
                   nullptr);
      kernels::scale(std::get<1>(o).template as<T>(), n, static_cast<float>(kScale), nullptr);
    });
    kernels::add(std::get<2>(o).template as<float>(), gxb.as<std::uint16_t>(), n,
                 static_cast<float>(kAlpha), nullptr);
    sync_device();
    return o;
  };
  const auto a = run();
  expect_bitwise("add", std::get<0>(a), added);
  expect_bitwise("scale", std::get<1>(a), scaled);
  expect_bitwise("add f32 += bf16", std::get<2>(a), mixed);
  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes()) << "add not deterministic";
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes()) << "scale not deterministic";
  EXPECT_TRUE(std::get<2>(a).bytes() == std::get<2>(b).bytes()) << "mixed add not deterministic";

  // y += alpha * y (y aliasing x) equals the out-of-place add of a copy.
  std::vector<float> self = y;
  std::vector<float> self_copy = y;
  cpu_ops().add(cpu_view(self, {n}), cpu_view(self_copy, {n}), kAlpha);
  round_for(st, self);
  const DeviceTensor gs = DeviceTensor::from(st, y);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::add(gs.as<T>(), gs.as<T>(), n, static_cast<float>(kAlpha), nullptr);
  });
  sync_device();
  expect_bitwise("add in place", gs, self);
}

TEST_P(ElementwiseKernelTest, BiasMatchesCpu) {
  const auto [rows, cols, st] = GetParam();
  const std::int64_t n = rows * cols;
  std::vector<float> y = random_normal(n, 43, 1);
  std::vector<float> bias = random_normal(cols, 43, 2);
  std::vector<float> dy = random_normal(n, 43, 3);
  const std::vector<float> db0 = random_normal(cols, 43, 4, 0.1);
  round_for(st, y);
  round_for(st, bias);
  round_for(st, dy);

  std::vector<float> biased = y;
  cpu_ops().add_bias(cpu_view(biased, {rows, cols}), cpu_view(bias, {cols}));
  round_for(st, biased);
  std::vector<float> db = db0;
  cpu_ops().bias_backward(cpu_view(db, {cols}), cpu_view(dy, {rows, cols}));

  const DeviceTensor gbias = DeviceTensor::from(st, bias);
  const DeviceTensor gdy = DeviceTensor::from(st, dy);
  const std::size_t ws_bytes = kernels::bias_backward_workspace_bytes(rows, cols);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor> o{DeviceTensor::from(st, y),
                                             DeviceTensor::from(DType::kF32, db0)};
    const DeviceWorkspace ws(ws_bytes);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::add_bias(std::get<0>(o).template as<T>(), gbias.as<T>(), rows, cols, nullptr);
      kernels::bias_backward(std::get<1>(o).template as<float>(), gdy.as<T>(), rows, cols, ws.get(),
                             nullptr);
    });
    sync_device();
    EXPECT_TRUE(ws.guards_intact()) << "bias_backward wrote outside its workspace";
    return o;
  };
  const auto a = run();
  expect_bitwise("add_bias", std::get<0>(a), biased);
  expect_matches("bias_backward", std::get<1>(a), db, kF32Tol);
  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes()) << "add_bias not deterministic";
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes())
      << "bias_backward not deterministic";
}

// GPU dropout of `src` (already rounded to st) into a fresh tensor.
DeviceTensor gpu_dropout(DType st, const std::vector<float>& src, std::int64_t rows,
                         std::int64_t cols, double p, const kernels::DropoutKeyArgs& key) {
  const DeviceTensor gsrc = DeviceTensor::from(st, src);
  DeviceTensor dst(st, rows * cols);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::dropout(gsrc.as<T>(), dst.as<T>(), rows, cols, p, key, nullptr);
  });
  sync_device();
  return dst;
}

TEST_P(ElementwiseKernelTest, DropoutMatchesCpuBitwise) {
  const auto [rows, cols, st] = GetParam();
  const std::int64_t n = rows * cols;
  std::vector<float> src = random_normal(n, 47, 1);
  round_for(st, src);
  for (const double p : {0.1, 0.5, 0.0}) {
    const backend::DropoutKey key{1234, 77, 0, 0, 0};
    const kernels::DropoutKeyArgs gkey{key.seed, key.stream, key.row0, key.row_width, key.col0};
    std::vector<float> want(src.size());
    cpu_ops().dropout(cpu_view(src, {rows, cols}), cpu_view(want, {rows, cols}), p, key);
    round_for(st, want);

    const DeviceTensor a = gpu_dropout(st, src, rows, cols, p, gkey);
    const std::string what = fmt::format("dropout p={}", p);
    expect_bitwise(what.c_str(), a, want);
    const DeviceTensor b = gpu_dropout(st, src, rows, cols, p, gkey);
    EXPECT_TRUE(a.bytes() == b.bytes()) << what << " not deterministic";

    // In place: dst == src.
    const DeviceTensor in_place = DeviceTensor::from(st, src);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::dropout(in_place.as<T>(), in_place.as<T>(), rows, cols, p, gkey, nullptr);
    });
    sync_device();
    EXPECT_TRUE(in_place.bytes() == a.bytes()) << what << " in place differs";
  }
}

// A shard [rows, cols] at global rows [row0, row0 + rows) and columns [col0, col0 + cols) of a
// [rows + 5, cols + 7] tensor draws that slice of the whole tensor's mask (the CPU's, bit for bit).
TEST_P(ElementwiseKernelTest, DropoutShardIsSliceOfWhole) {
  const auto [rows, cols, st] = GetParam();
  constexpr std::int64_t kRow0 = 3;
  constexpr std::int64_t kCol0 = 5;
  const std::int64_t full_rows = rows + 5;
  const std::int64_t width = cols + 7;
  constexpr double kP = 0.25;
  std::vector<float> full = random_normal(full_rows * width, 53, 1);
  round_for(st, full);
  std::vector<float> full_out(full.size());
  const backend::DropoutKey whole{99, 5, 0, 0, 0};
  cpu_ops().dropout(cpu_view(full, {full_rows, width}), cpu_view(full_out, {full_rows, width}), kP,
                    whole);
  round_for(st, full_out);

  std::vector<float> shard(static_cast<std::size_t>(rows * cols));
  std::vector<float> want(shard.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto from = static_cast<std::size_t>((kRow0 + r) * width + kCol0 + c);
      shard[static_cast<std::size_t>(r * cols + c)] = full[from];
      want[static_cast<std::size_t>(r * cols + c)] = full_out[from];
    }

  const kernels::DropoutKeyArgs key{whole.seed, whole.stream, kRow0, width, kCol0};
  const DeviceTensor got = gpu_dropout(st, shard, rows, cols, kP, key);
  expect_bitwise("dropout shard", got, want);

  // The CPU on the same shard and key agrees too (the reference's own sharding contract).
  std::vector<float> cpu_shard(shard.size());
  const backend::DropoutKey shard_key{whole.seed, whole.stream, kRow0, width, kCol0};
  cpu_ops().dropout(cpu_view(shard, {rows, cols}), cpu_view(cpu_shard, {rows, cols}), kP,
                    shard_key);
  round_for(st, cpu_shard);
  EXPECT_EQ(bit_mismatches(cpu_shard, want), 0u) << "CPU shard differs from its whole";
}

std::vector<ElemCase> elem_cases() {
  const std::int64_t shapes[][2] = {{1, 1}, {1, 5}, {7, 100}, {33, 4101}, {300, 64}};
  std::vector<ElemCase> cases;
  for (const DType st : {DType::kF32, DType::kBF16})
    for (const auto& s : shapes) cases.emplace_back(s[0], s[1], st);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseKernelTest, ::testing::ValuesIn(elem_cases()),
                         elem_case_name);

}  // namespace
}  // namespace tailor::testing
