// The preference objectives (DPO and IPO, CPO, SimPO, ORPO) on pairs of rows: a micro-batch of
// preference data holds pairs as rows 2i (prompt + chosen answer) and 2i + 1 (prompt + rejected
// answer), with targets only on the answers (data/packing.h, PackingMode::kPairs). A row's
// log-probability is minus the sum of its token losses (model::Transformer::forward_token_losses),
// or their mean for the length-normalized kinds; the pair's loss and its derivatives come from
// preference_loss.h, and backward_rows weighs each row by d(step loss)/d(its token-loss sum).
//
// The step loss is the mean of the pair losses over every pair of the step (all micro-batches and
// data-parallel ranks), plus, for CPO and ORPO, nll_weight times the mean NLL of every chosen
// answer token of the step. The reference (DPO, IPO) is the policy with its adapters disabled
// (PEFT: no second copy), a frozen model, or a precomputed table (reference.h).
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "objective/objective.h"
#include "objective/preference_loss.h"
#include "objective/reference.h"

namespace tailor::objective {

// Per-step (and dev) statistics, means over pairs; what TRL logs under the same names.
struct PreferenceStats {
  double reward_chosen = 0.0, reward_rejected = 0.0;
  double reward_accuracy = 0.0;  // the fraction of pairs whose chosen reward is the higher
  double reward_margin = 0.0;    // mean of chosen - rejected rewards
  double logp_chosen = 0.0, logp_rejected = 0.0;  // the policy's (averaged where the kind is)
  double nll = 0.0;              // mean NLL of the chosen answers' tokens
};

class Preference final : public Objective {
 public:
  // `reference`: a frozen model for DPO/IPO without adapters (null: the policy with its
  // adapters disabled). Must outlive the objective.
  explicit Preference(const PreferenceParams& params, model::Transformer* reference = nullptr);
  // The reference values from `reference` (reference.h); null: the policy with its adapters
  // disabled.
  Preference(const PreferenceParams& params, std::unique_ptr<ReferenceSource> reference);
  // Where the reference values come from (for the run log).
  [[nodiscard]] std::string reference_description() const { return reference_->describe(); }

  [[nodiscard]] std::string_view name() const override;
  void begin_step(std::span<const model::Batch* const> micro_batches,
                  comm::Communicator& dp) override;
  double micro_batch(model::Transformer& model, const model::Batch& batch,
                     const GradsReady& grads_ready) override;
  [[nodiscard]] double step_loss(double local_sum, comm::Communicator& dp) override;
  [[nodiscard]] std::int64_t step_count() const override { return pairs_; }
  [[nodiscard]] EvalLoss evaluate(model::Transformer& model, const data::PackedSequences& sequences,
                                  comm::Communicator& dp) override;
  [[nodiscard]] std::vector<std::pair<std::string, double>> step_metrics() const override;
  [[nodiscard]] std::vector<std::pair<std::string, double>> eval_metrics() const override;

  // The statistics of the last step (after step_loss) and of the last evaluation.
  [[nodiscard]] const PreferenceStats& last_step() const noexcept { return step_stats_; }
  [[nodiscard]] const PreferenceStats& last_eval() const noexcept { return eval_stats_; }

 private:
  // Sums over this rank's pairs, reduced over the data-parallel group into stats.
  struct Sums {
    std::array<double, 7> v{};  // rewards c/r, accuracy, margin, logps c/r, chosen NLL
    void add(const PairTerms& t, double pc, double pr);
  };
  // Forward of one micro-batch (and backward when `weights_out` is given): the pair losses
  // (normalized by pairs_ and chosen_tokens_) added to `sums`, returned.
  double pairs_of(model::Transformer& model, const model::Batch& batch, Sums& sums,
                  bool with_backward, const GradsReady& grads_ready);
  [[nodiscard]] PreferenceStats reduce(const Sums& sums, std::int64_t pairs,
                                       std::int64_t chosen_tokens, comm::Communicator& dp) const;

  PreferenceParams params_;
  std::unique_ptr<ReferenceSource> reference_;
  std::int64_t pairs_ = 0;          // the step's pairs over every rank
  std::int64_t chosen_tokens_ = 0;  // the step's chosen answer tokens over every rank
  Sums step_sums_;
  PreferenceStats step_stats_, eval_stats_;
};

// The number of answer tokens (targets that carry loss) in each row of a host batch.
[[nodiscard]] std::vector<std::int64_t> row_target_counts(const model::Batch& batch);

}  // namespace tailor::objective
