// Training objectives: what a step's loss is, how it is normalized, and how evaluation scores a
// model — behind one interface, so that a new objective (DPO and its relatives) touches neither
// the model nor the trainer's step loop.
//
// The step loop hands the objective this rank's micro-batches of the step; the objective drives
// the model through its loss interface (model/transformer.h: forward_backward for objectives
// whose gradient weights are known before the forward, forward_token_losses + backward_rows for
// those that weigh each sequence by its own log-probability) and owns every normalization. All
// three step calls are collective over the data-parallel group, in the same order on every rank.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "data/packing.h"
#include "model/transformer.h"

namespace tailor::objective {

// Called during backward of a step's last micro-batch with the offset from which gradients are
// final (model/transformer.h), so data-parallel buckets are reduced while backward runs.
using GradsReady = std::function<void(std::int64_t)>;

// A dev-set score: the objective's loss and the number of items it averages over (tokens for
// the causal-LM objective).
struct EvalLoss {
  double loss = 0.0;
  std::int64_t count = 0;
};

class Objective {
 public:
  virtual ~Objective() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;

  // Before a step's forward passes, with this rank's micro-batches of the step.
  virtual void begin_step(std::span<const model::Batch* const> micro_batches,
                          comm::Communicator& dp) = 0;
  // One micro-batch's forward and backward: parameter gradients += its share of d(step loss).
  // Returns its share of the step loss, before normalization.
  virtual double micro_batch(model::Transformer& model, const model::Batch& batch,
                             const GradsReady& grads_ready) = 0;
  // The step's loss from the sum of this rank's micro_batch() returns.
  [[nodiscard]] virtual double step_loss(double local_sum, comm::Communicator& dp) = 0;
  // What the step's loss averages over, counted over every rank (loss-carrying tokens for the
  // causal-LM objective); logged with each step.
  [[nodiscard]] virtual std::int64_t step_count() const = 0;

  // The dev loss over `sequences` (data-parallel rank d scores d, d + D, ...), reduced over `dp`.
  [[nodiscard]] virtual EvalLoss evaluate(model::Transformer& model,
                                          const data::PackedSequences& sequences,
                                          comm::Communicator& dp) = 0;

  // Statistics of the objective's own, by name, logged beside the loss: of the last step (after
  // step_loss) and of the last evaluate(). Empty for the causal-LM objective.
  [[nodiscard]] virtual std::vector<std::pair<std::string, double>> step_metrics() const {
    return {};
  }
  [[nodiscard]] virtual std::vector<std::pair<std::string, double>> eval_metrics() const {
    return {};
  }
};

}  // namespace tailor::objective
