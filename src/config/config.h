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

struct OutputConfig {
  std::string dir;  // required: the run directory
};

struct ModelConfig {
  // A Hugging Face model directory (config.json, *.safetensors, tokenizer files) to fine-tune.
  // When set, the architecture keys below come from its config.json and must not be given.
  std::string path;
  ModelFamily family = ModelFamily::kLlama;  // llama | gpt2: sets the defaults of norm/position/mlp
  std::int64_t vocab_size = 0;           // required
  std::int64_t hidden_size = 0;          // required
  std::int64_t num_layers = 0;           // required
  std::int64_t num_heads = 0;            // required
  std::int64_t num_kv_heads = 0;         // default: num_heads
  std::int64_t head_dim = 0;             // default: hidden_size / num_heads
  std::int64_t intermediate_size = 0;    // required
  std::int64_t max_position_embeddings = 2048;
  NormKind norm = NormKind::kRmsNorm;    // rmsnorm | layernorm   (gpt2 default: layernorm)
  double norm_eps = 1e-5;
  PositionKind position = PositionKind::kRope;  // rope | learned        (gpt2 default: learned)
  double rope_theta = 10000.0;
  MlpKind mlp = MlpKind::kSwiGLU;        // swiglu | gelu         (gpt2 default: gelu)
  bool attention_bias = false;           // (gpt2 default: true)
  bool mlp_bias = false;                 // (gpt2 default: true)
  bool tie_embeddings = false;           // (gpt2 default: true)
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
};

struct ChatTemplateConfig {
  std::string name;                      // default: the file's stem ("custom" inline)
  std::string bos;                       // text written once at the start ("" = none)
  bool tokenizer_bos = false;            // open with the tokenizer's BOS id instead
  bool trim = false;                     // strip whitespace around each message's content
  SystemPlacement system_placement = SystemPlacement::kTurn;  // turn | first_user (inside the first user turn)
  ChatRoleConfig system, user, assistant;
  std::string assistant_final_suffix;    // the last assistant turn's suffix (default: suffix)
  PromptCompletion prompt_completion = PromptCompletion::kChat;  // chat | text (prompt + completion as they are)
  std::vector<std::string> special_tokens; // tokens the tokenizer is expected to know
};

// data.template: how JSONL records become text (src/data/template.h).
struct TemplateConfig {
  std::string preset = "plain";          // plain | llama3 | chatml | mistral | PATH of a template
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
  std::string train;                     // required: path of the training data (the first source)
  std::vector<DataSourceConfig> sources; // data.train as sources: one {train, 1.0}, or the list
  bool train_is_list = false;            // data.train was written as a list of {path, weight}
  DataFormat format = DataFormat::kText; // text | jsonl (record kind detected per line)
  TokenizerKind tokenizer = TokenizerKind::kByte;  // byte: 256 byte tokens + EOS (id 256); model: the
                                         // tokenizer files of model.path (default with it)
  std::int64_t seq_len = 0;              // required: tokens per packed sequence
  TextSplit split = TextSplit::kNone;    // none | paragraph | line: how a text file splits into documents
  TemplateConfig prompt_template;        // data.template (jsonl only)
  bool train_on_prompt = false;          // jsonl: loss on prompt tokens too (default: response only)
  bool skip_invalid = false;             // jsonl: skip bad lines (counted per reason) instead of failing
  std::string cache_dir = ".cache/tailor";  // tokenized caches (tailor prepare), under the CWD
  OverlongPolicy overlong = OverlongPolicy::kSplit;  // split | truncate | drop: documents longer than seq_len
  PackingMode packing = PackingMode::kPack;  // pack | pad: documents concatenated, or one per sequence
  std::string valid;                     // a validation file (same format and template) ...
  double valid_fraction = 0.0;           // ... or this fraction of the training documents, held out
};

struct TrainConfig {
  std::int64_t steps = 0;                // required, >= 1
  std::uint64_t seed = 0;
  std::int64_t global_batch = 0;         // required: sequences per optimizer step
  std::int64_t micro_batch = 0;          // 0 (`auto`): global_batch / parallel.data
  std::string resume = "auto";           // auto | never | PATH (a checkpoints/step_<N> directory)
  std::int64_t log_every = 1;            // progress line and metrics.jsonl record every N steps
  std::int64_t max_skipped_steps = 5;    // stop after this many consecutive non-finite steps
  std::int64_t eval_every = 0;           // validation loss every N steps (0: at the end only)
  // Activation recomputation: none | selective (norm outputs and the MLP activation are
  // recomputed in backward) | full (each layer's forward is rerun from its input in backward).
  Recompute recompute = Recompute::kNone;
};

