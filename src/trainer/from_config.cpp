#include "trainer/from_config.h"

#include <algorithm>
#include <cmath>

#include "data/jsonl_dataset.h"
#include "objective/causal_lm.h"
#include "objective/preference.h"

namespace tailor::trainer {

model::ModelSpec model_spec_from_config(const config::ModelConfig& m) {
  model::ModelSpec s;
  s.vocab_size = m.vocab_size;
  s.hidden_size = m.hidden_size;
  s.num_layers = m.num_layers;
  s.num_heads = m.num_heads;
  s.num_kv_heads = m.num_kv_heads;
  s.head_dim = m.head_dim;
  s.intermediate_size = m.intermediate_size;
  s.max_position_embeddings = m.max_position_embeddings;
  s.norm = m.norm == config::NormKind::kLayerNorm ? model::NormType::kLayerNorm
                                                   : model::NormType::kRmsNorm;
  s.norm_eps = m.norm_eps;
  s.position = m.position == config::PositionKind::kLearned ? model::PositionType::kLearned
                                                            : model::PositionType::kRope;
  s.rope_theta = m.rope_theta;
  s.mlp = m.mlp == config::MlpKind::kGelu ? model::MlpType::kGelu : model::MlpType::kSwiGLU;
  s.attention_bias = m.attention_bias;
  s.o_bias = m.attention_bias;
  s.mlp_bias = m.mlp_bias;
  s.tie_embeddings = m.tie_embeddings;
  s.init_std = m.init_std;
  return s;
}

optim::OptimizerSpec optimizer_spec_from_config(const config::OptimizerConfig& o) {
  optim::OptimizerSpec s;
  s.kind = o.name == config::OptimizerName::kSgd ? optim::OptimizerKind::kSgd
                                                 : optim::OptimizerKind::kAdamW;
  s.beta1 = o.beta1;
  s.beta2 = o.beta2;
  s.eps = o.eps;
  s.weight_decay = o.weight_decay;
  s.momentum = o.momentum;
  s.bf16_moments = o.moments == config::MomentsDType::kBF16;
  return s;
}

std::int64_t warmup_steps(const config::ExperimentConfig& c) {
  const double ratio = c.schedule.warmup_ratio;
  if (ratio <= 0.0) return c.schedule.warmup_steps;
  // Rounded up, as transformers' TrainingArguments.get_warmup_steps does; at most steps - 1, so
  // the peak learning rate is reached even on the shortest runs.
  const auto w = static_cast<std::int64_t>(std::ceil(ratio * static_cast<double>(c.train.steps)));
  return std::clamp<std::int64_t>(w, 0, std::max<std::int64_t>(0, c.train.steps - 1));
}

optim::ScheduleSpec schedule_spec_from_config(const config::ExperimentConfig& c) {
  optim::ScheduleSpec s;
  switch (c.schedule.type) {
    case config::ScheduleType::kConstant: s.type = optim::ScheduleType::kConstant; break;
    case config::ScheduleType::kLinear: s.type = optim::ScheduleType::kLinear; break;
    case config::ScheduleType::kCosine: s.type = optim::ScheduleType::kCosine; break;
  }
  s.lr = c.optimizer.lr;
  s.warmup_steps = warmup_steps(c);
  s.total_steps = c.train.steps;
  s.min_lr_ratio = c.schedule.min_lr_ratio;
  return s;
}

data::TextSplit text_split_from_config(const config::DataConfig& d) {
  switch (d.split) {
    case config::TextSplit::kNone: return data::TextSplit::kNone;
    case config::TextSplit::kParagraph: return data::TextSplit::kParagraph;
    case config::TextSplit::kLine: return data::TextSplit::kLine;
  }
  return data::TextSplit::kNone;
}

model::Recompute recompute_from_config(const config::TrainConfig& t) {
  switch (t.recompute) {
    case config::Recompute::kNone: return model::Recompute::kNone;
    case config::Recompute::kSelective: return model::Recompute::kSelective;
    case config::Recompute::kFull: return model::Recompute::kFull;
  }
  return model::Recompute::kNone;
}

data::PackingMode packing_mode_from_config(const config::ExperimentConfig& c) {
  if (config::is_preference(c.objective.type)) return data::PackingMode::kPairs;
  return c.data.packing == config::PackingMode::kPad ? data::PackingMode::kPad
                                                     : data::PackingMode::kPack;
}

data::ChatFormat chat_format_from_config(const config::ChatTemplateConfig& c) {
  const auto role = [](const config::ChatRoleConfig& r) {
    return data::ChatRole{r.prefix, r.suffix, r.separator, r.trim};
  };
  data::ChatFormat f;
  f.name = c.name;
  f.bos = c.bos;
  f.tokenizer_bos = c.tokenizer_bos;
  f.system_placement = c.system_placement == config::SystemPlacement::kFirstUser
                           ? data::SystemPlacement::kFirstUser
                           : data::SystemPlacement::kTurn;
  f.system = role(c.system);
  f.user = role(c.user);
  f.assistant = role(c.assistant);
  f.assistant_final_prefix = c.assistant_final_prefix;
  f.assistant_final_lstrip = c.assistant_final_lstrip;
  f.assistant_final_suffix = c.assistant_final_suffix;
  f.end = c.end;
  f.records_as_text = c.prompt_completion == config::PromptCompletion::kText;
  f.special_tokens = c.special_tokens;
  return f;
}

data::CorpusSpec corpus_spec_from_config(const config::ExperimentConfig& c, int threads) {
  const config::DataConfig& d = c.data;
  data::CorpusSpec spec;
  for (const auto& src : d.sources) spec.sources.push_back({src.path, src.weight});
  if (spec.sources.empty()) spec.sources.push_back({d.train, 1.0});
  spec.format = d.format == config::DataFormat::kJsonl ? data::DataFormat::kJsonl : data::DataFormat::kText;
  spec.split = text_split_from_config(d);
  spec.skip_invalid = d.skip_invalid;
  spec.seed = c.train.seed;
  spec.threads = threads;
  switch (d.overlong) {
    case config::OverlongPolicy::kSplit: spec.overlong = data::OverlongPolicy::kSplit; break;
    case config::OverlongPolicy::kTruncate: spec.overlong = data::OverlongPolicy::kTruncate; break;
    case config::OverlongPolicy::kDrop: spec.overlong = data::OverlongPolicy::kDrop; break;
  }
  spec.max_doc_tokens = d.seq_len;
  if (config::is_preference(c.objective.type))
    spec.pairs = data::PairLimits{d.seq_len,
                                  d.max_prompt_tokens > 0 ? d.max_prompt_tokens : d.seq_len / 2};
  const config::TemplateConfig& t = d.prompt_template;
  data::TemplateSpec& tmpl = spec.tmpl;
  if (const auto preset = data::parse_chat_preset(t.preset)) {
    tmpl.preset = *preset;
  } else if (t.chat) {
    tmpl.format = chat_format_from_config(*t.chat);
  }
  tmpl.system = t.system;
  tmpl.translation = t.translation;
  tmpl.train_on_prompt = d.train_on_prompt;
  for (const auto& ex : t.few_shot) tmpl.few_shot.push_back({ex.prompt, ex.completion});
  if (!t.few_shot_file.empty()) {
    const std::vector<data::FewShotExample> pool = read_few_shot_file(t.few_shot_file);
    tmpl.few_shot = data::choose_few_shot(pool, t.few_shot_count > 0 ? t.few_shot_count
                                                                     : static_cast<std::int64_t>(pool.size()),
                                          c.train.seed);
  }
  return spec;
}

std::vector<data::FewShotExample> read_few_shot_file(const std::string& path) {
  std::vector<data::FewShotExample> pool;
  for (const data::Record& r : data::load_jsonl(path, false).records) {
    TAILOR_CHECK_USER(r.kind == data::RecordKind::kPromptCompletion,
                      fmt::format("{}:{}", path, r.line),
                      "few-shot examples must be {{\"prompt\", \"completion\"}} records");
    pool.push_back({r.prompt, r.completion});
  }
  return pool;
}

objective::PreferenceParams preference_params_from_config(const config::ObjectiveConfig& o) {
  objective::PreferenceParams p;
  p.beta = o.beta;
  p.label_smoothing = o.label_smoothing;
  switch (o.type) {
    case config::ObjectiveType::kDpo:
      p.kind = o.dpo_loss == config::DpoLoss::kIpo ? objective::PreferenceKind::kIpo
                                                   : objective::PreferenceKind::kDpo;
      if (p.kind == objective::PreferenceKind::kIpo) p.label_smoothing = 0.0;
      break;
    case config::ObjectiveType::kCpo:
      p.kind = objective::PreferenceKind::kCpo;
      p.nll_weight = o.nll_weight;
      break;
    case config::ObjectiveType::kOrpo:
      p.kind = objective::PreferenceKind::kOrpo;
      p.nll_weight = o.nll_weight;
      p.label_smoothing = 0.0;
      break;
    case config::ObjectiveType::kSimpo:
      p.kind = objective::PreferenceKind::kSimpo;
      p.gamma = o.gamma;
      break;
    case config::ObjectiveType::kCausalLm:
      TAILOR_ASSERT(false, "causal_lm is not a preference objective");
  }
  return p;
}

bool needs_reference_model(const config::ObjectiveConfig& o) {
  return o.type == config::ObjectiveType::kDpo;
}

std::unique_ptr<objective::Objective> objective_from_config(const config::ObjectiveConfig& o,
                                                            model::Transformer* reference) {
  return objective_from_config(
      o, reference != nullptr ? objective::model_reference(*reference) : nullptr);
}

std::unique_ptr<objective::Objective> objective_from_config(
    const config::ObjectiveConfig& o, std::unique_ptr<objective::ReferenceSource> reference) {
  switch (o.type) {
    case config::ObjectiveType::kCausalLm: return std::make_unique<objective::CausalLm>();
    case config::ObjectiveType::kDpo:
    case config::ObjectiveType::kCpo:
    case config::ObjectiveType::kOrpo:
    case config::ObjectiveType::kSimpo:
      return std::make_unique<objective::Preference>(preference_params_from_config(o),
                                                     std::move(reference));
  }
  TAILOR_ASSERT(false, "objective.type {} has no objective", static_cast<int>(o.type));
}

}  // namespace tailor::trainer
