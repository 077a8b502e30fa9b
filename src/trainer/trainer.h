// The training loop: one optimizer step per global batch of `train.global_batch` sequences,
// split into micro-batches whose gradients accumulate; the loss is the mean over every
// loss-carrying token of the global batch (gradients averaged by token count, not by
// micro-batch). Then global-norm clipping, the optimizer update, a progress line and a
// metrics.jsonl record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace tailor::trainer {

struct TrainSummary {
  std::string run_dir;
  std::int64_t steps = 0;
  std::vector<double> losses;        // per step
  double unigram_entropy = 0.0;      // of the training tokens, nats (a floor for a unigram model)
};

// Runs a whole training job. Bad data is a UserError (exit 2) raised before the run directory
// is touched.
TrainSummary train(const config::ExperimentConfig& config);

}  // namespace tailor::trainer
