// A per-rank watchdog for hangs: armed only around the collectives of a training step (not while
// loading, preparing data or saving), it ends the process when an armed phase lasts longer than
// the timeout, after logging which rank, which step and which phase it was stuck in. The exit
// (code 1, without MPI_Finalize) makes the launcher tear the whole job down, so a lost rank or a
// deadlocked collective never hangs a job until its wall-clock limit.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace tailor::trainer {

class Watchdog {
 public:
  // timeout_s <= 0: disabled (arm/disarm do nothing).
  Watchdog(double timeout_s, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts (or restarts) the clock for `phase` ("step 12: gradient reduction").
  void arm(std::string phase);
  void disarm();

 private:
  void run();
  double timeout_s_;
  int rank_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, stop_ = false;
  std::uint64_t generation_ = 0;
  std::string phase_;
  std::thread thread_;
};

}  // namespace tailor::trainer
