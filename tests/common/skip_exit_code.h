// The exit code that tells CTest a test binary skipped all of its tests (SKIP_RETURN_CODE).
#pragma once

#include <gtest/gtest.h>

namespace tailor::testing {

inline constexpr int kSkipExitCode = 77;

// RUN_ALL_TESTS()'s result, turned into kSkipExitCode when nothing failed, nothing passed and at
// least one test was skipped. A binary that ran no test at all (a filter that matches nothing,
// or test discovery) keeps its code.
inline int exit_code(int rc, const ::testing::UnitTest& unit) {
  if (rc == 0 && unit.failed_test_count() == 0 && unit.successful_test_count() == 0 &&
      unit.skipped_test_count() > 0)
    return kSkipExitCode;
  return rc;
}

}  // namespace tailor::testing