struct OptimizerConfig {
  OptimizerName name = OptimizerName::kAdamW;  // adamw | sgd
  double lr = 0.0;                       // required, > 0
  double beta1 = 0.9;                    // from `betas: [b1, b2]`
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;             // decoupled; never applied to norms and biases
  double momentum = 0.0;                 // sgd only
  double grad_clip = 1.0;                // global-norm clipping; 0 disables
  int zero = 0;                          // 0 | 1 (ZeRO-1 sharding over the DP group)
  MomentsDType moments = MomentsDType::kF32;  // f32 | bf16 (AdamW moments; bf16 on CUDA only)
};

struct ScheduleConfig {
  ScheduleType type = ScheduleType::kCosine;  // constant | linear | cosine
  std::int64_t warmup_steps = 0;         // linear warmup from 0, must be < train.steps
  double min_lr_ratio = 0.0;             // final lr = lr * min_lr_ratio (linear and cosine)
};

struct CheckpointConfig {
  std::int64_t every_steps = 0;          // 0: no periodic checkpoints (the last step is saved
                                         // whenever every_steps > 0, and on a stop request)
  std::int64_t keep_last = 3;            // >= 1: newest committed checkpoints kept
  std::int64_t keep_every = 0;           // also keep steps that are multiples of this (0: none)
};

struct ParallelConfig {
  std::int64_t tensor = 1;
  std::int64_t data = 0;                 // 0 (`auto`): world size / tensor
};

struct RuntimeConfig {
  RuntimeDevice device = RuntimeDevice::kAuto;  // auto | cpu | cuda
  std::int64_t threads = 0;              // CPU threads per rank (0: all cores / ranks)
  RuntimeDType dtype = RuntimeDType::kAuto;  // auto (bf16 on CUDA, f32 on the CPU) | f32 | f64 | bf16
  log::Level log_level = log::Level::kInfo;  // debug | info | warn | error
  double watchdog_s = 600.0;             // a step collective stuck this long ends the job (0: off)
};

struct PeftConfig {
  PeftMethod method = PeftMethod::kNone;  // none | lora | prompt_tuning | adapter
  // LoRA (method: lora)
  std::int64_t rank = 8;                 // r
  double alpha = 16.0;                   // scale = alpha / r (alpha / sqrt(r) with use_rslora)
  double dropout = 0.0;                  // on the adapter input, training batches only
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // or [all-linear]
  bool use_rslora = false;
  // Bottleneck adapters (method: adapter): width of the down-projection.
  std::int64_t bottleneck = 64;
  // Prompt tuning (method: prompt_tuning): n trainable virtual-token embeddings that open every
  // document of a packed row (they count toward data.seq_len); initialized N(0, init_std), or
  // from the embeddings of this text's tokens (repeated / truncated to n), as PEFT's TEXT init.
  std::int64_t num_virtual_tokens = 20;
  std::string prompt_init_text;
  // A PEFT adapter directory to start from (continue training): LoRA (its adapter_config.json
  // sets rank, alpha, dropout, target_modules and use_rslora) or prompt tuning (it sets
  // num_virtual_tokens).
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
  PromptMetric metric = PromptMetric::kLoss;  // loss | bleu | chrf | rouge_l | exact_match
  std::int64_t max_records = 0;          // dev records per candidate (0: all)
  std::int64_t max_new_tokens = 128;     // generation metrics
  std::vector<PromptCandidateConfig> candidates;
};

struct ExperimentConfig {
  OutputConfig output;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  CheckpointConfig checkpoint;
  ParallelConfig parallel;
  RuntimeConfig runtime;
  PeftConfig peft;
  PromptSearchConfig prompt_search;

  std::string source;                    // the config file's path, as given
};

// All problems found in one config, each a complete one-line message. what() joins them with
// newlines; exit code 2 like every UserError.
class ConfigError : public UserError {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  [[nodiscard]] const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
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
// (resume_mutable_keys: steps, logging and checkpoint cadence, layout, threads, output and cache
// directories; a name ending in '.' stands for its whole section).
[[nodiscard]] std::vector<std::string> resume_conflicts(const ExperimentConfig& saved,
                                                        const ExperimentConfig& now);
[[nodiscard]] std::vector<std::string> resume_mutable_keys();

}  // namespace tailor::config
