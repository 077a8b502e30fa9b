#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "trainer/metrics_log.h"
#include "data/corpus_builder.h"
#include "data/jsonl_dataset.h"
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

TEST(Progress, PrepareLine) {
  EXPECT_EQ(prepare_progress_line(0.41, 12345, 1234, 400.0, 4.6752),
            "data: 41% | 12.3k records read, 1.2k tokenized | 164.0/400.0 MB | 35.1 MB/s | ETA 0:07");
  EXPECT_EQ(prepare_progress_line(0.0, 0, 0, 1.5, 0.7),
            "data: 0% | 0 records read, 0 tokenized | 0.0/1.5 MB | 0.0 MB/s | ETA --");
  EXPECT_EQ(prepare_progress_line(0.999, 2'300'000, 2'299'000, 8000, 3661),  // never 100%
            "data: 99% | 2.30M records read, 2.30M tokenized | 7992.0/8000.0 MB | 2.2 MB/s | ETA 0:04");
  EXPECT_EQ(prepare_progress_line(1.7, 1, 1, 2.0, 0.0),  // clamped; no rate yet
            "data: 100% | 1 records read, 1 tokenized | 2.0/2.0 MB | 0.0 MB/s | ETA 0:00");
}

// Issue 19, item 13: the first half of a JSONL build is parsing, when nothing is tokenized yet.
// The line's record count moves then too (it used to say "0 records" until tokenization began).
TEST(Progress, PrepareLineCountsRecordsWhileParsing) {
  data::BuildProgress p;
  p.bytes_total = 1000;
  p.bytes_parsed = 1000;  // parsing done, tokenization not begun: half the work
  const std::string text = "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n";
  (void)data::parse_jsonl(text, "d.jsonl", false, 1, nullptr, &p.records_read);
  EXPECT_EQ(p.records_read, 3);
  EXPECT_EQ(prepare_progress_line(p.fraction(), p.records_read, p.records_done, 0.001, 1.0),
            "data: 50% | 3 records read, 0 tokenized | 0.0/0.0 MB | 0.0 MB/s | ETA 0:01");
}

TEST(Progress, GenerateLine) {
  EXPECT_EQ(generate_progress_line(40, 100, 5123, 24.1),
            "generate: 40/100 prompts | 5.1k tokens | 212.6 tok/s | 0:24 elapsed | ETA 0:36");
  EXPECT_EQ(generate_progress_line(0, 8, 0, 0.0),
            "generate: 0/8 prompts | 0 tokens | 0.0 tok/s | 0:00 elapsed | ETA --");
}

TEST(Progress, GenerateLineAtEachTenthButNotTheEnd) {
  GenerateProgressPolicy p;
  std::vector<std::int64_t> printed;
  for (std::int64_t done = 3; done <= 30; done += 3)  // batches of 3 of 30 records
    if (p.should_print(done, 30)) printed.push_back(done);
  EXPECT_EQ(printed, (std::vector<std::int64_t>{3, 6, 9, 12, 15, 18, 21, 24, 27}));
  GenerateProgressPolicy q;
  printed.clear();
  for (std::int64_t done = 8; done <= 1000; done += 8)
    if (q.should_print(std::min<std::int64_t>(done, 1000), 1000)) printed.push_back(done);
  EXPECT_EQ(printed.size(), 9u);  // 10%, 20%, ... 90%
  EXPECT_EQ(printed.front(), 104);
}

TEST(Progress, PrepareLineOnATerminalAtMostFourTimesASecond) {
  PrepareProgressPolicy p(/*terminal=*/true);
  EXPECT_FALSE(p.should_print(0.2, 0.3));  // quiet at first
  EXPECT_TRUE(p.should_print(0.3, 0.5));
  EXPECT_FALSE(p.should_print(0.31, 0.6));
  EXPECT_FALSE(p.should_print(0.32, 0.74));
  EXPECT_TRUE(p.should_print(0.33, 0.75));
  EXPECT_TRUE(p.should_print(0.33, 1.0));  // redrawn even without progress (rate, ETA change)
  EXPECT_FALSE(p.should_print(1.0, 2.0));  // the summary line reports the end
  EXPECT_TRUE(p.printed());
}

TEST(Progress, PrepareLineInALogEveryTenth) {
  PrepareProgressPolicy p(/*terminal=*/false);
  std::vector<double> printed;
  for (int i = 0; i <= 1000; ++i) {
    const double f = i / 1000.0;
    if (p.should_print(f, 0.5 + 10 * f)) printed.push_back(f);
  }
  EXPECT_EQ(printed, (std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}));
  PrepareProgressPolicy quick(false);
  for (int i = 0; i <= 10; ++i) EXPECT_FALSE(quick.should_print(i / 10.0, i * 0.04));
  EXPECT_FALSE(quick.printed());
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
