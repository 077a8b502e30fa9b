// StopSignals (src/trainer/stop_signals.h), in a forked child so the test process keeps its own
// handlers: the first SIGUSR1, SIGTERM or SIGINT only sets the flag (and names the signal), the second
// ends the process at once with exit code 1 and a line saying it did not save; the destructor
// restores the previous handlers.
#include <gtest/gtest.h>

#include <csignal>

#include <sys/wait.h>
#include <unistd.h>

#include "trainer/stop_signals.h"

namespace tailor::trainer {
namespace {

// Runs body() in a child; returns its wait status.
template <typename Body>
int in_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

void expect_first_requests_second_exits(int sig) {
  const int status = in_child([sig] {
    StopSignals signals;
    if (StopSignals::requested()) return 10;
    ::raise(sig);
    if (!StopSignals::requested() || StopSignals::signal_number() != sig) return 11;
    ::raise(sig);  // exits 1 inside the handler
    return 12;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 1) << "10: requested before any signal, 11: first signal not "
                                       "recorded, 12: second signal did not exit";
}

TEST(StopSignals, FirstSigusr1RequestsAStopSecondExitsAtOnce) {
  expect_first_requests_second_exits(SIGUSR1);
}

TEST(StopSignals, SigtermBehavesTheSame) { expect_first_requests_second_exits(SIGTERM); }

// Ctrl-C at a terminal: the first saves and exits 3 like SIGTERM, the second exits at once.
TEST(StopSignals, SigintBehavesTheSame) { expect_first_requests_second_exits(SIGINT); }

TEST(StopSignals, DestructorRestoresThePreviousHandler) {
  const int status = in_child([] {
    { StopSignals signals; }
    ::raise(SIGUSR1);  // default action again: terminated by the signal
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGUSR1);
}

}  // namespace
}  // namespace tailor::trainer
