// The prompt_search section: candidate prompts for `tailor prompt-search`. Not used by training,
// so a resumed run may change all of it; written to the resolved config only with candidates.
#include "config/schema.h"
#include "config/schema/prompt_templates.h"

namespace tailor::config {
namespace {

bool has_candidates(const PromptSearchConfig& p) { return !p.candidates.empty(); }

}  // namespace

const Section<PromptSearchConfig>& prompt_search_section() {
  using S = PromptSearchConfig;
  static const Section<S> section{
      "prompt_search",
      &ExperimentConfig::prompt_search,
      {
          {"metric", choice(&S::metric), Resume::kMayChange,
           "how candidates are ranked: dev loss (lower is better) or a generation metric"},
          {"max_records", integer(&S::max_records, kAtLeast0), Resume::kMayChange,
           "dev records generated per candidate (0: all)"},
          {"max_new_tokens", integer(&S::max_new_tokens, kAtLeast1), Resume::kMayChange,
           "tokens generated per answer"},
          {"search_records", integer(&S::search_records, kAtLeast0), Resume::kMayChange,
           "dev records that rank the candidates (a seeded shuffle); the rest are held out and "
           "reported (0: all rank, none held out)"},
          {"candidates",
           custom("list", Presence::kOptional, read_prompt_candidates, write_prompt_candidates),
           Resume::kMayChange,
           "{name, preset, system, translation, few_shot_file, few_shot_count}, "
           "each applied over data.template"},
      },
      nullptr,
      nullptr,
      has_candidates};
  return section;
}

}  // namespace tailor::config
