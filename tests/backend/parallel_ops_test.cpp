// The vocab-parallel ops against their single-shard counterparts: embedding lookups of T shards
// summed equal the full lookup, and the three-phase vocab-parallel cross-entropy (with the
// all-reduces done by hand here) equals the fused cross_entropy op.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops_test_util.h"

namespace tailor::backend::test {
namespace {

using I64 = std::int64_t;

class VocabParallel : public ::testing::TestWithParam<std::tuple<DType, int>> {};

TEST_P(VocabParallel, EmbeddingShardsSumToTheFullLookup) {
  const auto [dt, shards] = GetParam();
  CpuOps& ops = shared_ops();
  const I64 vocab = 24, d = 5, tokens = 17, rows = vocab / shards;
  HostTensor table(dt, Shape{vocab, d}), ids(DType::kI32, Shape{tokens});
  table.normal(1, 1);
  ids.integers(1, 2, 0, vocab);
  HostTensor full(dt, Shape{tokens, d});
  ops.embedding_forward(table.t(), ids.t(), 0, full.t());
  std::vector<double> sum(static_cast<std::size_t>(tokens * d), 0.0);
  HostTensor dfull(dt, Shape{vocab, d});
  ops.embedding_backward(dfull.t(), ids.t(), 0, full.t());
  for (int s = 0; s < shards; ++s) {
    const Tensor shard = table.t().row_slice(s * rows, (s + 1) * rows);
    HostTensor out(dt, Shape{tokens, d});
    ops.embedding_forward(shard, ids.t(), s * rows, out.t());
    for (I64 i = 0; i < tokens * d; ++i) sum[static_cast<std::size_t>(i)] += out.get(i);
    HostTensor dshard(dt, Shape{rows, d});
    ops.embedding_backward(dshard.t(), ids.t(), s * rows, full.t());
    for (I64 i = 0; i < rows * d; ++i) ASSERT_EQ(dshard.get(i), dfull.get(s * rows * d + i));
  }
  // Exactly one shard contributes each row: the sum is exact.
  EXPECT_EQ(sum, full.values());
}

TEST_P(VocabParallel, CrossEntropyPhasesEqualTheFusedOp) {
  const auto [dt, shards] = GetParam();
  CpuOps& ops = shared_ops();
  const I64 n = 9, valid = 21, padded = 24, local = padded / shards;
  HostTensor logits(dt, Shape{n, padded}), targets(DType::kI32, Shape{n});
  logits.normal(3, 1, 3.0);
  targets.integers(3, 2, 0, valid);
  targets.set(4, kIgnoreIndex);
  HostTensor want_loss(dt, Shape{n}), want_grad(dt, Shape{n, padded});
  ops.cross_entropy(logits.t(), targets.t(), valid, want_loss.t(), want_grad.t(), 0.25);

  // Phase 1 per shard, then "all-reduce MAX" by hand.
  std::vector<double> gmax(n, -std::numeric_limits<double>::infinity());
  std::vector<HostTensor> parts;
  for (int s = 0; s < shards; ++s) {
    HostTensor part(dt, Shape{n, local});
    for (I64 r = 0; r < n; ++r)
      for (I64 j = 0; j < local; ++j) part.set(r * local + j, logits.get(r * padded + s * local + j));
    parts.push_back(std::move(part));
  }
  auto valid_cols = [&](int s) { return std::clamp<I64>(valid - s * local, 0, local); };
  for (int s = 0; s < shards; ++s) {
    HostTensor m(dt, Shape{n});
    ops.ce_local_max(parts[static_cast<std::size_t>(s)].t(), valid_cols(s), m.t());
    for (I64 r = 0; r < n; ++r) gmax[static_cast<std::size_t>(r)] = std::max(gmax[static_cast<std::size_t>(r)], m.get(r));
  }
  HostTensor row_max(dt, Shape{n});
  row_max.set_values(gmax);
  // Phase 2 per shard, then "all-reduce SUM".
  std::vector<double> stats(static_cast<std::size_t>(2 * n), 0.0);
  for (int s = 0; s < shards; ++s) {
    HostTensor st(dt, Shape{2, n});
    ops.ce_local_sums(parts[static_cast<std::size_t>(s)].t(), targets.t(), s * local, valid_cols(s), row_max.t(), st.t());
    for (I64 i = 0; i < 2 * n; ++i) stats[static_cast<std::size_t>(i)] += st.get(i);
  }
  HostTensor st(dt, Shape{2, n});
  st.set_values(stats);
  // Phase 3 per shard: every shard gets the same losses and its slice of the gradient.
  const double tol = dt == DType::kF64 ? 1e-12 : 2e-5;
  for (int s = 0; s < shards; ++s) {
    HostTensor loss(dt, Shape{n});
    HostTensor& part = parts[static_cast<std::size_t>(s)];
    ops.ce_finish(part.t(), targets.t(), s * local, valid_cols(s), row_max.t(), st.t(), loss.t(), part.t(), 0.25);
    EXPECT_LE(rel_error(loss.values(), want_loss.values()), tol);
    std::vector<double> want_slice;
    for (I64 r = 0; r < n; ++r)
      for (I64 j = 0; j < local; ++j) want_slice.push_back(want_grad.get(r * padded + s * local + j));
    EXPECT_LE(rel_error(part.values(), want_slice), tol) << "shard " << s;
    EXPECT_TRUE(part.guards_ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, VocabParallel,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kF64),
                                            ::testing::Values(1, 2, 4)));

}  // namespace
}  // namespace tailor::backend::test
