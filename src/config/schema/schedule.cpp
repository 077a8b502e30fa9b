// The schedule section: the learning rate over the steps.
#include "config/schema.h"

namespace tailor::config {
namespace {

// Written only when used: the resolved configs of runs that give warmup_steps stay as they were.
bool has_ratio(const ScheduleConfig& s) { return s.warmup_ratio > 0.0; }

}  // namespace

const Section<ScheduleConfig>& schedule_section() {
  using S = ScheduleConfig;
  using F = Field<S>;
  static const Section<S> section{
      "schedule",
      &ExperimentConfig::schedule,
      {
          {"type", choice(&S::type), Resume::kFixed, "the learning-rate decay after warmup"},
          {"warmup_steps", integer(&S::warmup_steps, kAtLeast0), Resume::kFixed,
           "linear warmup from 0 to optimizer.lr (< train.steps)"},
          F{"warmup_ratio", real(&S::warmup_ratio, kUnitHalfOpen), Resume::kFixed,
            "warmup as a fraction of train.steps: ceil(ratio * steps) (not with warmup_steps)"}
              .written_if(has_ratio),
          {"min_lr_ratio", real(&S::min_lr_ratio, kUnitClosed), Resume::kFixed,
           "final lr = lr * min_lr_ratio (linear and cosine)"},
      }};
  return section;
}

}  // namespace tailor::config
