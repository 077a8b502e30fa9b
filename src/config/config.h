// Experiment configuration: YAML -> typed, validated structs.
//
// This module is the only one that sees YAML. load_config() reads a file, applies command-line
// overrides (`key.path=value`, values parsed as YAML scalars or flow collections), fills defaults,
// and validates every field and every cross-field rule. All problems are collected and reported at
// once as a ConfigError, one line each:
//     file:line:col: key.path: reason            (problems found in the file)
//     <override N>: key.path: reason             (problems in the N-th override, 1-based)
//     file: key.path: reason                     (a required key that is missing)
// Unknown keys get a "did you mean" suggestion. Nothing is run and nothing is written before a
// config validates. The schema is documented in docs/config-reference.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/choices.h"
#include "core/error.h"

namespace tailor::config {

// The sections. Each key's type, range, resume rule and doc are in its section's table
// (src/config/schema/<section>.cpp); the initializers here are the defaults. Members that are not
// keys (derived or structural) say so.

struct OutputConfig {
  std::string dir;
};

struct ModelConfig {
  std::string path;
  ModelFamily family = ModelFamily::kLlama;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;         // 0 until resolved: num_heads
  std::int64_t head_dim = 0;             // 0 until resolved: hidden_size / num_heads
  std::int64_t intermediate_size = 0;
  std::int64_t max_position_embeddings = 2048;
  NormKind norm = NormKind::kRmsNorm;    // (the gpt2 family's defaults are in schema/model.cpp)
  double norm_eps = 1e-5;
  PositionKind position = PositionKind::kRope;
  double rope_theta = 10000.0;
  MlpKind mlp = MlpKind::kSwiGLU;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_embeddings = false;
  double init_std = 0.02;
};

struct DataSourceConfig {
  std::string path;
  double weight = 1.0;                   // > 0: how many times its documents appear (fractions
                                         // take a seeded subset)
};

struct FewShotConfig {
  std::string prompt;
  std::string completion;
};

// A chat template of data.template.preset given as a file (configs/templates/*.yaml) or inline:
// what is written around each role's messages (src/data/template.h, ChatFormat).
struct ChatRoleConfig {
  std::string prefix;                    // before the content, never trained
  std::string suffix;                    // after it: the end of turn (trained for the assistant)
  std::string separator;                 // after the suffix, never trained
  bool trim = false;                     // strip whitespace around the content (default: trim)
};

struct ChatTemplateConfig {
  std::string name;                      // default: the file's stem ("custom" inline)
  std::string bos;                       // text written once at the start ("" = none)
  bool tokenizer_bos = false;            // open with the tokenizer's BOS id instead
  SystemPlacement system_placement = SystemPlacement::kTurn;
  ChatRoleConfig system, user, assistant;  // top-level `trim` is every role's default
  std::string assistant_final_prefix;    // the last assistant turn's prefix (default: prefix)
  std::string assistant_final_lstrip;    // characters dropped from the start of its content
  std::string assistant_final_suffix;    // the last assistant turn's suffix (default: suffix)
  std::string end;                       // written (and trained) after the last message
  PromptCompletion prompt_completion = PromptCompletion::kChat;
  std::vector<std::string> special_tokens; // tokens the tokenizer is expected to know
};

// data.template: how JSONL records become text (src/data/template.h).
struct TemplateConfig {
  std::string preset = "plain";          // plain | llama3 | chatml | mistral | qwen3 | phi3 |
                                         // gemma | PATH of a template
                                         // file (or, in the resolved config, "custom")
  std::optional<ChatTemplateConfig> chat;  // the template of a file or an inline mapping; used
                                           // when preset is not a built-in name
  std::string system;                    // system prompt ("" = none)
  std::vector<FewShotConfig> few_shot;   // inline examples, shown before every prompt
  std::string few_shot_file;             // or: a JSONL file of {prompt, completion} ...
  std::int64_t few_shot_count = 0;       // ... of which this many are chosen by train.seed (0: all)
  std::string translation = "Translate from {src_lang_name} to {tgt_lang_name}:\n{src}\n";
};

struct DataConfig {
  std::string train;                     // the first source's path
  std::vector<DataSourceConfig> sources; // data.train as sources: one {train, 1.0}, or the list
  bool train_is_list = false;            // data.train was written as a list of {path, weight}
  DataFormat format = DataFormat::kText;
  TokenizerKind tokenizer = TokenizerKind::kByte;  // (model with model.path, unless given)
  std::int64_t seq_len = 0;
  TextSplit split = TextSplit::kNone;
  TemplateConfig prompt_template;        // data.template
  bool train_on_prompt = false;
  bool skip_invalid = false;
  std::string cache_dir = ".cache/tailor";
  OverlongPolicy overlong = OverlongPolicy::kSplit;
  PackingMode packing = PackingMode::kPack;
  std::int64_t max_prompt_tokens = 0;    // preference pairs: the prompt's limit (0: seq_len / 2)
  std::string valid;
  double valid_fraction = 0.0;
};

struct TrainConfig {
  std::int64_t steps = 0;                // exactly one of steps and epochs is given; the trainer
  std::int64_t epochs = 0;               // resolves epochs into steps once the data is packed
  std::uint64_t seed = 0;
  std::int64_t global_batch = 0;
  std::int64_t micro_batch = 0;          // 0 (`auto`): global_batch / parallel.data
  std::string resume = "auto";           // auto | never | PATH (a checkpoints/step_<N> directory)
  std::int64_t log_every = 1;
  std::int64_t max_skipped_steps = 5;
  std::int64_t eval_every = 0;
  std::vector<EvalMetric> eval_metrics;  // generated on data.valid at every evaluation
  std::int64_t eval_max_records = 100;   // dev records generated per evaluation (0: all)
  std::int64_t eval_max_new_tokens = 128;
  std::int64_t early_stopping_patience = 0;  // evaluations without improvement of
                                             // checkpoint.keep_best's metric (0: never stop)
  Recompute recompute = Recompute::kNone;
};

// objective: what training minimizes (src/objective); it owns the loss normalization and the dev
// score.
struct ObjectiveConfig {
  ObjectiveType type = ObjectiveType::kCausalLm;  // causal_lm: mean NLL of the loss-carrying
                                                  // target tokens of each step
  // Preference objectives (dpo, cpo, orpo, simpo; defaults as TRL's):
  double beta = 0.1;             // the scale of the log-probability (ratio) in the loss
  DpoLoss dpo_loss = DpoLoss::kSigmoid;  // dpo: sigmoid (DPO) or ipo (IPO's squared loss)
  // dpo: where the starting model's log-probabilities come from. auto: the policy with its
  // adapters off under PEFT, else precomputed; precomputed: one pass before training, cached
  // next to the tokenized data; model: adapters off, or a frozen copy without PEFT.
  ReferenceMode reference = ReferenceMode::kAuto;
  double label_smoothing = 0.0;  // dpo sigmoid, cpo, simpo: conservative DPO's noise rate
  double gamma = 0.5;            // simpo: the target reward margin
  double nll_weight = 1.0;       // cpo, orpo: weight of the NLL of the chosen answers
};

// Whether `type` trains on preference pairs.
[[nodiscard]] constexpr bool is_preference(ObjectiveType type) noexcept {
  return type != ObjectiveType::kCausalLm;
}

struct OptimizerConfig {
  OptimizerName name = OptimizerName::kAdamW;
  double lr = 0.0;
  double beta1 = 0.9;                    // from `betas: [b1, b2]`
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  double grad_clip = 1.0;
  int zero = 0;
  MomentsDType moments = MomentsDType::kF32;
};

struct ScheduleConfig {
  ScheduleType type = ScheduleType::kCosine;
  std::int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;             // or: warmup = ceil(ratio * train.steps) (not both)
  double min_lr_ratio = 0.0;
};

struct CheckpointConfig {
  std::int64_t every_steps = 0;
  std::int64_t keep_last = 3;
  std::int64_t keep_every = 0;
  BestMetric keep_best = BestMetric::kNone;  // also keep the best evaluation's checkpoint
};

struct ParallelConfig {
  std::int64_t tensor = 1;
  std::int64_t data = 0;                 // 0 (`auto`): world size / tensor
};

struct RuntimeConfig {
  RuntimeDevice device = RuntimeDevice::kAuto;
  std::int64_t threads = 0;              // 0: all cores / ranks
  RuntimeDType dtype = RuntimeDType::kAuto;
  RuntimeAttention attention = RuntimeAttention::kAuto;
  log::Level log_level = log::Level::kInfo;
  double watchdog_s = 600.0;
  std::int64_t loss_chunk_tokens = 0;    // 0: auto (model::Transformer::set_loss_chunk_tokens)
};

struct PeftConfig {
  PeftMethod method = PeftMethod::kNone;
  std::int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  // Empty: the method's default (LoRA: q_proj, v_proj; IA3: the family's, as peft's).
  std::vector<std::string> target_modules;  // or [all-linear]
  std::vector<std::string> feedforward_modules;  // IA3: targets scaled on their input
  bool use_rslora = false;
  bool use_dora = false;  // LoRA: DoRA's magnitude and direction (decision 40)
  std::int64_t bottleneck = 64;
  std::int64_t num_virtual_tokens = 20;
  std::string prompt_init_text;
  std::string adapter;
};

// prompt_search: candidate prompts scored on the dev set without training (`tailor prompt-search`).
// Each candidate is data.template with the candidate's keys (preset, system, translation,
// few_shot_file, few_shot_count) applied over it.
struct PromptCandidateConfig {
  std::string name;
  TemplateConfig tmpl;
};

struct PromptSearchConfig {
  // list: score `candidates`; few_shot: choose `shots` demonstrations and their order from
  // `pool` by greedy forward selection on the search split, beside `random_seeds` random draws.
  PromptStrategy strategy = PromptStrategy::kList;
  std::string pool;                 // few_shot: JSONL of {prompt, completion} demonstrations
  std::int64_t shots = 0;           // few_shot: how many to choose
  std::int64_t random_seeds = 3;    // few_shot: random draws of `shots` scored as the baseline
  // Budget of the search proper (listed candidates, greedy tries; 0: none): the base prompt and
  // the random baselines are always scored.
  std::int64_t max_evaluations = 0;
  double max_seconds = 0.0;
  PromptMetric metric = PromptMetric::kLoss;
  std::int64_t max_records = 0;
  std::int64_t max_new_tokens = 128;
  // > 0: this many dev records (a train.seed shuffle) rank the candidates; the rest are the
  // held-out split, scored for every candidate and reported (decision 49). 0: all rank.
  std::int64_t search_records = 0;
  std::vector<PromptCandidateConfig> candidates;
};

struct ExperimentConfig {
  OutputConfig output;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  ObjectiveConfig objective;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  CheckpointConfig checkpoint;
  ParallelConfig parallel;
  RuntimeConfig runtime;
  PeftConfig peft;
  PromptSearchConfig prompt_search;

