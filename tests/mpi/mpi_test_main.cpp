// main() for tests that run under mpiexec: initialises MPI, silences the GoogleTest printer on
// every rank but 0 (failures on any rank still fail the job through the exit code), and makes a
// world communicator available to the tests.
#include <gtest/gtest.h>

#include "comm/mpi_communicator.h"
#include "mpi_test_env.h"

namespace tailor::testing {
comm::Communicator* g_world = nullptr;
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  tailor::comm::MpiRuntime mpi(&argc, &argv);
  auto world = mpi.world();
  tailor::testing::g_world = world.get();
  if (world->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  // Every rank must agree: the job fails if any rank failed.
  rc = world->any(rc != 0) ? 1 : 0;
  world.reset();
  return rc;
}
