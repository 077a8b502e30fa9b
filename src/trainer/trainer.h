// The training loop: one optimizer step per global batch of `train.global_batch` sequences,
// split into micro-batches whose gradients accumulate; the loss is the mean over every
// loss-carrying token of the global batch (gradients averaged by token count, not by
// micro-batch). Then global-norm clipping, the optimizer update, a progress line and a
// metrics.jsonl record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"

namespace tailor::trainer {

// A parameter shard as it was at the end of training (tests compare layouts with these).
struct ParameterValues {
  std::string name;
  Shape shape, global_shape;
  int shard_dim = -1;
  std::int64_t shard_offset = 0;
  std::vector<double> values;
  std::vector<double> gradient;  // the last step's gradient as the optimizer received it (after
                                 // the data-parallel reduction); empty for a frozen parameter
};

struct TrainOptions {
  bool keep_parameters = false;      // fill TrainSummary::parameters (values and gradients)
  std::int64_t dp_bucket_elements = 0;  // data-parallel reduction bucket (0: the default, 4M)
  bool overwrite = false;            // a fresh run may replace an earlier run's files (--overwrite)
};

struct TrainSummary {
  std::string run_dir;
  std::int64_t start_step = 0;       // > 0 when resumed from a checkpoint
  std::int64_t steps = 0;            // the step reached
  std::int64_t skipped_steps = 0;    // updates skipped for a non-finite loss or gradient
  bool stopped = false;              // stopped on request after saving (exit code 3)
  bool stopped_early = false;        // train.early_stopping_patience ended the run (exit code 0)
  std::int64_t best_step = 0;        // checkpoint.keep_best: the best evaluation's step (0: none)
  double best_value = 0.0;           // and its metric
  std::vector<double> losses;        // per step run by this call
  double eval_loss = 0.0;            // mean NLL on the validation data (0 when there is none)
  double unigram_entropy = 0.0;      // of the training tokens, nats (a floor for a unigram model)
  std::vector<ParameterValues> parameters;  // this rank's shards, when asked for
  std::int64_t parameter_numel = 0;         // elements held by this rank
  std::int64_t optimizer_state_numel = 0;   // optimizer state elements held by this rank
};

// Runs a whole training job on the ranks of `world` (nullptr: this process alone), split into
// parallel.tensor x parallel.data. Bad data or a layout that does not fit is a UserError (exit 2)
// raised before the run directory is touched. Only world rank 0 writes the run directory.
TrainSummary train(const config::ExperimentConfig& config,
                   std::unique_ptr<comm::Communicator> world = nullptr,
                   const TrainOptions& options = {});

}  // namespace tailor::trainer
