// data.template and prompt_search.candidates: how JSONL records become prompts. Both are keys with
// a structure of their own (a preset that is a name, a file or an inline chat template; few-shot
// examples; a translation prompt with placeholders), read and written here for the data and
// prompt_search tables.
#pragma once

#include "config/schema_table.h"

namespace tailor::config {

// data.template: {preset, system, few_shot, few_shot_file, few_shot_count, translation}.
void read_data_template(ReadContext& c, DataConfig& d);
void write_data_template(YamlWriter& w, const DataConfig& d);

// prompt_search.candidates: [{name, preset, system, translation, few_shot_file, few_shot_count}],
// each applied over data.template (read before it).
void read_prompt_candidates(ReadContext& c, PromptSearchConfig& p);
void write_prompt_candidates(YamlWriter& w, const PromptSearchConfig& p);

}  // namespace tailor::config
