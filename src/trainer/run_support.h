// What the training run's stages share (training_run.cpp): the layout and thread rules, where a
// run resumes, the per-step agreement over ranks, the testing fault hooks and the host buffers of
// a micro-batch. Internal to the trainer module.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "comm/communicator.h"
#include "config/config.h"
#include "data/data_order.h"
#include "data/packing.h"
#include "model/model_spec.h"
#include "model/transformer.h"

namespace tailor::trainer {

using Clock = std::chrono::steady_clock;

[[nodiscard]] double seconds_since(Clock::time_point t0);

// Entropy (nats) of the token frequency distribution: the loss of the best model that ignores
// context. A model that learned anything beyond letter frequencies goes below it.
[[nodiscard]] double unigram_entropy(std::span<const std::int32_t> tokens, std::int64_t vocab);

// Host buffers of one micro-batch and the Batch view over them.
struct MicroBatch {
  backend::Buffer ids, targets, positions, doc_ids;
  model::Batch batch;

  MicroBatch(std::int64_t rows, std::int64_t seq);
  // Rows r = 0..B-1 are the sequences at global positions first_g + r of the data order; with
  // items of several rows (preference pairs: PackedSequences::rows_per_item), item i fills rows
  // [i * k, (i + 1) * k) and B counts k rows per item.
  void fill(const data::PackedSequences& packed, data::DataOrder& order, std::int64_t first_g);
};

// The optimizer steps of `epochs` passes over `sequences` packed sequences, `global_batch` per
// step: ceil(epochs * sequences / global_batch). Global batches run on across epoch boundaries
// (data_order.h), so the last step may take its tail from the next epoch; every sequence is seen
// at least `epochs` times.
[[nodiscard]] std::int64_t steps_for_epochs(std::int64_t epochs, std::int64_t sequences,
                                            std::int64_t global_batch);

// CPU threads per rank: the config's, or the cores shared among the ranks of this node.
[[nodiscard]] int threads_per_rank(const config::ExperimentConfig& cfg, int world_size);

// The whole of every parameter of a tensor-parallel model: each TP rank's shards (`params`, on
// `ops`) are gathered over `tp`, and `whole` (non-null on one rank: a one-rank model's parameters
// of the same names, on `whole_ops`) receives them. Shard padding beyond `whole`'s shape (vocabulary rows padded
// for the TP layout) is dropped. Collective over `tp`.
void gather_parameters(const model::ParameterSet& params, backend::Ops& ops,
                       comm::Communicator& tp, model::ParameterSet* whole,
                       backend::Ops* whole_ops);

// Resolves parallel.data (0 = auto) and train.micro_batch (0 = auto) against the world size and
// checks the layout; a misfit is a user error naming the config.
void resolve_layout(config::ExperimentConfig& cfg, const model::ModelSpec& spec, int world_size);

// Where training starts: the checkpoint directory to resume from (train.resume), or none. World
// rank 0 decides (it verifies checksums) and the others follow.
[[nodiscard]] std::optional<std::string> resume_point(const config::ExperimentConfig& cfg,
                                                      comm::Communicator& world);

// Flags OR-reduced over all ranks in one collective: {a non-finite loss, a stop request}.
struct StepAgreement {
  bool bad_loss = false, stop = false;
};
[[nodiscard]] StepAgreement agree_step(comm::Communicator& world, bool bad_loss, bool stop);

// Testing hooks (docs/checkpoints.md): TAILOR_FAULT_KILL_AFTER_STEP=K[:rank] kills that rank
// (SIGKILL) right after step K (and its checkpoint, if one is due); TAILOR_FAULT_NAN_STEPS=a,b,...
// poisons the last rank's gradients with NaN at those steps; TAILOR_FAULT_HANG_AT_STEP=K[:rank]
// makes that rank stop responding inside step K (the watchdog's test).
struct FaultHooks {
  std::int64_t kill_after = -1;
  int kill_rank = 0;
  std::int64_t hang_at = -1;
  int hang_rank = 0;
  std::vector<std::int64_t> nan_steps;

  [[nodiscard]] static FaultHooks from_env();
  [[nodiscard]] bool nan_at(std::int64_t step) const;
};

}  // namespace tailor::trainer
