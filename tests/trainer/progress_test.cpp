#include <gtest/gtest.h>

#include <limits>

#include "trainer/metrics_log.h"
#include "trainer/progress.h"

namespace tailor::trainer {
namespace {

TEST(Progress, Durations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65.4), "1:05");
  EXPECT_EQ(format_duration(3600 * 12 + 3), "12:00:03");
  EXPECT_EQ(format_duration(-1), "--");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "--");
}

TEST(Progress, Counts) {
  EXPECT_EQ(format_count(950), "950");
  EXPECT_EQ(format_count(41234), "41.2k");
  EXPECT_EQ(format_count(1250000), "1.25M");
}

TEST(Progress, Line) {
  EXPECT_EQ(progress_line(40, 300, 2.18342, 2.94e-3, 0.8123, 41234, 12, 78),
            "step 40/300 | loss 2.1834 | lr 2.94e-03 | grad 0.812 | 41.2k tok/s | 0:12 elapsed | ETA 1:18");
}

TEST(MetricsLog, JsonHasContractKeysAndRoundTripDigits) {
  StepRecord r;
  r.step = 3;
  r.loss = 0.1 + 0.2;  // 0.30000000000000004: needs 17 significant digits
  r.lr = 1e-3;
  r.grad_norm = 2.5;
  const std::string j = MetricsLog::to_json(r);
  EXPECT_NE(j.find("\"step\":3"), std::string::npos) << j;
  EXPECT_NE(j.find("\"loss\":0.30000000000000004"), std::string::npos) << j;
  EXPECT_NE(j.find("\"lr\":0.001"), std::string::npos) << j;
  EXPECT_NE(j.find("\"grad_norm\":2.5"), std::string::npos) << j;
  EXPECT_NE(j.find("\"tokens_per_s\":"), std::string::npos) << j;
}

}  // namespace
}  // namespace tailor::trainer
