// Translation of the validated experiment config into the specs of the lower modules, which never
// see the config module themselves.
#pragma once

#include <memory>

#include "config/config.h"
#include "data/corpus_builder.h"
#include "data/packing.h"
#include "data/text_dataset.h"
#include "model/decoder_layer.h"
#include "model/model_spec.h"
#include "objective/objective.h"
#include "objective/preference_loss.h"
#include "objective/reference.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace tailor::trainer {

[[nodiscard]] model::ModelSpec model_spec_from_config(const config::ModelConfig& m);
[[nodiscard]] optim::OptimizerSpec optimizer_spec_from_config(const config::OptimizerConfig& o);
// The warmup in steps: schedule.warmup_steps, or ceil(schedule.warmup_ratio * train.steps) (at
// most train.steps - 1). train.steps must be resolved (train.epochs: see resolve_epochs).
[[nodiscard]] std::int64_t warmup_steps(const config::ExperimentConfig& c);
[[nodiscard]] optim::ScheduleSpec schedule_spec_from_config(const config::ExperimentConfig& c);
[[nodiscard]] data::TextSplit text_split_from_config(const config::DataConfig& d);
[[nodiscard]] model::Recompute recompute_from_config(const config::TrainConfig& t);
[[nodiscard]] data::PackingMode packing_mode_from_config(const config::ExperimentConfig& c);
// The training objective of objective.type. `reference`: the frozen reference model of a
// DPO run without a PEFT method (null: the policy with its adapters disabled).
[[nodiscard]] std::unique_ptr<objective::Objective> objective_from_config(
    const config::ObjectiveConfig& o, model::Transformer* reference = nullptr);
// The same with the reference values from `reference` (null: the policy with its adapters
// disabled).
[[nodiscard]] std::unique_ptr<objective::Objective> objective_from_config(
    const config::ObjectiveConfig& o, std::unique_ptr<objective::ReferenceSource> reference);
// The {prompt, completion} records of a few-shot file (data.template.few_shot_file,
// prompt_search.pool); another kind of record is a `file:line` UserError.
[[nodiscard]] std::vector<data::FewShotExample> read_few_shot_file(const std::string& path);
// The parameters of a preference objective (objective.type other than causal_lm).
[[nodiscard]] objective::PreferenceParams preference_params_from_config(
    const config::ObjectiveConfig& o);
// Whether the objective compares the policy with a reference model (dpo).
[[nodiscard]] bool needs_reference_model(const config::ObjectiveConfig& o);
// A chat template of data.template.preset (a file or inline) as the renderer's ChatFormat.
[[nodiscard]] data::ChatFormat chat_format_from_config(const config::ChatTemplateConfig& c);
// The data sources, format and prompt template of the config; reads data.template.few_shot_file
// (its prompt/completion records) and picks few_shot_count of them by train.seed.
[[nodiscard]] data::CorpusSpec corpus_spec_from_config(const config::ExperimentConfig& c,
                                                       int threads);

}  // namespace tailor::trainer
