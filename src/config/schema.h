// The sections of the config schema, in the order of config.h and of the resolved config: one
// table each (src/config/schema/<section>.cpp; schema_table.h says what a row holds).
#pragma once

#include <string_view>
#include <vector>

#include "config/schema_table.h"

namespace tailor::config {

const Section<OutputConfig>& output_section();
const Section<ModelConfig>& model_section();
const Section<DataConfig>& data_section();
const Section<TrainConfig>& train_section();
const Section<ObjectiveConfig>& objective_section();
const Section<OptimizerConfig>& optimizer_section();
const Section<ScheduleConfig>& schedule_section();
const Section<CheckpointConfig>& checkpoint_section();
const Section<ParallelConfig>& parallel_section();
const Section<RuntimeConfig>& runtime_section();
const Section<PeftConfig>& peft_section();
const Section<PromptSearchConfig>& prompt_search_section();

// Calls f(section) for every section, in order.
template <typename F>
void for_each_section(F&& f) {
  f(output_section());
  f(model_section());
  f(data_section());
  f(train_section());
  f(objective_section());
  f(optimizer_section());
  f(schedule_section());
  f(checkpoint_section());
  f(parallel_section());
  f(runtime_section());
  f(peft_section());
  f(prompt_search_section());
}

// One key of the schema, for what is derived from the tables as a whole (the resume rules, the
// reference's test).
struct SchemaKey {
  std::string_view section;
  std::string_view key;
  std::string_view type;  // as in the reference's Type column
  bool required = false;
  std::vector<std::string_view> choices;  // of a choice, in table order
  Resume resume = Resume::kFixed;
  std::string_view doc;
  std::string default_yaml;  // what to_yaml writes for the default (`S{}`)
};

[[nodiscard]] std::vector<SchemaKey> schema_keys();

}  // namespace tailor::config
