#include <gtest/gtest.h>

#include "core/error.h"

namespace tailor {
namespace {

TEST(Errors, UserErrorFormatsWhereAndReason) {
  try {
    TAILOR_CHECK_USER(1 + 1 == 3, "data.txt:17", "line is not valid UTF-8 ({} bytes)", 4);
    FAIL() << "no throw";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "data.txt:17: line is not valid UTF-8 (4 bytes)");
    EXPECT_EQ(e.where(), "data.txt:17");
    EXPECT_EQ(e.exit_code(), ExitCode::kUserError);
  }
}

TEST(Errors, AssertIsInternal) {
  try {
    TAILOR_ASSERT(2 < 1, "value {}", 7);
    FAIL() << "no throw";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("value 7"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("2 < 1"), std::string::npos);
    EXPECT_EQ(e.exit_code(), ExitCode::kRuntime);
  }
}

TEST(Errors, PassingChecksDoNotThrow) {
  EXPECT_NO_THROW(TAILOR_ASSERT(true, "x"));
  EXPECT_NO_THROW(TAILOR_CHECK_USER(true, "w", "x"));
}

}  // namespace
}  // namespace tailor
