// The trainer's side of checkpoints: what this rank contributes to a save (its parameter shards,
// its optimizer slices, its counters) and how a checkpoint's tensors are loaded back into the
// model and optimizer of any TP/DP layout. The file format and the save protocol are in
// checkpoint/training_checkpoint.h; resume rules are in docs/checkpoints.md.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "checkpoint/training_checkpoint.h"
#include "comm/process_grid.h"
#include "config/config.h"
#include "model/transformer.h"
#include "optim/data_parallel.h"

namespace tailor::trainer {

struct CheckpointContext {
  const config::ExperimentConfig* cfg = nullptr;
  model::Transformer* model = nullptr;
  optim::DataParallelOptimizer* optimizer = nullptr;
  comm::ProcessGrid* grid = nullptr;
  backend::Ops* ops = nullptr;
  std::string determinism_backend;   // ops.describe()
  std::string base_identity;         // PEFT: identity of the frozen base
  std::string data_fingerprint;      // the tokenized corpus' cache key
};

// Collectively saves step `state.step` under <output.dir>/checkpoints; returns its directory.
std::string save_training_checkpoint(const CheckpointContext& ctx,
                                     const checkpoint::RankState& state);

// Loads a verified checkpoint into the model (trainable tensors only for a PEFT run, all of them
// otherwise) and the optimizer; returns the counters to continue from. UserError "dir: reason"
// when the checkpoint does not fit this run (config keys that may not change, missing tensors,
// shapes, dtypes, another base model or other data).
checkpoint::RankState load_training_checkpoint(const CheckpointContext& ctx, const std::string& dir,
                                               const checkpoint::Manifest& manifest);

// The identity of a PEFT run's frozen base: SHA-256 over the base directory's config.json and its
// safetensors headers and sizes (cheap, unlike hashing every weight), or of the seeded
// initialization of a config-defined base.
[[nodiscard]] std::string base_model_identity(const config::ExperimentConfig& cfg);

}  // namespace tailor::trainer
