// The schedule section: the learning rate over the steps.
#include "config/schema.h"

namespace tailor::config {

const Section<ScheduleConfig>& schedule_section() {
  using S = ScheduleConfig;
  static const Section<S> section{
      "schedule",
      &ExperimentConfig::schedule,
      {
          {"type", choice(&S::type), Resume::kFixed, "the learning-rate decay after warmup"},
          {"warmup_steps", integer(&S::warmup_steps, kAtLeast0), Resume::kFixed,
           "linear warmup from 0 to optimizer.lr (< train.steps)"},
          {"min_lr_ratio", real(&S::min_lr_ratio, kUnitClosed), Resume::kFixed,
           "final lr = lr * min_lr_ratio (linear and cosine)"},
      }};
  return section;
}

}  // namespace tailor::config
