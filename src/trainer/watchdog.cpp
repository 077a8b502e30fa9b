#include "trainer/watchdog.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/logging.h"

namespace tailor::trainer {

Watchdog::Watchdog(double timeout_s, int rank) : timeout_s_(timeout_s), rank_(rank) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::arm(std::string phase) {
  if (timeout_s_ <= 0) return;
  {
    std::lock_guard g(mu_);
    armed_ = true;
    ++generation_;
    phase_ = std::move(phase);
  }
  cv_.notify_all();
}

void Watchdog::disarm() {
  if (timeout_s_ <= 0) return;
  {
    std::lock_guard g(mu_);
    armed_ = false;
    ++generation_;
  }
  cv_.notify_all();
}

void Watchdog::run() {
  std::unique_lock lk(mu_);
  const auto timeout = std::chrono::duration<double>(timeout_s_);
  while (!stop_) {
    if (!armed_) {
      cv_.wait(lk, [&] { return stop_ || armed_; });
      continue;
    }
    const std::uint64_t gen = generation_;
    if (cv_.wait_for(lk, timeout, [&] { return stop_ || generation_ != gen; })) continue;
    // The same armed phase outlived the timeout.
    log::error("[rank {}] watchdog: no progress for {:.0f} s in {}; the other ranks are probably "
               "stuck or gone. Ending the job (runtime.watchdog_s sets the limit).",
               rank_, timeout_s_, phase_);
    std::fflush(nullptr);
    std::_Exit(1);
  }
}

}  // namespace tailor::trainer
