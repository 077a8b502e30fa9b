// main() for tests that run under mpiexec: initialises MPI, silences the GoogleTest printer on
// every rank but 0 (failures on any rank still fail the job through the exit code), and makes a
// world communicator available to the tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.h"
#include "core/logging.h"
#include "mpi_test_env.h"

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
  // Every rank must agree: the job fails if any rank failed.
  rc = world->any(rc != 0) ? 1 : 0;
  world.reset();
  return rc;
}
