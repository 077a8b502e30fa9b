// main() for tests that run under mpiexec: initialises MPI, silences the GoogleTest printer on
// every rank but 0 (failures on any rank still fail the job through the exit code), makes a
// world communicator available to the tests, and exits 77 (skipped) when every rank skipped all
// its tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.h"
#include "core/logging.h"
#include "mpi_test_env.h"
#include "skip_exit_code.h"

namespace tailor::testing {
comm::Communicator* g_world = nullptr;
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  tailor::comm::MpiRuntime mpi(&argc, &argv);
  auto world = mpi.world();
  tailor::testing::g_world = world.get();
  // Warnings and errors only: N ranks of progress lines would drown the test output.
  tailor::log::configure_logging({world->rank(), world->size(), tailor::log::Level::kWarn, stderr});
  // TAILOR_TEST_ALL_RANKS=1 keeps every rank's printer (to see a failure on another rank).
  const char* all = std::getenv("TAILOR_TEST_ALL_RANKS");
  if (world->rank() != 0 && (all == nullptr || std::string(all) != "1")) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  // Every rank must agree: the job fails if any rank failed, and is skipped (exit 77, CTest's
  // SKIP_RETURN_CODE) only when every rank skipped all it ran.
  const int mine = tailor::testing::exit_code(rc, *::testing::UnitTest::GetInstance());
  if (world->any(mine != 0 && mine != tailor::testing::kSkipExitCode))
    rc = 1;
  else
    rc = world->any(mine != tailor::testing::kSkipExitCode) ? 0 : tailor::testing::kSkipExitCode;
  world.reset();
  return rc;
}
