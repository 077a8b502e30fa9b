// Collectives with rank-valued inputs, so every expected result is known exactly (as
// nccl-tests and Megatron's mapping tests do), odd sizes included; and the process grid layout.
#include <gtest/gtest.h>

#include <vector>

#include "backend/emulated_device_ops.h"
#include "backend/tensor.h"
#include "comm/mpi_communicator.h"
#include "comm/process_grid.h"
#include "comm/staged_communicator.h"
#include "core/error.h"
#include "mpi_test_env.h"

namespace tailor::comm {
namespace {

using backend::Buffer;
using tailor::testing::world;

template <typename T>
Buffer filled(std::int64_t n, T (*f)(int rank, std::int64_t i)) {
  Buffer b(DTypeOf<T>::value, Shape{n});
  for (std::int64_t i = 0; i < n; ++i) b.ptr<T>()[i] = f(world().rank(), i);
  return b;
}

TEST(Collectives, AllReduceSumAndMaxExact) {
  const int p = world().size();
  for (std::int64_t n : {1, 7, 1000, 4099}) {
    Buffer x = filled<double>(n, [](int r, std::int64_t i) { return (r + 1) * 1000.0 + static_cast<double>(i); });
    world().all_reduce(x.tensor(), ReduceOp::kSum);
    for (std::int64_t i = 0; i < n; ++i)
      ASSERT_EQ(x.ptr<double>()[i], 1000.0 * p * (p + 1) / 2 + static_cast<double>(p * i)) << n << " " << i;
    Buffer y = filled<float>(n, [](int r, std::int64_t i) { return static_cast<float>((r * 7 + i) % 5); });
    world().all_reduce(y.tensor(), ReduceOp::kMax);
    for (std::int64_t i = 0; i < n; ++i) {
      float expect = 0;
      for (int r = 0; r < p; ++r) expect = std::max(expect, static_cast<float>((r * 7 + i) % 5));
      ASSERT_EQ(y.ptr<float>()[i], expect);
    }
    Buffer z = filled<std::int32_t>(n, [](int r, std::int64_t) { return r; });
    world().all_reduce(z.tensor(), ReduceOp::kSum);
    ASSERT_EQ(z.ptr<std::int32_t>()[n - 1], p * (p - 1) / 2);
  }
}

TEST(Collectives, ReduceScatterGivesEachRankItsSliceOfTheSum) {
  const int p = world().size();
  for (std::int64_t chunk : {1, 5, 333}) {
    Buffer in = filled<double>(chunk * p, [](int r, std::int64_t i) { return r * 0.5 + static_cast<double>(i); });
    Buffer out(DType::kF64, Shape{chunk});
    world().reduce_scatter(in.tensor(), out.tensor());
    for (std::int64_t j = 0; j < chunk; ++j) {
      const std::int64_t i = world().rank() * chunk + j;
      ASSERT_EQ(out.ptr<double>()[j], 0.5 * p * (p - 1) / 2 + static_cast<double>(p * i));
    }
  }
}

TEST(Collectives, AllGatherConcatenatesInRankOrderAlsoInPlace) {
  const int p = world().size();
  for (std::int64_t chunk : {1, 6, 257}) {
    Buffer in = filled<float>(chunk, [](int r, std::int64_t i) { return static_cast<float>(r * 10000 + i); });
    Buffer out(DType::kF32, Shape{chunk * p});
    world().all_gather(in.tensor(), out.tensor());
    for (int r = 0; r < p; ++r)
      for (std::int64_t i = 0; i < chunk; ++i)
        ASSERT_EQ(out.ptr<float>()[r * chunk + i], static_cast<float>(r * 10000 + i));
    // In place: each rank's input already sits at its slot of the output.
    Buffer both(DType::kF32, Shape{chunk * p});
    for (std::int64_t i = 0; i < chunk; ++i) both.ptr<float>()[world().rank() * chunk + i] = static_cast<float>(i + 1);
    world().all_gather(both.tensor().flat_slice(world().rank() * chunk, (world().rank() + 1) * chunk), both.tensor());
    for (int r = 0; r < p; ++r) ASSERT_EQ(both.ptr<float>()[r * chunk], 1.0f);
  }
}

TEST(Collectives, BroadcastAndScalars) {
  const int p = world().size();
  for (int root = 0; root < p; ++root) {
    Buffer x = filled<double>(9, [](int r, std::int64_t i) { return r * 100.0 + static_cast<double>(i); });
    world().broadcast(x.tensor(), root);
    for (std::int64_t i = 0; i < 9; ++i) ASSERT_EQ(x.ptr<double>()[i], root * 100.0 + static_cast<double>(i));
  }
  EXPECT_EQ(world().all_reduce_sum(static_cast<double>(world().rank())), p * (p - 1) / 2.0);
  EXPECT_EQ(world().all_reduce_max(static_cast<double>(world().rank())), p - 1.0);
  EXPECT_EQ(world().all_reduce_sum(std::int64_t{3}), 3 * p);
  EXPECT_TRUE(world().any(world().rank() == p - 1));
  EXPECT_FALSE(world().any(false));
  world().barrier();
}

// Device tensors (the emulated device's memory) through a StagedCommunicator, over MPI and over a
// group of one: the host collectives' results, bf16 summed in f32 and rounded once. The host
// communicators themselves refuse device tensors.
TEST(StagedCollectives, DeviceTensorsGiveTheHostResults) {
  backend::EmulatedDeviceOps dev(1);
  const int p = world().size();
  const std::int64_t chunk = 5, n = chunk * p;
  const auto value = [](int r, std::int64_t i) { return static_cast<float>(r + i % 3) + 0.5f; };
  const auto to_device = [&](DType dtype, std::int64_t count, const Buffer& host) {
    Buffer d = dev.alloc(dtype, Shape{count});
    dev.copy(d.tensor(), host.tensor());
    return d;
  };
  const auto to_host = [&](const Buffer& d) {
    Buffer h(DType::kF32, d.shape());
    dev.copy(h.tensor(), d.tensor());
    return h;
  };
  const Buffer mine = filled<float>(n, value);
  StagedCommunicator staged(world(), *dev.device_memory());

  const Buffer x = to_device(DType::kBF16, n, mine);
  staged.all_reduce(x.tensor(), ReduceOp::kSum);
  const Buffer sum = to_host(x);
  for (std::int64_t i = 0; i < n; ++i) {
    float want = 0.0f;
    for (int r = 0; r < p; ++r) want += value(r, i);
    ASSERT_EQ(sum.ptr<float>()[i], round_to_bf16(want)) << i;
  }

  const Buffer in = to_device(DType::kF32, n, mine);
  const Buffer slice = dev.alloc(DType::kF32, Shape{chunk});
  const Buffer gathered = dev.alloc(DType::kF32, Shape{n});
  staged.reduce_scatter(in.tensor(), slice.tensor());
  staged.all_gather(slice.tensor(), gathered.tensor());
  const Buffer all = to_host(gathered);
  for (std::int64_t i = 0; i < n; ++i) {
    float want = 0.0f;
    for (int r = 0; r < p; ++r) want += value(r, i);
    ASSERT_EQ(all.ptr<float>()[i], want) << i;
  }

  SelfCommunicator self;
  StagedCommunicator one(self, *dev.device_memory());
  const Buffer copy = dev.alloc(DType::kF32, Shape{n});
  one.all_gather(in.tensor(), copy.tensor());
  EXPECT_EQ(to_host(copy).ptr<float>()[n - 1], to_host(in).ptr<float>()[n - 1]);
  EXPECT_THROW(self.all_gather(in.tensor(), copy.tensor()), InternalError);
  EXPECT_THROW(world().all_reduce(x.tensor(), ReduceOp::kSum), InternalError);
}

TEST(ProcessGrid, TensorGroupsAreContiguousDataGroupsStrided) {
  const int p = world().size();
  for (int t = 1; t <= p; ++t) {
    if (p % t != 0) continue;
    // A fresh world communicator per layout (the grid owns it).
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    ProcessGrid grid(std::make_unique<MpiCommunicator>(dup), t, p / t);
    const int w = world().rank();
    EXPECT_EQ(grid.tp_size(), t);
    EXPECT_EQ(grid.dp_size(), p / t);
    EXPECT_EQ(grid.tp_rank(), w % t);
    EXPECT_EQ(grid.dp_rank(), w / t);
    // Sum of world ranks in my TP group: ranks d*t .. d*t + t-1.
    const int d = w / t;
    EXPECT_EQ(grid.tp().all_reduce_sum(static_cast<double>(w)), t * d * t + t * (t - 1) / 2.0);
    // Sum over my DP group: ranks (w%t) + k*t.
    const int q = p / t;
    EXPECT_EQ(grid.dp().all_reduce_sum(static_cast<double>(w)), q * (w % t) + t * q * (q - 1) / 2.0);
  }
}

}  // namespace
}  // namespace tailor::comm
