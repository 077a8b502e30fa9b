// The train section: how long, how big and from where a run trains.
#include "config/schema.h"

namespace tailor::config {
namespace {

void check_resume(SchemaReader& r, const std::string& path, const TrainConfig& t) {
  if (!t.resume.empty()) return;
  r.problem(path, "must be auto, never or a checkpoint path (got \"\")");
  r.mark_bad(path);
}

}  // namespace

const Section<TrainConfig>& train_section() {
  using S = TrainConfig;
  using F = Field<S>;
  static const Section<S> section{
      "train",
      &ExperimentConfig::train,
      {
          {"steps", integer(&S::steps, kAtLeast1, Presence::kRequired), Resume::kMayChange,
           "optimizer steps"},
          {"seed", unsigned_integer(&S::seed), Resume::kFixed,
           "seed of every random stream (initialization, data order, dropout)"},
          {"global_batch", integer(&S::global_batch, kAtLeast1, Presence::kRequired),
           Resume::kFixed, "sequences per optimizer step, all ranks together"},
          {"micro_batch", integer_or_auto(&S::micro_batch, kAtLeast1), Resume::kMayChange,
           "sequences per forward/backward pass on one rank (auto: global_batch / parallel.data)"},
          F{"resume", text(&S::resume), Resume::kMayChange,
            "auto | never | a checkpoints/step_<N> directory to continue from"}
              .checked_by(check_resume),
          {"log_every", integer(&S::log_every, kAtLeast1), Resume::kMayChange,
           "progress line and metrics.jsonl record every N steps"},
          {"max_skipped_steps", integer(&S::max_skipped_steps, kAtLeast1), Resume::kMayChange,
           "stop after this many consecutive non-finite steps"},
          {"eval_every", integer(&S::eval_every, kAtLeast0), Resume::kMayChange,
           "validation loss every N steps (0: at the end only)"},
          // Recomputation is bit-identical to keeping the activations.
          {"recompute", choice(&S::recompute), Resume::kMayChange,
           "activation recomputation: none, selective (norms, MLP activation) or full (layers)"},
      }};
  return section;
}

}  // namespace tailor::config
