// Embedding kernels (kernels/embedding.cu) against CpuOps::embedding_forward / backward on
// vocab-parallel shards (ids below, inside and above [vocab_begin, vocab_begin + V), many repeated
// ids), f32 and bf16 storage: the forward copy is exact; the backward sums each row's tokens in
// token order from the existing f32 gradient, the CPU's order, so it is bit-identical to the CPU
// in both modes. Finite, guards intact, two runs bitwise equal.
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/embedding.cuh"

namespace tailor::testing {
namespace {

struct EmbeddingCase {
  std::int64_t tokens;
  std::int64_t rows;  // V of the shard
  std::int64_t cols;
  std::int64_t vocab_begin;
};
using EmbCase = std::tuple<EmbeddingCase, DType>;

std::string emb_case_name(const ::testing::TestParamInfo<EmbCase>& info) {
  const auto& [c, storage] = info.param;
  return fmt::format("n{}_v{}_d{}_b{}_{}", c.tokens, c.rows, c.cols, c.vocab_begin,
                     dtype_label(storage));
}

class EmbeddingKernelTest : public ::testing::TestWithParam<EmbCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

TEST_P(EmbeddingKernelTest, MatchesCpu) {
  const auto& [c, st] = GetParam();
  const std::int64_t n = c.tokens, v = c.rows, d = c.cols;
  std::vector<float> table = random_normal(v * d, 41, 1);
  std::vector<float> dout = random_normal(n * d, 41, 2);
  const std::vector<float> dtable0 = random_normal(v * d, 41, 3, 0.1);
  round_for(st, table);
  round_for(st, dout);
  // Ids over the shard, a few rows beyond it on each side, with many repeats.
  std::vector<std::int32_t> ids = random_ints(n, 41, 4, 0, c.vocab_begin + v + 3);
  if (n > 2) ids[n - 1] = ids[0];

  std::vector<float> out(static_cast<std::size_t>(n * d));
  std::vector<float> dtable = dtable0;
  cpu_ops().embedding_forward(cpu_view(table, {v, d}), cpu_view(ids, {n}), c.vocab_begin,
                              cpu_view(out, {n, d}));
  cpu_ops().embedding_backward(cpu_view(dtable, {v, d}), cpu_view(ids, {n}), c.vocab_begin,
                               cpu_view(dout, {n, d}));

  const kernels::EmbeddingShape shape{n, v, d, c.vocab_begin};
  const DeviceTensor gtable = DeviceTensor::from(st, table);
  const DeviceTensor gdout = DeviceTensor::from(st, dout);
  const DeviceTensor gids = DeviceTensor::from_i32(ids);
  const std::size_t ws_bytes = kernels::embedding_backward_workspace_bytes(shape);
  auto run = [&]() {
    std::tuple<DeviceTensor, DeviceTensor> o{DeviceTensor(st, n * d),
                                             DeviceTensor::from(DType::kF32, dtable0)};
    const DeviceWorkspace ws(ws_bytes);
    dispatch_storage(st, [&](auto tag) {
      using T = decltype(tag);
      kernels::embedding_forward(gtable.as<T>(), gids.as<std::int32_t>(),
                                 std::get<0>(o).template as<T>(), shape, nullptr);
      kernels::embedding_backward(gdout.as<T>(), gids.as<std::int32_t>(),
                                  std::get<1>(o).template as<float>(), ws.get(), shape, nullptr);
    });
    sync_device();
    EXPECT_TRUE(ws.guards_intact()) << "workspace written out of bounds";
    return o;
  };
  const auto a = run();
  expect_matches("forward", std::get<0>(a), out, tolerance(st));
  expect_matches("backward", std::get<1>(a), dtable, tolerance(DType::kF32));
  EXPECT_TRUE(std::get<0>(a).to_f32() == out) << "forward is a copy: it should be exact";
  EXPECT_TRUE(std::get<1>(a).to_f32() == dtable) << "backward should add in the CPU's order";
  EXPECT_TRUE(gids.guards_intact());

  const auto b = run();
  EXPECT_TRUE(std::get<0>(a).bytes() == std::get<0>(b).bytes()) << "forward not deterministic";
  EXPECT_TRUE(std::get<1>(a).bytes() == std::get<1>(b).bytes()) << "backward not deterministic";
}

INSTANTIATE_TEST_SUITE_P(Shards, EmbeddingKernelTest,
                         ::testing::Combine(::testing::Values(EmbeddingCase{1, 7, 64, 0},
                                                              EmbeddingCase{33, 7, 100, 3},
                                                              EmbeddingCase{257, 1, 100, 0},
                                                              EmbeddingCase{300, 100, 4096, 50},
                                                              EmbeddingCase{2000, 1000, 64, 1000}),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         emb_case_name);

}  // namespace
}  // namespace tailor::testing
