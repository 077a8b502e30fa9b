// Rank-aware logging: info lines from rank 0 only, warnings and errors from every rank with the
// rank named when the job has several.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "core/logging.h"

namespace tailor::log {
namespace {

std::string capture(const LogConfig& base, void (*emit)()) {
  std::FILE* f = std::tmpfile();
  LogConfig c = base;
  c.sink = f;
  const LogConfig saved = logging_config();
  configure_logging(c);
  emit();
  configure_logging(saved);
  std::rewind(f);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
  std::fclose(f);
  return out;
}

void emit_all() {
  debug("d {}", 1);
  info("i {}", 2);
  warn("w {}", 3);
  error("e {}", 4);
}

TEST(Logging, SingleRankPrintsInfoAndAbove) {
  EXPECT_EQ(capture({0, 1, Level::kInfo, nullptr}, emit_all), "i 2\nwarning: w 3\nerror: e 4\n");
}

TEST(Logging, DebugLevelShowsDebug) {
  EXPECT_EQ(capture({0, 1, Level::kDebug, nullptr}, emit_all),
            "debug: d 1\ni 2\nwarning: w 3\nerror: e 4\n");
}

TEST(Logging, OtherRanksOnlyWarnAndErrorWithRankPrefix) {
  EXPECT_EQ(capture({3, 4, Level::kInfo, nullptr}, emit_all),
            "[rank 3] warning: w 3\n[rank 3] error: e 4\n");
  EXPECT_EQ(capture({0, 4, Level::kInfo, nullptr}, emit_all),
            "[rank 0] i 2\n[rank 0] warning: w 3\n[rank 0] error: e 4\n");
}

TEST(Logging, LevelsParseAndOffSilences) {
  Level l;
  EXPECT_TRUE(parse_level("warn", l));
  EXPECT_EQ(l, Level::kWarn);
  EXPECT_FALSE(parse_level("verbose", l));
  EXPECT_EQ(capture({0, 1, Level::kOff, nullptr}, emit_all), "");
}

}  // namespace
}  // namespace tailor::log
