// One training job as an object with named stages, run in this order by run():
//   build_data      tokenizer, tokenized caches, the validation split, packing, the data order
//                   (bad data is a UserError here, before anything is written)
//   resolve_length  train.epochs into train.steps
//   build_model     process grid, backend, the model with its PEFT methods, optimizer, schedule
//   resume          from train.resume, verified and checked against the config
//   open_run_dir    world rank 0: config.resolved.yaml, metrics.jsonl, tb/ (truncated on resume)
//   loop            step, then evaluate and checkpoint on their cadence, until done or stopped
//   evaluate        the objective's dev score on the validation sequences
//   export_final    the final model as a Hugging Face directory (world rank 0)
// Stages keep their results in members, so a stage reads what the earlier ones built. Internal
// to the trainer module: the public entry point is train() (trainer.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "checkpoint/training_checkpoint.h"
#include "comm/process_grid.h"
#include "data/data_order.h"
#include "data/packing.h"
#include "data/token_cache.h"
#include "data/tokenizer.h"
#include "eval/generation_prompt.h"
#include "objective/objective.h"
#include "objective/reference.h"
#include "optim/data_parallel.h"
#include "optim/schedule.h"
#include "trainer/checkpointing.h"
#include "trainer/device.h"
#include "trainer/metrics_log.h"
#include "trainer/model_builder.h"
#include "trainer/run_support.h"
#include "trainer/tensorboard.h"
#include "trainer/trainer.h"
#include "trainer/watchdog.h"

namespace tailor::trainer {

class TrainingRun {
 public:
  TrainingRun(const config::ExperimentConfig& config, std::unique_ptr<comm::Communicator> world,
              const TrainOptions& options);
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  TrainSummary run();

 private:
  void build_data();
  // train.epochs into train.steps, now that the sequences are counted; warns when the data is
  // smaller than one global batch.
  void resolve_length();
  void build_model();
  void resume();
  void open_run_dir();
  void log_setup() const;
  void loop();
  // One optimizer step (0-based); returns whether a stop was requested.
  bool step(std::int64_t step);
  // The dev loss and the generation metrics of train.eval_metrics (metrics.jsonl, TensorBoard,
  // the log), then track_best; returns the loss.
  double evaluate(std::int64_t at_step);
  // train.eval_metrics of greedy answers to the dev prompts, by name, as world rank 0 found them.
  std::vector<std::pair<std::string, double>> generation_scores();
  // checkpoint.keep_best and early stopping: is this evaluation the best so far (best_now_), and
  // has the metric not improved for train.early_stopping_patience evaluations.
  void track_best(std::int64_t at_step, double loss,
                  const std::vector<std::pair<std::string, double>>& scores);
  // After step `step` (0-based): a checkpoint when one is due (or a stop was requested).
  void checkpoint(std::int64_t step, bool stop);
  void finish_save();
  void export_final();
  // DPO's reference values (objective.reference): adapters off, a frozen copy, or the table
  // precomputed (or read back) here, while the policy still holds the starting weights.
  std::unique_ptr<objective::ReferenceSource> reference_source(comm::Communicator& tp_comm);
  void collect_parameters();

  // ---- inputs ----
  config::ExperimentConfig cfg_;
  TrainOptions options_;
  Clock::time_point t_start_;
  std::unique_ptr<comm::Communicator> world_;  // until the grid takes it (build_model)
  bool writer_ = false;                         // world rank 0 writes the run directory
  ModelSetup setup_;                            // the model's definition (model.path or keys)
  // ---- build_data ----
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::optional<data::CachedCorpus> cached_;
  data::TokenizedCorpus train_part_;            // data.valid_fraction: what stays for training
  std::optional<data::CachedCorpus> valid_cached_;
  std::optional<data::TokenizedCorpus> valid_corpus_;
  data::CorpusView corpus_;
  std::optional<data::PackedSequences> packed_, valid_packed_;
  std::optional<data::DataOrder> order_;
  std::vector<eval::GenerationPrompt> dev_prompts_;  // train.eval_metrics (built with the model)
  // ---- build_model ----
  std::unique_ptr<comm::ProcessGrid> grid_;
  std::unique_ptr<backend::Ops> ops_;
  DType dtype_ = DType::kF32;
  std::string attention_line_;  // "attention: ..." (select_attention), logged at start
  DeviceComms device_comms_;
  std::unique_ptr<model::Transformer> model_;
  std::unique_ptr<model::Transformer> reference_;  // dpo, reference: model without PEFT: the
                                                  // frozen starting model
  std::unique_ptr<optim::DataParallelOptimizer> optimizer_;
  optim::ScheduleSpec schedule_;
  std::unique_ptr<objective::Objective> objective_;
  // ---- resume ----
  CheckpointContext ckpt_;
  checkpoint::RankState run_state_;
  bool continuing_run_dir_ = false;
  std::int64_t start_step_ = 0;
  // ---- open_run_dir and the loop ----
  TrainSummary summary_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::vector<std::int64_t> mine_;              // this DP rank's micro-batches of a global batch
  std::vector<MicroBatch> mbs_;
  std::vector<const model::Batch*> step_batches_;
  Clock::time_point t_loop_;
  FaultHooks faults_;
  std::function<void(std::int64_t)> overlap_;  // DP bucket reduction during the last backward
  std::unique_ptr<Watchdog> watchdog_;
  checkpoint::PendingSave pending_save_;        // a checkpoint committing in the background
  std::int64_t last_eval_step_ = -1;            // the step of the last evaluation
  bool best_now_ = false;                       // that evaluation is the best so far: save it
};

}  // namespace tailor::trainer
