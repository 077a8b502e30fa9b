// The progress line printed every `train.log_every` steps:
//   step 40/300 | loss 2.1834 | lr 2.94e-03 | grad 0.812 | 41.2k tok/s | 0:12 elapsed | ETA 1:18
// and the one of data preparation.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tailor::trainer {

// "1:05", "12:00:03" for seconds; "--" when negative or not finite.
[[nodiscard]] std::string format_duration(double seconds);
// "950", "41.2k", "1.25M".
[[nodiscard]] std::string format_count(double value);

[[nodiscard]] std::string progress_line(std::int64_t step, std::int64_t total, double loss,
                                        double lr, double grad_norm, double tokens_per_s,
                                        double elapsed_s, double eta_s);

// An objective's statistics for the progress line (preference objectives):
//   " | acc 0.750 margin 0.123 | logps -12.3/-15.6"; "" when there are none.
[[nodiscard]] std::string objective_progress(
    const std::vector<std::pair<std::string, double>>& metrics);

// The live line of data preparation (`tailor prepare`, or `tailor train` building its cache):
//   data: 41% | 12.3k records read, 1.2k tokenized | 164.2/400.0 MB | 35.1 MB/s | ETA 0:07
// `fraction` of the work is done after `elapsed_s`; MB done is fraction * mb_total. Records are
// counted as they are read (the first half of the work, for JSONL) and as they are tokenized.
[[nodiscard]] std::string prepare_progress_line(double fraction, std::int64_t records_read,
                                                std::int64_t records_tokenized, double mb_total,
                                                double elapsed_s);

// The progress line of `tailor generate --prompts` after `done` of `total` records:
//   generate: 40/100 prompts | 5.1k tokens | 212.4 tok/s | 0:24 elapsed | ETA 0:36
[[nodiscard]] std::string generate_progress_line(std::int64_t done, std::int64_t total,
                                                 std::int64_t tokens, double elapsed_s);

// When to print it: after a batch that completes another tenth of the records (so a log gets at
// most ten lines), never after the last (the summary line reports the end).
class GenerateProgressPolicy {
 public:
  [[nodiscard]] bool should_print(std::int64_t done, std::int64_t total);

 private:
  std::int64_t last_tenth_ = 0;
};

// When to print that line: on a terminal, redrawn in place at most every 0.25 s; otherwise (a log
// file) once each time another tenth of the work is done, so logs stay readable. Nothing in the
// first 0.5 s: quick preparations print only their summary line.
class PrepareProgressPolicy {
 public:
  explicit PrepareProgressPolicy(bool terminal) : terminal_(terminal) {}
  // Whether to print now; remembers what was printed.
  [[nodiscard]] bool should_print(double fraction, double elapsed_s);
  [[nodiscard]] bool terminal() const noexcept { return terminal_; }
  [[nodiscard]] bool printed() const noexcept { return printed_; }

 private:
  bool terminal_;
  bool printed_ = false;
  double last_s_ = 0.0;  // terminal: when it was last drawn
  int last_tenth_ = 0;   // log: the last tenth printed
};

}  // namespace tailor::trainer
