// The causal language-modelling objective (supervised fine-tuning): the mean negative
// log-likelihood of a step's loss-carrying target tokens, over all its micro-batches and
// data-parallel ranks — each token weighs the same, whichever micro-batch or rank holds it.
// Perplexity is exp of the same mean on a dev set.
#pragma once

#include "objective/objective.h"

namespace tailor::objective {

class CausalLm final : public Objective {
 public:
  [[nodiscard]] std::string_view name() const override { return "causal_lm"; }
  void begin_step(std::span<const model::Batch* const> micro_batches,
                  comm::Communicator& dp) override;
  double micro_batch(model::Transformer& model, const model::Batch& batch,
                     const GradsReady& grads_ready) override;
  [[nodiscard]] double step_loss(double local_sum, comm::Communicator& dp) override;
  [[nodiscard]] std::int64_t step_count() const override { return tokens_; }
  [[nodiscard]] EvalLoss evaluate(model::Transformer& model, const data::PackedSequences& sequences,
                                  comm::Communicator& dp) override;

 private:
  std::int64_t tokens_ = 0;  // the step's loss tokens over every rank
  double dscale_ = 0.0;      // 1 / tokens_ (0 when there are none)
};

}  // namespace tailor::objective
