// The objective section: what training minimizes (src/objective).
#include "config/schema.h"

namespace tailor::config {

const Section<ObjectiveConfig>& objective_section() {
  using S = ObjectiveConfig;
  static const Section<S> section{
      "objective",
      &ExperimentConfig::objective,
      {
          // Another loss is another training run: a resumed run keeps its objective.
          {"type", choice(&S::type), Resume::kFixed,
           "the training loss (causal_lm: mean NLL of the loss-carrying target tokens)"},
      }};
  return section;
}

}  // namespace tailor::config
