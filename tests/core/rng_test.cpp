// Philox4x32-10 against the published known-answer vectors (Random123's kat_vectors), and the
// properties the rest of Tailor relies on: values depend only on (seed, stream, index).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"

namespace tailor {
namespace {

TEST(Philox, KnownAnswerZero) {
  const Philox4x32 r = philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerOnes) {
  const Philox4x32 r =
      philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(r[0], 0x408f276du);
  EXPECT_EQ(r[1], 0x41c83b0eu);
  EXPECT_EQ(r[2], 0xa20bc7c6u);
  EXPECT_EQ(r[3], 0x6d5451fdu);
}

TEST(Philox, KnownAnswerPi) {
  const Philox4x32 r = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                  {0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(r[0], 0xd16cfe09u);
  EXPECT_EQ(r[1], 0x94fdccebu);
  EXPECT_EQ(r[2], 0x5001e420u);
  EXPECT_EQ(r[3], 0x24126ea1u);
}

TEST(CounterRng, StreamsAndSeedsDiffer) {
  CounterRng a(1, 0), b(1, 1), c(2, 0);
  int same_ab = 0, same_ac = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    same_ab += a.bits(i) == b.bits(i);
    same_ac += a.bits(i) == c.bits(i);
  }
  EXPECT_LE(same_ab, 1);
  EXPECT_LE(same_ac, 1);
}

TEST(CounterRng, UniformAndNormalMoments) {
  CounterRng r(42, stream_id("test"));
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform(static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    su2 += u * u;
    const double z = r.normal(static_cast<std::uint64_t>(i));
    ASSERT_TRUE(std::isfinite(z));
    sn += z;
    sn2 += z * z;
  }
  // Standard errors: uniform mean 0.29/sqrt(n) ~ 6.5e-4, normal mean 1/sqrt(n) ~ 2.2e-3.
  EXPECT_NEAR(su / n, 0.5, 4e-3);
  EXPECT_NEAR(su2 / n - (su / n) * (su / n), 1.0 / 12.0, 2e-3);
  EXPECT_NEAR(sn / n, 0.0, 1.2e-2);
  EXPECT_NEAR(sn2 / n, 1.0, 1.5e-2);
}

TEST(CounterRng, BelowIsInRangeAndCoversIt) {
  CounterRng r(7, 3);
  std::set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const std::uint64_t x = r.below(i, 10);
    ASSERT_LT(x, 10u);
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(CounterRng, IndependentOfThreadCountAndOrder) {
  const CounterRng r(123, stream_id("model.layers.0.mlp.up_proj.weight"));
  const std::int64_t n = 10007;
  std::vector<double> serial(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) serial[static_cast<std::size_t>(i)] = r.normal(static_cast<std::uint64_t>(i));
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<double> par(static_cast<std::size_t>(n));
    pool.parallel_for(n, 97, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = e - 1; i >= b; --i) par[static_cast<std::size_t>(i)] = r.normal(static_cast<std::uint64_t>(i));
    });
    EXPECT_EQ(par, serial) << threads << " threads";
  }
}

TEST(StreamId, StableFnv1a) {
  // FNV-1a 64 of "" and "a" (published test values).
  EXPECT_EQ(stream_id(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(stream_id("a"), 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace tailor