  std::string source;                    // the config file's path, as given (not a key)
};

// All problems found in one config, each a complete one-line message. what() joins them with
// newlines; exit code 2 like every UserError.
class ConfigError : public UserErrors {
 public:
  using UserErrors::UserErrors;
};

// Reads, overrides, fills defaults, validates. Throws ConfigError listing every problem; a file
// that cannot be read or parsed is a ConfigError too (`file: cannot read: ...`,
// `file:line:col: YAML syntax error: ...`).
[[nodiscard]] ExperimentConfig load_config(const std::string& path,
                                           const std::vector<std::string>& overrides = {});

// A chat template file (configs/templates/*.yaml, docs/data.md). Throws ConfigError, each problem
// one line `file:line:col: key: reason`.
[[nodiscard]] ChatTemplateConfig load_chat_template(const std::string& path);

// Same, from text already in memory; `name` stands for the file name in messages.
[[nodiscard]] ExperimentConfig load_config_text(const std::string& text, const std::string& name,
                                                const std::vector<std::string>& overrides = {});

// The resolved config (every key, defaults filled) as YAML that load_config_text accepts and that
// round-trips to an equal ExperimentConfig. Written to every run directory.
[[nodiscard]] std::string to_yaml(const ExperimentConfig& config);

// Resuming: the keys that differ between a checkpoint's config and the current one, as lines
// "key.path: <saved> in the checkpoint, <now> now", leaving out the keys a resumed run may change
// (resume_mutable_keys, "section.key" each: the rows of the schema tables marked
// Resume::kMayChange — steps, logging and checkpoint cadence, layout, threads, output and cache
// directories).
[[nodiscard]] std::vector<std::string> resume_conflicts(const ExperimentConfig& saved,
                                                        const ExperimentConfig& now);
[[nodiscard]] std::vector<std::string> resume_mutable_keys();

}  // namespace tailor::config
