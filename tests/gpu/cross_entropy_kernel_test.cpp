// Vocab-parallel cross-entropy kernels (kernels/cross_entropy.cu) against CpuOps, f32 and bf16
// logits:
//  - each phase (ce_local_max, ce_local_sums, ce_finish) against the CPU phase on one shard with
//    padding columns, a vocab_begin, ignored rows and targets inside and outside the shard: the
//    f32 statistics and losses within 1e-5 in both modes (computed in f32 from the same values),
//    dlogits within the mode's tolerance; in place (dlogits over the logits) equal to out of place;
//  - three shards (the last all padding), the all-reduces done on the host, against the plain
//    CpuOps::cross_entropy over the full logits.
// Finite, guards intact, two runs bitwise equal.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "backend/ops.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/cross_entropy.cuh"

namespace tailor::testing {
namespace {

static_assert(kernels::kCeIgnoreIndex == backend::kIgnoreIndex);

constexpr double kF32Tol = 1e-5;
constexpr double kDscale = 0.25;

struct ShardCase {
  std::int64_t cols;
  std::int64_t valid_cols;
  std::int64_t vocab_begin;
};
using CeCase = std::tuple<std::int64_t, ShardCase, DType>;  // rows, shard, storage

std::string ce_case_name(const ::testing::TestParamInfo<CeCase>& info) {
  const auto& [rows, s, storage] = info.param;
  return fmt::format("r{}_v{}_valid{}_b{}_{}", rows, s.cols, s.valid_cols, s.vocab_begin,
                     dtype_label(storage));
}

class CrossEntropyKernelTest : public ::testing::TestWithParam<CeCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// Targets over [0, vocab) with every 5th row ignored.
std::vector<std::int32_t> make_targets(std::int64_t rows, std::int64_t vocab,
                                       std::uint64_t stream) {
  std::vector<std::int32_t> t = random_ints(rows, 51, stream, 0, vocab);
  for (std::size_t i = 2; i < t.size(); i += 5) t[i] = backend::kIgnoreIndex;
  return t;
}

TEST_P(CrossEntropyKernelTest, PhasesMatchCpu) {
  const auto& [rows, s, st] = GetParam();
  std::vector<float> logits = random_normal(rows * s.cols, 51, 1, 3.0);
  round_for(st, logits);
  // Targets anywhere in a vocabulary that extends past the shard on both sides.
  std::vector<std::int32_t> targets = make_targets(rows, s.vocab_begin + s.valid_cols + 50, 2);
  if (rows > 3) targets[3] = static_cast<std::int32_t>(s.vocab_begin);  // first column here

  std::vector<float> row_max(static_cast<std::size_t>(rows)), stats(2 * row_max.size());
  std::vector<float> losses(row_max.size()), dlogits(logits.size());
  auto& ops = cpu_ops();
  ops.ce_local_max(cpu_view(logits, {rows, s.cols}), s.valid_cols, cpu_view(row_max, {rows}));
  ops.ce_local_sums(cpu_view(logits, {rows, s.cols}), cpu_view(targets, {rows}), s.vocab_begin,
                    s.valid_cols, cpu_view(row_max, {rows}), cpu_view(stats, {2, rows}));
  ops.ce_finish(cpu_view(logits, {rows, s.cols}), cpu_view(targets, {rows}), s.vocab_begin,
                s.valid_cols, cpu_view(row_max, {rows}), cpu_view(stats, {2, rows}),
                cpu_view(losses, {rows}), cpu_view(dlogits, {rows, s.cols}), kDscale);

  const kernels::CrossEntropyShape shape{rows, s.cols, s.valid_cols, s.vocab_begin};
  const DeviceTensor glogits = DeviceTensor::from(st, logits);
  const DeviceTensor gtargets = DeviceTensor::from_i32(targets);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor> o{
        DeviceTensor(DType::kF32, rows), DeviceTensor(DType::kF32, 2 * rows),
        DeviceTensor(DType::kF32, rows), DeviceTensor(st, rows * s.cols)};
    auto& [gmax, gstats, glosses, gd] = o;
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::ce_local_max(glogits.as<T>(), gmax.as<float>(), shape, nullptr);
      kernels::ce_local_sums(glogits.as<T>(), gtargets.as<std::int32_t>(), gmax.as<float>(),
                             gstats.as<float>(), shape, nullptr);
      kernels::ce_finish(glogits.as<T>(), gtargets.as<std::int32_t>(), gmax.as<float>(),
                         gstats.as<float>(), glosses.as<float>(), gd.template as<T>(), kDscale,
                         shape, nullptr);
    });
    sync_device();
    return o;
  };
  const auto a = run();
  expect_matches("row_max", std::get<0>(a), row_max, kF32Tol);
  EXPECT_TRUE(std::get<0>(a).to_f32() == row_max) << "the maximum should be exact";
  expect_matches("stats", std::get<1>(a), stats, kF32Tol);
  expect_matches("losses", std::get<2>(a), losses, kF32Tol);
  expect_matches("dlogits", std::get<3>(a), dlogits, tolerance(st));
  EXPECT_TRUE(glogits.guards_intact() && gtargets.guards_intact());

  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes());
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes()) << "sums not deterministic";
  EXPECT_TRUE(std::get<2>(a).bytes() == std::get<2>(b).bytes()) << "losses not deterministic";
  EXPECT_TRUE(std::get<3>(a).bytes() == std::get<3>(b).bytes()) << "dlogits not deterministic";

  // In place: the gradient overwrites the logits; no gradient at all still gives the losses.
  const DeviceTensor inplace = DeviceTensor::from(st, logits);
  const DeviceTensor losses2(DType::kF32, rows);
  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    kernels::ce_finish(inplace.as<T>(), gtargets.as<std::int32_t>(), std::get<0>(a).as<float>(),
                       std::get<1>(a).as<float>(), losses2.as<float>(), inplace.as<T>(), kDscale,
                       shape, nullptr);
    kernels::ce_finish(glogits.as<T>(), gtargets.as<std::int32_t>(), std::get<0>(a).as<float>(),
                       std::get<1>(a).as<float>(), losses2.as<float>(), static_cast<T*>(nullptr),
                       kDscale, shape, nullptr);
  });
  sync_device();
  EXPECT_TRUE(inplace.bytes() == std::get<3>(a).bytes()) << "in-place gradient differs";
  EXPECT_TRUE(losses2.bytes() == std::get<2>(a).bytes()) << "losses depend on dlogits";
}

