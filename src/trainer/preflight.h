// The checks of an experiment that need no computation, run by `tailor validate` and again at the
// start of `tailor train`, so that validate passes exactly the configs that train starts on:
//   - the layout for the job's ranks (parallel.*, train.global_batch / micro_batch);
//   - model.path: config.json parses and is supported, every weight the model needs is present in
//     the safetensors headers with its shape and dtype, no file is truncated or unexpected;
//   - the tokenizer files parse and fit the model's vocabulary; data.seq_len fits the positions;
//   - the few-shot examples file parses (the config itself checks that data files exist);
//   - the output directory: earlier checkpoints under train.resume: never, an explicit
//     train.resume checkpoint that is missing, a finished run's files with nothing to resume
//     (refused unless --overwrite; a run interrupted before its first checkpoint starts again).
// All problems are reported at once (UserErrors, one line each, exit 2).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "model/model_spec.h"

namespace tailor::trainer {

struct PreflightOptions {
  int world_size = 1;        // the job's ranks (validate: --ranks, or the mpirun job's)
  bool overwrite = false;    // train --overwrite: an earlier run in output.dir may be replaced
};

// Every problem found, each a complete line `where: reason` (empty: none).
[[nodiscard]] std::vector<std::string> preflight_problems(const config::ExperimentConfig& cfg,
                                                          const PreflightOptions& options);

// Throws UserErrors listing preflight_problems(), if any.
void preflight(const config::ExperimentConfig& cfg, const PreflightOptions& options);

// data.seq_len against the model's positions (model.path's config.json for a pretrained model:
// past it, the model has never seen the positions). A sliding attention window bounds nothing:
// the attention ops mask it.
void check_sequence_length(const config::ExperimentConfig& cfg, const model::ModelSpec& spec);

// The files of a finished run (one that wrote export/) that a fresh run in output.dir would
// replace (names relative to it: "metrics.jsonl", "export/", ...); empty when there is none.
[[nodiscard]] std::vector<std::string> finished_run_files(const std::string& output_dir);

// A run starting from step 0 in output_dir: refused when a finished run's files are there, unless
// `overwrite` (train --overwrite).
void check_fresh_start(const std::string& output_dir, bool overwrite);

}  // namespace tailor::trainer
