// The parallel section: the layout of the ranks. A resumed run may change it (checkpoints reshard).
#include "config/schema.h"

namespace tailor::config {

const Section<ParallelConfig>& parallel_section() {
  using S = ParallelConfig;
  static const Section<S> section{
      "parallel",
      &ExperimentConfig::parallel,
      {
          {"tensor", integer(&S::tensor, kAtLeast1), Resume::kMayChange,
           "tensor-parallel ranks T (contiguous ranks)"},
          {"data", integer_or_auto(&S::data, kAtLeast1), Resume::kMayChange,
           "data-parallel ranks D (auto: ranks / T)"},
      }};
  return section;
}

}  // namespace tailor::config
