// The tensor-parallel mappings (model/tp_mappings.h) on rank-valued tensors, so the expected
// results are exact (Megatron's test_mappings.py does the same): each communicating direction
// sums (or maxes) over the group, a one-rank or absent group leaves the tensor alone.
#include <gtest/gtest.h>

#include <vector>

#include "model/tp_mappings.h"
#include "mpi_test_env.h"

namespace tailor::model {
namespace {

using tailor::testing::world;

// [3] values rank + 1, 10 (rank + 1), 100 (rank + 1).
std::vector<double> rank_values(int rank) {
  const double r = rank + 1;
  return {r, 10 * r, 100 * r};
}

backend::Tensor view(std::vector<double>& v) {
  return backend::Tensor{v.data(), DType::kF64, Shape{static_cast<std::int64_t>(v.size())}};
}

TEST(TpMappings, SumsAndMaxesOverTheGroup) {
  comm::Communicator& g = world();
  const int t = g.size();
  const double sum_r = t * (t + 1) / 2.0;  // sum of rank + 1 over the group
  using Fn = void (*)(comm::Communicator*, const backend::Tensor&);
  for (const Fn fn : {Fn{&tp::copy_to_region_backward}, Fn{&tp::reduce_from_region_forward},
                      Fn{&tp::vocab_sum}, Fn{&tp::sum_partial_gradient}}) {
    std::vector<double> v = rank_values(g.rank());
    fn(&g, view(v));
    EXPECT_EQ(v, (std::vector<double>{sum_r, 10 * sum_r, 100 * sum_r}));
  }
  std::vector<double> m = rank_values(g.rank());
  tp::vocab_max(&g, view(m));
  EXPECT_EQ(m, (std::vector<double>{1.0 * t, 10.0 * t, 100.0 * t}));
}

TEST(TpMappings, AloneOrWithoutAGroupNothingMoves) {
  const std::unique_ptr<comm::Communicator> self = world().split(world().rank(), 0);
  ASSERT_EQ(self->size(), 1);
  for (comm::Communicator* g : {self.get(), static_cast<comm::Communicator*>(nullptr)}) {
    std::vector<double> v = rank_values(world().rank());
    tp::copy_to_region_backward(g, view(v));
    tp::reduce_from_region_forward(g, view(v));
    tp::vocab_max(g, view(v));
    tp::vocab_sum(g, view(v));
    tp::sum_partial_gradient(g, view(v));
    EXPECT_EQ(v, rank_values(world().rank()));
  }
}

}  // namespace
}  // namespace tailor::model
