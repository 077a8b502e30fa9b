// Stopping on request (ARCHITECTURE.md, Contracts): SIGUSR1 — what Slurm's `--signal` and mpirun
// forward — SIGTERM and SIGINT (Ctrl-C) set a flag; the trainer OR-reduces it over all ranks at every step
// boundary, so every rank saves the same step and the job exits 3. A second signal to the same
// process exits at once (code 1) without saving.
#pragma once

namespace tailor::trainer {

class StopSignals {
 public:
  // Installs the handlers; the destructor restores the previous ones.
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // A stop was requested of this process (since construction).
  [[nodiscard]] static bool requested() noexcept;
  // The signal that asked (0: none).
  [[nodiscard]] static int signal_number() noexcept;
};

}  // namespace tailor::trainer
