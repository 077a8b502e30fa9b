#include "trainer/stop_signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace tailor::trainer {
namespace {

std::atomic<int> g_count{0};
std::atomic<int> g_signal{0};
struct sigaction g_old_usr1 {};
struct sigaction g_old_term {};
struct sigaction g_old_int {};

void on_signal(int sig) {
  g_signal.store(sig);
  if (g_count.fetch_add(1) >= 1) {
    static const char kMsg[] = "tailor: second stop signal: exiting now without saving\n";
    (void)!::write(2, kMsg, sizeof kMsg - 1);
    ::_exit(1);
  }
  static const char kMsg[] =
      "tailor: stop requested: saving a checkpoint at the end of this step, then exiting 3\n";
  (void)!::write(2, kMsg, sizeof kMsg - 1);
}

}  // namespace

StopSignals::StopSignals() {
  g_count.store(0);
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, &g_old_usr1);
  sigaction(SIGTERM, &sa, &g_old_term);
  // Ctrl-C: a user at a terminal gets what a scheduler gets, a saved checkpoint and exit 3.
  sigaction(SIGINT, &sa, &g_old_int);
}

StopSignals::~StopSignals() {
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
}

bool StopSignals::requested() noexcept { return g_count.load() > 0; }
int StopSignals::signal_number() noexcept { return g_signal.load(); }

}  // namespace tailor::trainer
