// metrics.jsonl: one JSON object per logged step, flushed line by line so a crash loses at most
// the line being written. Floats are written with enough digits to round-trip, so two runs can
// be compared bit for bit.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace tailor::trainer {

struct StepRecord {
  std::int64_t step = 0;          // 1-based, counted after the optimizer update
  double loss = 0.0;              // mean token loss over the global batch
  double lr = 0.0;                // learning rate used by this step
  double grad_norm = 0.0;         // global norm before clipping
  std::int64_t tokens = 0;        // tokens processed by this step (all ranks)
  std::int64_t loss_tokens = 0;   // tokens that carried loss (preference objectives: pairs)
  // The objective's own statistics (objective.h, step_metrics: rewards_accuracy, ...), written
  // under their names after loss_tokens.
  std::vector<std::pair<std::string, double>> objective;
  double tokens_per_s = 0.0;      // timing: excluded from bitwise comparisons
  double step_time_s = 0.0;       // timing
};

class MetricsLog {
 public:
  // Truncates (creates) the file; with `append`, continues it (a resumed run).
  explicit MetricsLog(const std::string& path, bool append = false);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const StepRecord& record);
  // An evaluation record: {"step", "eval_loss", "eval_ppl", "eval_tokens"}, then "eval_<name>"
  // for each generation metric (train.eval_metrics: eval_bleu, eval_chrf, ...).
  void write_eval(std::int64_t step, double eval_loss, std::int64_t eval_tokens,
                  const std::vector<std::pair<std::string, double>>& metrics = {});
  // The JSON line for a record (without newline).
  [[nodiscard]] static std::string to_json(const StepRecord& record);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Resuming at `step`: keeps the records of steps <= step (a torn last line is dropped), atomically.
void truncate_metrics(const std::string& path, std::int64_t step);

}  // namespace tailor::trainer
