// The prompt_search section: candidate prompts for `tailor prompt-search`. Not used by training,
// so a resumed run may change all of it; written to the resolved config only with candidates.
#include <filesystem>

#include <fmt/format.h>

#include "config/schema.h"
#include "config/schema/prompt_templates.h"

namespace tailor::config {
namespace {

bool has_candidates(const PromptSearchConfig& p) {
  return !p.candidates.empty() || p.strategy != PromptStrategy::kList;
}
bool few_shot(const PromptSearchConfig& p) { return p.strategy == PromptStrategy::kFewShot; }

void check_pool(SchemaReader& r, const std::string& path, const PromptSearchConfig& p) {
  std::error_code ec;
  if (!p.pool.empty() && !std::filesystem::is_regular_file(p.pool, ec))
    r.problem(path, fmt::format("file not found: {}", p.pool));
}

}  // namespace

const Section<PromptSearchConfig>& prompt_search_section() {
  using S = PromptSearchConfig;
  static const Section<S> section{
      "prompt_search",
      &ExperimentConfig::prompt_search,
      {
          {"strategy", choice(&S::strategy), Resume::kMayChange,
           "list: score the candidates; few_shot: choose demonstrations from pool"},
          Field<S>{"pool", text(&S::pool), Resume::kMayChange,
                   "few_shot: a JSONL file of {prompt, completion} demonstrations"}
              .checked_by(check_pool)
              .written_if(few_shot),
          Field<S>{"shots", integer(&S::shots, kAtLeast0), Resume::kMayChange,
                   "few_shot: how many demonstrations to choose (greedy forward selection)"}
              .written_if(few_shot),
          Field<S>{"random_seeds", integer(&S::random_seeds, kAtLeast0), Resume::kMayChange,
                   "few_shot: random draws of `shots` demonstrations scored as the baseline"}
              .written_if(few_shot),
          {"max_evaluations", integer(&S::max_evaluations, kAtLeast0), Resume::kMayChange,
           "the search's budget in scored candidates or greedy tries (0: none); base and random "
           "baselines are always scored"},
          {"max_seconds", real(&S::max_seconds, {0.0, false, std::nullopt, false}),
           Resume::kMayChange, "the search's budget in wall seconds (0: none)"},
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
