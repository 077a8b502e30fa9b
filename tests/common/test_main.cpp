// main() of every GoogleTest binary: runs the tests and exits with kSkipExitCode (77) when every
// test that ran was skipped and none failed, so that CTest (SKIP_RETURN_CODE 77, set by
// tailor_test in tests/CMakeLists.txt) reports such a binary as skipped rather than passed. This
// matters for binaries that run as one CTest test (several labels, or under mpiexec); a binary
// whose tests were discovered one by one is also caught by CTest's "[  SKIPPED ]" expression.
#include <gtest/gtest.h>

#include "skip_exit_code.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  return tailor::testing::exit_code(rc, *::testing::UnitTest::GetInstance());
}