INSTANTIATE_TEST_SUITE_P(Shards, CrossEntropyKernelTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 7, 33),
                                            ::testing::Values(ShardCase{64, 64, 0},
                                                              ShardCase{100, 77, 128},
                                                              ShardCase{4096, 4000, 4096}),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         ce_case_name);

// ---- three shards against the plain cross-entropy ----------------------------------------------

using CeSplitCase = std::tuple<std::int64_t, DType>;  // rows, storage

std::string split_case_name(const ::testing::TestParamInfo<CeSplitCase>& info) {
  return fmt::format("r{}_{}", std::get<0>(info.param), dtype_label(std::get<1>(info.param)));
}

class CrossEntropySplitTest : public ::testing::TestWithParam<CeSplitCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

TEST_P(CrossEntropySplitTest, ThreeShardsMatchFullCrossEntropy) {
  const auto [rows, st] = GetParam();
  constexpr std::int64_t kShard = 512;
  constexpr std::int64_t kShards = 3;
  constexpr std::int64_t kVocab = kShard * kShards;
  constexpr std::int64_t kValid = 1000;  // shard 0 all real, shard 1 partly, shard 2 all padding
  std::vector<float> logits = random_normal(rows * kVocab, 52, 1, 3.0);
  round_for(st, logits);
  std::vector<std::int32_t> targets = make_targets(rows, kValid, 3);

  std::vector<float> losses(static_cast<std::size_t>(rows)), dlogits(logits.size());
  cpu_ops().cross_entropy(cpu_view(logits, {rows, kVocab}), cpu_view(targets, {rows}), kValid,
                          cpu_view(losses, {rows}), cpu_view(dlogits, {rows, kVocab}), kDscale);

  std::vector<DeviceTensor> shard_logits;
  std::vector<kernels::CrossEntropyShape> shapes;
  for (std::int64_t k = 0; k < kShards; ++k) {
    std::vector<float> part(static_cast<std::size_t>(rows * kShard));
    for (std::int64_t r = 0; r < rows; ++r)
      std::copy_n(logits.begin() + r * kVocab + k * kShard, kShard, part.begin() + r * kShard);
    shard_logits.push_back(DeviceTensor::from(st, part));
    const std::int64_t valid = std::clamp<std::int64_t>(kValid - k * kShard, 0, kShard);
    shapes.push_back({rows, kShard, valid, k * kShard});
  }
  const DeviceTensor gtargets = DeviceTensor::from_i32(targets);
  DeviceTensor gmax(DType::kF32, rows);
  DeviceTensor gstats(DType::kF32, 2 * rows);
  std::vector<DeviceTensor> shard_losses;
  for (std::int64_t k = 0; k < kShards; ++k) shard_losses.emplace_back(DType::kF32, rows);

  dispatch_storage(st, [&](auto tag) {
    using T = decltype(tag);
    // Phase 1 and the MAX all-reduce.
    std::vector<float> global_max(static_cast<std::size_t>(rows), -INFINITY);
    for (std::int64_t k = 0; k < kShards; ++k) {
      kernels::ce_local_max(shard_logits[k].as<T>(), gmax.as<float>(), shapes[k], nullptr);
      const std::vector<float> m = gmax.to_f32();
      for (std::size_t r = 0; r < m.size(); ++r) global_max[r] = std::max(global_max[r], m[r]);
    }
    EXPECT_TRUE(gmax.guards_intact());
    gmax.upload(global_max);
    // Phase 2 and the SUM all-reduce (in shard order).
    std::vector<float> global_stats(static_cast<std::size_t>(2 * rows), 0.0f);
    for (std::int64_t k = 0; k < kShards; ++k) {
      kernels::ce_local_sums(shard_logits[k].as<T>(), gtargets.as<std::int32_t>(), gmax.as<float>(),
                             gstats.as<float>(), shapes[k], nullptr);
      const std::vector<float> part = gstats.to_f32();
      for (std::size_t i = 0; i < part.size(); ++i) global_stats[i] += part[i];
    }
    EXPECT_TRUE(gstats.guards_intact());
    gstats.upload(global_stats);
    // Phase 3 on every shard, gradient in place.
    for (std::int64_t k = 0; k < kShards; ++k)
      kernels::ce_finish(shard_logits[k].as<T>(), gtargets.as<std::int32_t>(), gmax.as<float>(),
                         gstats.as<float>(), shard_losses[k].as<float>(), shard_logits[k].as<T>(),
                         kDscale, shapes[k], nullptr);
  });
  sync_device();

  for (std::int64_t k = 0; k < kShards; ++k) {
    const std::string what = fmt::format("losses of shard {}", k);
    expect_matches(what.c_str(), shard_losses[k], losses, kF32Tol);
  }
  std::vector<float> gathered(logits.size());
  for (std::int64_t k = 0; k < kShards; ++k) {
    EXPECT_TRUE(shard_logits[k].guards_intact());
    const std::vector<float> part = shard_logits[k].to_f32();
    for (std::int64_t r = 0; r < rows; ++r)
      std::copy_n(part.begin() + r * kShard, kShard, gathered.begin() + r * kVocab + k * kShard);
  }
  EXPECT_TRUE(all_finite(gathered));
  EXPECT_LT(rel_error(gathered, dlogits), tolerance(st)) << "dlogits";
}

INSTANTIATE_TEST_SUITE_P(Rows, CrossEntropySplitTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 7, 33),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         split_case_name);

}  // namespace
}  // namespace tailor::testing
