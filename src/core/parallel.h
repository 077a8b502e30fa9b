// A small fixed-size thread pool with static partitioning.
//
// Determinism rule of the CPU backend: work is split by index ranges that depend only on the
// problem size and a fixed block size, never on the number of threads; a reduction computes one
// partial per fixed block and sums the partials in block order. So any thread count gives
// bit-identical results. Workers sleep on a condition variable between jobs (no spinning that
// would steal the cores OpenBLAS is about to use).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tailor {

class ThreadPool {
 public:
  // threads <= 0 means std::thread::hardware_concurrency(). RuntimeError when the system cannot
  // start that many threads (every thread started is joined first).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(chunk) for chunk in [0, chunks), spread over the pool; the caller's thread works too.
  // Returns when all chunks are done. Exceptions thrown by fn are rethrown here (the first one).
  void run(std::int64_t chunks, const std::function<void(std::int64_t)>& fn);

  // Calls fn(begin, end) over [0, n) in blocks of `block` indices (the last may be shorter).
  void parallel_for(std::int64_t n, std::int64_t block,
                    const std::function<void(std::int64_t, std::int64_t)>& fn);

 private:
  void worker_loop();
  void drain();
  void shutdown() noexcept;  // stops and joins the workers

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::int64_t)>* job_ = nullptr;
  std::int64_t chunks_ = 0;
  std::int64_t next_ = 0;
  std::int64_t finished_ = 0;
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace tailor
