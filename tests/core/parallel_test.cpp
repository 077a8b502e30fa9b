#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "core/parallel.h"

namespace tailor {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, 33, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, ReusableManyTimes) {
  ThreadPool pool(3);
  std::atomic<std::int64_t> total{0};
  for (int round = 0; round < 200; ++round) {
    pool.run(7, [&](std::int64_t c) { total += c; });
  }
  EXPECT_EQ(total.load(), 200 * 21);
}

TEST(ThreadPool, RethrowsWorkerException) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run(8, [](std::int64_t c) {
                 if (c == 5) throw std::runtime_error("boom");
               }),
               std::runtime_error);
  // Still usable afterwards.
  std::atomic<int> n{0};
  pool.run(4, [&](std::int64_t) { n++; });
  EXPECT_EQ(n.load(), 4);
}

TEST(ThreadPool, EmptyAndSingleChunk) {
  ThreadPool pool(2);
  int calls = 0;
  pool.run(0, [&](std::int64_t) { calls++; });
  EXPECT_EQ(calls, 0);
  pool.parallel_for(5, 100, [&](std::int64_t b, std::int64_t e) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 5);
    calls++;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace tailor
