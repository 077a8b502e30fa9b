#include "core/parallel.h"

#include <algorithm>
#include <exception>
#include <system_error>

#include "core/error.h"

namespace tailor {

ThreadPool::ThreadPool(int threads) {
  int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  workers_.reserve(static_cast<std::size_t>(n - 1));
  try {
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error& e) {
    // The system gave fewer threads than asked (a memory or process limit). The workers already
    // started wait on wake_: stop and join them before the members they use are destroyed, or the
    // unwinding destroys a condition variable still waited on (a hang in pthread_cond_destroy).
    const std::size_t started = workers_.size();
    shutdown();
    throw_runtime_error("cannot start {} CPU threads (started {}): {}; ask for fewer threads",
                        n, started + 1, e.what());
  }
}

void ThreadPool::shutdown() noexcept {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::drain() {
  // Claims chunks until none is left. Called with the mutex NOT held.
  for (;;) {
    std::int64_t chunk;
    const std::function<void(std::int64_t)>* job;
    {
      std::lock_guard lock(mutex_);
      if (job_ == nullptr || next_ >= chunks_) return;
      chunk = next_++;
      job = job_;
    }
    try {
      (*job)(chunk);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (++finished_ == chunks_) done_.notify_all();
    }
  }
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    drain();
  }
}

void ThreadPool::run(std::int64_t chunks, const std::function<void(std::int64_t)>& fn) {
  if (chunks <= 0) return;
  if (workers_.empty() || chunks == 1) {
    for (std::int64_t c = 0; c < chunks; ++c) fn(c);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    chunks_ = chunks;
    next_ = 0;
    finished_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return finished_ == chunks_; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(std::int64_t n, std::int64_t block,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  block = std::max<std::int64_t>(1, block);
  const std::int64_t chunks = (n + block - 1) / block;
  run(chunks, [&](std::int64_t c) { fn(c * block, std::min(n, (c + 1) * block)); });
}

}  // namespace tailor
