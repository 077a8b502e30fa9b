// The output section: where the run writes.
#include "config/schema.h"

namespace tailor::config {

const Section<OutputConfig>& output_section() {
  using S = OutputConfig;
  static const Section<S> section{
      "output",
      &ExperimentConfig::output,
      {
          {"dir", text(&S::dir, Presence::kRequired), Resume::kMayChange,
           "the run directory (config.resolved.yaml, metrics.jsonl, tb/, checkpoints/, export/)"},
      }};
  return section;
}

}  // namespace tailor::config
