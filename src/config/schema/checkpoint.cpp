// The checkpoint section: how often to save and what to keep. A resumed run may change all of it.
#include "config/schema.h"

namespace tailor::config {
namespace {

// Written only when used: the resolved configs of other runs stay as they were.
bool keeps_best(const CheckpointConfig& c) { return c.keep_best != BestMetric::kNone; }

}  // namespace

const Section<CheckpointConfig>& checkpoint_section() {
  using S = CheckpointConfig;
  using F = Field<S>;
  static const Section<S> section{
      "checkpoint",
      &ExperimentConfig::checkpoint,
      {
          {"every_steps", integer(&S::every_steps, kAtLeast0), Resume::kMayChange,
           "save every N steps and at the last step (0: only on a stop request)"},
          {"keep_last", integer(&S::keep_last, kAtLeast1), Resume::kMayChange,
           "the newest N committed checkpoints are kept"},
          {"keep_every", integer(&S::keep_every, kAtLeast0), Resume::kMayChange,
           "also keep steps that are multiples of this (0: none)"},
          F{"keep_best", choice(&S::keep_best), Resume::kMayChange,
            "keep the checkpoint of the best evaluation by this metric (checkpoints/best)"}
              .written_if(keeps_best),
      }};
  return section;
}

}  // namespace tailor::config
