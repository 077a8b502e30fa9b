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
#include "data/tokenizer.h"
#include "model/transformer.h"
#include "optim/data_parallel.h"
#include "trainer/model_builder.h"

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

// Collectively writes step `state.step` under <output.dir>/checkpoints and returns the pending
// commit (fsync, hashes, manifest, rename, latest (and best, when `best`) run in the background
// while training goes on; finish() it before the next save and before exiting).
[[nodiscard]] checkpoint::PendingSave save_training_checkpoint(const CheckpointContext& ctx,
                                                               const checkpoint::RankState& state,
                                                               bool best = false);

// Loads a verified checkpoint into the model (trainable tensors only for a PEFT run, all of them
// otherwise) and the optimizer; returns the counters to continue from. UserError "dir: reason"
// when the checkpoint does not fit this run (config keys that may not change, missing tensors,
// shapes, dtypes, another base model or other data).
checkpoint::RankState load_training_checkpoint(const CheckpointContext& ctx, const std::string& dir,
                                               const checkpoint::Manifest& manifest);

// Loads the model tensors of a checkpoint (any TP layout) into `model` (this rank's shards of any
// layout, TP = 1 included): every parameter, or only the trainable ones when `peft` (the frozen
// base must be in place already). Opens the model files only, never the optimizer's. UserError
// "dir: reason" for missing tensors, shapes or dtypes that do not fit.
void load_model_tensors(const std::string& dir, const checkpoint::Manifest& manifest,
                        model::Transformer& model, backend::Ops& ops, bool peft);

// `tailor export --checkpoint DIR`: rebuilds the model of DIR's config.yaml on the CPU with TP = 1
// as the trainer does (a PEFT run's base from model.path, or the seeded init of a config-defined
// base, which must still be the one the checkpoint was trained on), loads the checkpoint's model
// tensors and writes what the trainer writes at the end of a run: with format "hf", a Hugging
// Face directory at out_dir (linear adapters merged; + out_dir/adapter: the method's adapter, in
// PEFT format where it has one); with format "peft", only that adapter at out_dir. Verifies
// config.yaml and the model files against the manifest first; never reads optimizer files.
// The model of checkpoint `dir` on `ops` (one rank, TP = 1), rebuilt from its config.yaml as the
// trainer builds it (a PEFT run's base from model.path or the seeded init, which must still be the
// one it was trained on) with the checkpoint's model tensors loaded. Verifies config.yaml and the
// model files first; never reads optimizer files.
struct CheckpointModel {
  checkpoint::Manifest manifest;
  config::ExperimentConfig cfg;
  ModelSetup setup;
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<data::Tokenizer> tokenizer;  // the run's (data.tokenizer)
};
[[nodiscard]] CheckpointModel load_checkpoint_model(const std::string& dir, backend::Ops& ops);

struct CheckpointExport {
  std::string format = "hf";   // hf | peft
  bool bf16 = false;           // hf weights in bf16 (default f32)
  int threads = 0;             // CPU threads (0: all cores)
};
void export_checkpoint(const std::string& dir, const std::string& out_dir,
                       const CheckpointExport& options);

// The identity of a PEFT run's frozen base: SHA-256 over the base directory's config.json and its
// safetensors headers and sizes (cheap, unlike hashing every weight), or of the seeded
// initialization of a config-defined base.
[[nodiscard]] std::string base_model_identity(const config::ExperimentConfig& cfg);

}  // namespace tailor::trainer
