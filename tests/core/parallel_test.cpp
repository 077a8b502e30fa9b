#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace tailor {
namespace {

// When the system cannot start all the threads asked for (here: an address-space limit that
// leaves room for a few thread stacks), the constructor throws RuntimeError after joining the
// threads it started. It used to unwind into the destructor of a condition variable the
// started workers still waited on, and hang (issue 27, item 6). Runs in a child process with an
// alarm, so a hang shows as a failure instead of stalling the suite.
TEST(ThreadPool, ThreadsTheSystemRefusesAreAnErrorNotAHang) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(120);  // a hang ends the child with SIGALRM
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t room = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) +
                        (rlim_t{40} << 20);  // a few 8 MiB thread stacks
    const rlimit limit{room, room};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
    int code = 1;  // no error
    try {
      ThreadPool pool(1000);
    } catch (const RuntimeError& e) {
      code = std::string(e.what()).find("cannot start 1000 CPU threads") == 0 ? 0 : 2;
    } catch (...) {
      code = 2;  // another error type
    }
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status)
                                 << " (SIGALRM: the constructor hung)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: not a RuntimeError, 3: setrlimit failed";
}

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
