// Tests of src/config: a full config and its values, defaults (llama and gpt2), overrides, the
// to_yaml round trip, and the exact problem lines for malformed configs (table-driven).
//
// Tests run from the repository root (the environment below makes sure), so data.train can name
// the bundled dataset by a relative path, as a user's config would.
#include "config/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace tailor::config {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTrainFile = "datasets/devils-dictionary/devils_dictionary.txt";

class RepoRootEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { fs::current_path(TAILOR_SOURCE_DIR); }
};
[[maybe_unused]] ::testing::Environment* const kRepoRoot =
    ::testing::AddGlobalTestEnvironment(new RepoRootEnvironment);

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            fmt::format("tailor_config_test_{}_{}", ::getpid(), counter.fetch_add(1));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const fs::path& path() const { return path_; }

  fs::path write(const std::string& name, const std::string& text) const {
    const fs::path p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out << text;
    return p;
  }

 private:
  fs::path path_;
};

// The smallest valid config, one flow-style section per line (lines 1 to 5, in this order).
const std::vector<std::pair<std::string, std::string>> kBaseLines = {
    {"output", "output: {dir: runs/t}"},
    {"model",
     "model: {vocab_size: 300, hidden_size: 64, num_layers: 2, num_heads: 4, "
     "intermediate_size: 128}"},
    {"data", fmt::format("data: {{train: {}, seq_len: 32}}", kTrainFile)},
    {"train", "train: {steps: 10, global_batch: 4}"},
    {"optimizer", "optimizer: {lr: 0.001}"},
};

// The base config without the named sections (the others keep their order).
std::string base_without(const std::vector<std::string>& drop = {}) {
  std::string text;
  for (const auto& [section, line] : kBaseLines) {
    if (std::find(drop.begin(), drop.end(), section) == drop.end()) text += line + "\n";
  }
  return text;
}

const std::string kBase = base_without();

// The problem lines of a config that must fail (a failure of the test if it loads).
std::vector<std::string> problems_of(const std::string& yaml,
                                     const std::vector<std::string>& overrides = {}) {
  try {
    (void)load_config_text(yaml, "cfg.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "config loaded without error:\n" << yaml;
  return {};
}

void expect_same(const ExperimentConfig& a, const ExperimentConfig& b) {
  EXPECT_EQ(a.output.dir, b.output.dir);
  EXPECT_EQ(a.model.family, b.model.family);
  EXPECT_EQ(a.model.vocab_size, b.model.vocab_size);
  EXPECT_EQ(a.model.hidden_size, b.model.hidden_size);
  EXPECT_EQ(a.model.num_layers, b.model.num_layers);
  EXPECT_EQ(a.model.num_heads, b.model.num_heads);
  EXPECT_EQ(a.model.num_kv_heads, b.model.num_kv_heads);
  EXPECT_EQ(a.model.head_dim, b.model.head_dim);
  EXPECT_EQ(a.model.intermediate_size, b.model.intermediate_size);
  EXPECT_EQ(a.model.max_position_embeddings, b.model.max_position_embeddings);
  EXPECT_EQ(a.model.norm, b.model.norm);
  EXPECT_EQ(a.model.norm_eps, b.model.norm_eps);
  EXPECT_EQ(a.model.position, b.model.position);
  EXPECT_EQ(a.model.rope_theta, b.model.rope_theta);
  EXPECT_EQ(a.model.mlp, b.model.mlp);
  EXPECT_EQ(a.model.attention_bias, b.model.attention_bias);
  EXPECT_EQ(a.model.mlp_bias, b.model.mlp_bias);
  EXPECT_EQ(a.model.tie_embeddings, b.model.tie_embeddings);
  EXPECT_EQ(a.model.init_std, b.model.init_std);
  EXPECT_EQ(a.data.train, b.data.train);
  EXPECT_EQ(a.data.format, b.data.format);
  EXPECT_EQ(a.data.tokenizer, b.data.tokenizer);
  EXPECT_EQ(a.data.seq_len, b.data.seq_len);
  EXPECT_EQ(a.data.split, b.data.split);
  EXPECT_EQ(a.data.format == DataFormat::kJsonl ? a.data.prompt_template.translation : "",
            b.data.format == DataFormat::kJsonl ? b.data.prompt_template.translation : "");
  EXPECT_EQ(a.data.train_on_prompt, b.data.train_on_prompt);
  EXPECT_EQ(a.data.skip_invalid, b.data.skip_invalid);
  EXPECT_EQ(a.data.cache_dir, b.data.cache_dir);
  EXPECT_EQ(a.data.valid, b.data.valid);
  EXPECT_EQ(a.data.overlong, b.data.overlong);
  EXPECT_EQ(a.data.valid_fraction, b.data.valid_fraction);
  EXPECT_EQ(a.train.steps, b.train.steps);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.global_batch, b.train.global_batch);
  EXPECT_EQ(a.train.micro_batch, b.train.micro_batch);
  EXPECT_EQ(a.train.resume, b.train.resume);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.train.epochs, b.train.epochs);
  EXPECT_EQ(a.train.eval_metrics, b.train.eval_metrics);
  EXPECT_EQ(a.train.eval_max_records, b.train.eval_max_records);
  EXPECT_EQ(a.train.eval_max_new_tokens, b.train.eval_max_new_tokens);
  EXPECT_EQ(a.train.early_stopping_patience, b.train.early_stopping_patience);
  EXPECT_EQ(a.optimizer.name, b.optimizer.name);
  EXPECT_EQ(a.optimizer.lr, b.optimizer.lr);
  EXPECT_EQ(a.optimizer.beta1, b.optimizer.beta1);
  EXPECT_EQ(a.optimizer.beta2, b.optimizer.beta2);
  EXPECT_EQ(a.optimizer.eps, b.optimizer.eps);
  EXPECT_EQ(a.optimizer.weight_decay, b.optimizer.weight_decay);
  EXPECT_EQ(a.optimizer.momentum, b.optimizer.momentum);
  EXPECT_EQ(a.optimizer.grad_clip, b.optimizer.grad_clip);
  EXPECT_EQ(a.optimizer.zero, b.optimizer.zero);
  EXPECT_EQ(a.schedule.type, b.schedule.type);
  EXPECT_EQ(a.schedule.warmup_steps, b.schedule.warmup_steps);
  EXPECT_EQ(a.schedule.warmup_ratio, b.schedule.warmup_ratio);
  EXPECT_EQ(a.schedule.min_lr_ratio, b.schedule.min_lr_ratio);
  EXPECT_EQ(a.checkpoint.every_steps, b.checkpoint.every_steps);
  EXPECT_EQ(a.checkpoint.keep_last, b.checkpoint.keep_last);
  EXPECT_EQ(a.checkpoint.keep_best, b.checkpoint.keep_best);
  EXPECT_EQ(a.parallel.tensor, b.parallel.tensor);
  EXPECT_EQ(a.parallel.data, b.parallel.data);
  EXPECT_EQ(a.runtime.device, b.runtime.device);
  EXPECT_EQ(a.runtime.threads, b.runtime.threads);
  EXPECT_EQ(a.runtime.dtype, b.runtime.dtype);
  EXPECT_EQ(a.runtime.log_level, b.runtime.log_level);
  EXPECT_EQ(a.peft.method, b.peft.method);
  EXPECT_EQ(a.source, b.source);
}

// Every key set, most to a value other than its default.
const std::string kFullConfig = fmt::format(
    R"(# a full config
output:
  dir: runs/full
model:
  family: llama
  vocab_size: 512
  hidden_size: 96
  num_layers: 3
  num_heads: 6
  num_kv_heads: 2
  head_dim: 16
  intermediate_size: 256
  max_position_embeddings: 128
  norm: layernorm
  norm_eps: 1.0e-6
  position: rope
  rope_theta: 500000
  mlp: gelu
  attention_bias: true
  mlp_bias: false
  tie_embeddings: true
  init_std: 0.01
data:
  train: {}
  format: text
  tokenizer: byte
  seq_len: 64
  split: paragraph
train:
  steps: 200
  seed: 18446744073709551615
  global_batch: 8
  micro_batch: 2
  resume: never
  log_every: 10
optimizer:
  name: sgd
  lr: 3e-4
  betas: [0.85, 0.95]
  eps: 1e-6
  weight_decay: 0.1
  momentum: 0.9
  grad_clip: 0
  zero: 0
schedule:
  type: linear
  warmup_steps: 20
  min_lr_ratio: 0.1
checkpoint:
  every_steps: 0
  keep_last: 5
parallel:
  tensor: 1
  data: 1
runtime:
  device: cpu
  threads: 2
  dtype: f64
  log_level: debug
peft:
  method: none
)",
    kTrainFile);

TEST(ConfigLoad, FullConfigValues) {
  const ExperimentConfig c = load_config_text(kFullConfig, "full.yaml");
  EXPECT_EQ(c.source, "full.yaml");
  EXPECT_EQ(c.output.dir, "runs/full");
  EXPECT_EQ(c.model.family, ModelFamily::kLlama);
  EXPECT_EQ(c.model.vocab_size, 512);
  EXPECT_EQ(c.model.hidden_size, 96);
  EXPECT_EQ(c.model.num_layers, 3);
  EXPECT_EQ(c.model.num_heads, 6);
  EXPECT_EQ(c.model.num_kv_heads, 2);
  EXPECT_EQ(c.model.head_dim, 16);
  EXPECT_EQ(c.model.intermediate_size, 256);
  EXPECT_EQ(c.model.max_position_embeddings, 128);
  EXPECT_EQ(c.model.norm, NormKind::kLayerNorm);
  EXPECT_EQ(c.model.norm_eps, 1.0e-6);
  EXPECT_EQ(c.model.position, PositionKind::kRope);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.mlp, MlpKind::kGelu);
  EXPECT_TRUE(c.model.attention_bias);
  EXPECT_FALSE(c.model.mlp_bias);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.init_std, 0.01);
  EXPECT_EQ(c.data.train, kTrainFile);
  EXPECT_EQ(c.data.format, DataFormat::kText);
  EXPECT_EQ(c.data.tokenizer, TokenizerKind::kByte);
  EXPECT_EQ(c.data.seq_len, 64);
  EXPECT_EQ(c.data.split, TextSplit::kParagraph);
  EXPECT_EQ(c.train.steps, 200);
  EXPECT_EQ(c.train.seed, 18446744073709551615ULL);
  EXPECT_EQ(c.train.global_batch, 8);
  EXPECT_EQ(c.train.micro_batch, 2);
  EXPECT_EQ(c.train.resume, "never");
  EXPECT_EQ(c.train.log_every, 10);
  EXPECT_EQ(c.optimizer.name, OptimizerName::kSgd);
  EXPECT_EQ(c.optimizer.lr, 3e-4);
  EXPECT_EQ(c.optimizer.beta1, 0.85);
  EXPECT_EQ(c.optimizer.beta2, 0.95);
  EXPECT_EQ(c.optimizer.eps, 1e-6);
  EXPECT_EQ(c.optimizer.weight_decay, 0.1);
  EXPECT_EQ(c.optimizer.momentum, 0.9);
  EXPECT_EQ(c.optimizer.grad_clip, 0.0);
  EXPECT_EQ(c.optimizer.zero, 0);
  EXPECT_EQ(c.schedule.type, ScheduleType::kLinear);
  EXPECT_EQ(c.schedule.warmup_steps, 20);
  EXPECT_EQ(c.schedule.min_lr_ratio, 0.1);
  EXPECT_EQ(c.checkpoint.every_steps, 0);
  EXPECT_EQ(c.checkpoint.keep_last, 5);
  EXPECT_EQ(c.parallel.tensor, 1);
  EXPECT_EQ(c.parallel.data, 1);
  EXPECT_EQ(c.runtime.device, RuntimeDevice::kCpu);
  EXPECT_EQ(c.runtime.threads, 2);
  EXPECT_EQ(c.runtime.dtype, RuntimeDType::kF64);
  EXPECT_EQ(c.runtime.log_level, log::Level::kDebug);
  EXPECT_EQ(c.peft.method, PeftMethod::kNone);
}

TEST(ConfigLoad, FromFile) {
  const TempDir dir;
  const fs::path path = dir.write("full.yaml", kFullConfig);
  const ExperimentConfig c = load_config(path.string(), {"train.steps=70"});
  EXPECT_EQ(c.source, path.string());
  EXPECT_EQ(c.train.steps, 70);
  expect_same(c, load_config_text(kFullConfig, path.string(), {"train.steps=70"}));
}

TEST(ConfigLoad, Defaults) {
  const ExperimentConfig c = load_config_text(kBase, "cfg.yaml");
  const ExperimentConfig defaults;
  EXPECT_EQ(c.model.family, ModelFamily::kLlama);
  EXPECT_EQ(c.model.num_kv_heads, 4);  // = num_heads
  EXPECT_EQ(c.model.head_dim, 16);     // = 64 / 4
  EXPECT_EQ(c.model.max_position_embeddings, 2048);
  EXPECT_EQ(c.model.norm, NormKind::kRmsNorm);
  EXPECT_EQ(c.model.norm_eps, 1e-5);
  EXPECT_EQ(c.model.position, PositionKind::kRope);
  EXPECT_EQ(c.model.rope_theta, 10000.0);
  EXPECT_EQ(c.model.mlp, MlpKind::kSwiGLU);
  EXPECT_FALSE(c.model.attention_bias);
  EXPECT_FALSE(c.model.mlp_bias);
  EXPECT_FALSE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.init_std, 0.02);
  EXPECT_EQ(c.data.format, DataFormat::kText);
  EXPECT_EQ(c.data.tokenizer, TokenizerKind::kByte);
  EXPECT_EQ(c.data.split, TextSplit::kNone);
  EXPECT_EQ(c.train.seed, 0u);
  EXPECT_EQ(c.train.micro_batch, 0);  // auto: global_batch / parallel.data, resolved at start  // = global_batch / parallel.data
  EXPECT_EQ(c.train.resume, "auto");
  EXPECT_EQ(c.train.log_every, 1);
  EXPECT_EQ(c.optimizer.name, OptimizerName::kAdamW);
  EXPECT_EQ(c.optimizer.beta1, 0.9);
  EXPECT_EQ(c.optimizer.beta2, 0.999);
  EXPECT_EQ(c.optimizer.eps, 1e-8);
  EXPECT_EQ(c.optimizer.weight_decay, 0.0);
  EXPECT_EQ(c.optimizer.momentum, 0.0);
  EXPECT_EQ(c.optimizer.grad_clip, 1.0);
  EXPECT_EQ(c.optimizer.zero, 0);
  EXPECT_EQ(c.schedule.type, ScheduleType::kCosine);
  EXPECT_EQ(c.schedule.warmup_steps, 0);
  EXPECT_EQ(c.schedule.min_lr_ratio, 0.0);
  EXPECT_EQ(c.checkpoint.every_steps, 0);
  EXPECT_EQ(c.checkpoint.keep_last, 3);
  EXPECT_EQ(c.parallel.tensor, 1);
  EXPECT_EQ(c.parallel.data, 0);  // auto: world size / parallel.tensor
  EXPECT_EQ(c.runtime.device, RuntimeDevice::kAuto);
  EXPECT_EQ(c.runtime.threads, 0);
  EXPECT_EQ(c.runtime.dtype, RuntimeDType::kAuto);
  EXPECT_EQ(c.runtime.log_level, log::Level::kInfo);
  EXPECT_EQ(c.peft.method, PeftMethod::kNone);
  EXPECT_EQ(defaults.model.family, c.model.family);
}

TEST(ConfigLoad, QuickstartConfigValidates) {
  const ExperimentConfig c = load_config("configs/quickstart.yaml");
  EXPECT_EQ(c.data.train, kTrainFile);
  expect_same(c, load_config_text(to_yaml(c), "configs/quickstart.yaml"));
}

// Issue 19, item 8: the documented way to shorten a run works on the bundled configs (their
// warmup is a ratio of the steps, not 20 steps that 10 could not hold).
TEST(ConfigLoad, BundledConfigsShortenWithAnOverride) {
  for (const char* name : {"quickstart", "translation-example", "chat-example"}) {
    const std::string path = fmt::format("configs/{}.yaml", name);
    const ExperimentConfig c = load_config(path, {"train.steps=10"});
    EXPECT_EQ(c.train.steps, 10) << path;
    EXPECT_GT(c.schedule.warmup_ratio, 0.0) << path;
  }
  // Switching a config to epochs, or to a warmup in steps, is an override too (0: not used).
  EXPECT_EQ(
      load_config("configs/quickstart.yaml", {"train.steps=0", "train.epochs=2"}).train.epochs, 2);
  EXPECT_EQ(load_config("configs/quickstart.yaml",
                        {"schedule.warmup_ratio=0", "schedule.warmup_steps=5"})
                .schedule.warmup_steps,
            5);
}

// Issue 19, items 11 and 12: the new keys round-trip; a config given in epochs resolves to steps
// (written) and notes the epochs as a comment, so the resolved config loads back.
TEST(ConfigRoundTrip, EpochsMetricsAndBestCheckpoint) {
  const std::string valid = "datasets/gettext-translations/dev.sample.jsonl";
  ExperimentConfig c = load_config_text(
      base_without({"train"}) +
          "train: {epochs: 3, global_batch: 4, eval_every: 5, eval_metrics: [chrf, bleu],\n"
          "        eval_max_records: 7, early_stopping_patience: 2}\n"
          "checkpoint: {keep_best: chrf}\n"
          "schedule: {warmup_ratio: 0.1}\n",
      "cfg.yaml", {"data.format=jsonl", "data.train=" + valid, "data.valid=" + valid});
  EXPECT_EQ(c.train.steps, 0);
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.eval_metrics, (std::vector<EvalMetric>{EvalMetric::kChrf, EvalMetric::kBleu}));
  EXPECT_EQ(c.train.eval_max_records, 7);
  EXPECT_EQ(c.train.early_stopping_patience, 2);
  EXPECT_EQ(c.checkpoint.keep_best, BestMetric::kChrf);
  EXPECT_DOUBLE_EQ(c.schedule.warmup_ratio, 0.1);
  const std::string yaml = to_yaml(c);
  EXPECT_NE(yaml.find("  epochs: 3\n"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("  steps:"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  eval_metrics: [chrf, bleu]\n"), std::string::npos) << yaml;
  expect_same(c, load_config_text(yaml, "cfg.yaml"));
  c.train.steps = 42;  // what the trainer resolves it to
  const std::string resolved = to_yaml(c);
  EXPECT_NE(resolved.find("  steps: 42\n  # epochs: 3 (resolved into steps)\n"), std::string::npos)
      << resolved;
  EXPECT_EQ(load_config_text(resolved, "resolved.yaml").train.steps, 42);
  // Runs that use none of the new keys write none of them.
  const std::string plain = to_yaml(load_config_text(kBase, "cfg.yaml"));
  for (const char* key : {"epochs", "eval_metrics", "eval_max_records", "eval_max_new_tokens",
                          "early_stopping_patience", "warmup_ratio", "keep_best"})
    EXPECT_EQ(plain.find(key), std::string::npos) << key;
}

// IA3's targets default to the family's (the model decides): not written unless given, so the
// resolved config does not pin LoRA's default on it; LoRA's default is written out as before.
TEST(ConfigLoad, Ia3TargetsAreWrittenOnlyWhenGiven) {
  const ExperimentConfig ia3 = load_config_text(kBase, "cfg.yaml", {"peft.method=ia3"});
  EXPECT_TRUE(ia3.peft.target_modules.empty());
  EXPECT_TRUE(ia3.peft.feedforward_modules.empty());
  const std::string yaml = to_yaml(ia3);
  EXPECT_EQ(yaml.find("target_modules"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("feedforward_modules"), std::string::npos) << yaml;
  expect_same(ia3, load_config_text(yaml, "cfg.yaml"));
  const ExperimentConfig given = load_config_text(
      kBase, "cfg.yaml",
      {"peft.method=ia3", "peft.target_modules=[k_proj, down_proj]",
       "peft.feedforward_modules=[down_proj]"});
  const std::string written = to_yaml(given);
  EXPECT_NE(written.find("  target_modules: [k_proj, down_proj]\n  feedforward_modules: [down_proj]\n"),
            std::string::npos)
      << written;
  expect_same(given, load_config_text(written, "cfg.yaml"));
  const std::string lora = to_yaml(load_config_text(kBase, "cfg.yaml", {"peft.method=lora"}));
  EXPECT_NE(lora.find("  target_modules: [q_proj, v_proj]\n"), std::string::npos) << lora;
  EXPECT_EQ(lora.find("feedforward_modules"), std::string::npos) << lora;
}

// runtime.attention (issue 20, item 1): a choice, written only when not auto (so other runs'
// resolved configs stay byte-identical), round-tripped when given.
TEST(ConfigLoad, RuntimeAttentionIsWrittenOnlyWhenChosen) {
  const ExperimentConfig plain = load_config_text(kBase, "cfg.yaml");
  EXPECT_EQ(plain.runtime.attention, RuntimeAttention::kAuto);
  EXPECT_EQ(to_yaml(plain).find("attention:"), std::string::npos);
  const ExperimentConfig c = load_config_text(kBase, "cfg.yaml", {"runtime.attention=tailor"});
  EXPECT_EQ(c.runtime.attention, RuntimeAttention::kTailor);
  const std::string yaml = to_yaml(c);
  EXPECT_NE(yaml.find("  attention: tailor\n"), std::string::npos) << yaml;
  expect_same(c, load_config_text(yaml, "cfg.yaml"));
}

// DoRA is LoRA's use_dora (decision 40): written only when set, read back the same.
TEST(ConfigLoad, UseDoraIsWrittenOnlyWhenSet) {
  const std::string lora = to_yaml(load_config_text(kBase, "cfg.yaml", {"peft.method=lora"}));
  EXPECT_EQ(lora.find("use_dora"), std::string::npos) << lora;
  const ExperimentConfig dora =
      load_config_text(kBase, "cfg.yaml", {"peft.method=lora", "peft.use_dora=true"});
  EXPECT_TRUE(dora.peft.use_dora);
  const std::string yaml = to_yaml(dora);
  EXPECT_NE(yaml.find("  use_dora: true\n"), std::string::npos) << yaml;
  expect_same(dora, load_config_text(yaml, "cfg.yaml"));
  EXPECT_TRUE(load_config_text(yaml, "cfg.yaml").peft.use_dora);
}

TEST(ConfigLoad, EmptySectionsReadAsDefaults) {
  const ExperimentConfig c =
      load_config_text(kBase + "schedule:\nruntime: {}\npeft:\n", "cfg.yaml");
  EXPECT_EQ(c.schedule.type, ScheduleType::kCosine);
  EXPECT_EQ(c.runtime.device, RuntimeDevice::kAuto);
  EXPECT_EQ(c.peft.method, PeftMethod::kNone);
}

TEST(ConfigLoad, PeftDropoutAndPromptTuningKeys) {
  const ExperimentConfig lora =
      load_config_text(kBase, "cfg.yaml", {"peft.method=lora", "peft.dropout=0.1"});
  EXPECT_EQ(lora.peft.dropout, 0.1);
  const ExperimentConfig pt = load_config_text(kBase, "cfg.yaml", {"peft.method=prompt_tuning"});
  EXPECT_EQ(pt.peft.num_virtual_tokens, 20);
  EXPECT_EQ(pt.peft.prompt_init_text, "");
  const ExperimentConfig text = load_config_text(
      kBase, "cfg.yaml",
      {"peft.method=prompt_tuning", "peft.num_virtual_tokens=8", "peft.prompt_init_text=\"Translate: \""});
  EXPECT_EQ(text.peft.num_virtual_tokens, 8);
  EXPECT_EQ(text.peft.prompt_init_text, "Translate: ");
  expect_same(text, load_config_text(to_yaml(text), "cfg.yaml"));
  EXPECT_EQ(load_config_text(to_yaml(text), "cfg.yaml").peft.prompt_init_text, "Translate: ");
  // Other methods' resolved configs do not mention the prompt-tuning keys.
  EXPECT_EQ(to_yaml(lora).find("num_virtual_tokens"), std::string::npos);
}

TEST(ConfigLoad, Gpt2FamilyDefaults) {
  const ExperimentConfig c = load_config_text(kBase, "cfg.yaml", {"model.family=gpt2"});
  EXPECT_EQ(c.model.family, ModelFamily::kGpt2);
  EXPECT_EQ(c.model.norm, NormKind::kLayerNorm);
  EXPECT_EQ(c.model.position, PositionKind::kLearned);
  EXPECT_EQ(c.model.mlp, MlpKind::kGelu);
  EXPECT_TRUE(c.model.attention_bias);
  EXPECT_TRUE(c.model.mlp_bias);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.norm_eps, 1e-5);  // not family-dependent
}

TEST(ConfigLoad, Gpt2FamilyDefaultsYieldToUserValues) {
  const ExperimentConfig c = load_config_text(
      base_without({"model"}) +
          "model:\n  family: gpt2\n  vocab_size: 300\n  hidden_size: 64\n  num_layers: 2\n"
          "  num_heads: 4\n  intermediate_size: 128\n  norm: rmsnorm\n  mlp_bias: false\n"
          "  position: rope\n",
      "cfg.yaml");
  EXPECT_EQ(c.model.norm, NormKind::kRmsNorm);
  EXPECT_FALSE(c.model.mlp_bias);
  EXPECT_EQ(c.model.position, PositionKind::kRope);
  EXPECT_EQ(c.model.mlp, MlpKind::kGelu);
  EXPECT_TRUE(c.model.attention_bias);
  EXPECT_TRUE(c.model.tie_embeddings);
}

TEST(ConfigLoad, Gpt2LearnedPositionsAllowOddHeadDim) {
  // head_dim 15 is fine without rope.
  const ExperimentConfig c =
      load_config_text(kBase, "cfg.yaml", {"model.family=gpt2", "model.hidden_size=60"});
  EXPECT_EQ(c.model.head_dim, 15);
}

TEST(ConfigLoad, IntegersAndFloatsForms) {
  const ExperimentConfig c =
      load_config_text(kBase, "cfg.yaml",
                       {"optimizer.lr=1", "optimizer.eps=1.0e-5", "optimizer.weight_decay=+.5",
                        "model.rope_theta=1E4", "train.steps=+12", "optimizer.grad_clip=2."});
  EXPECT_EQ(c.optimizer.lr, 1.0);
  EXPECT_EQ(c.optimizer.eps, 1.0e-5);
  EXPECT_EQ(c.optimizer.weight_decay, 0.5);
  EXPECT_EQ(c.model.rope_theta, 1e4);
  EXPECT_EQ(c.train.steps, 12);
  EXPECT_EQ(c.optimizer.grad_clip, 2.0);
}

TEST(ConfigLoad, AnchorsAndAliases) {
  const ExperimentConfig c = load_config_text(
      base_without({"train"}) + "train: {steps: &n 16, global_batch: *n}\n", "cfg.yaml");
  EXPECT_EQ(c.train.steps, 16);
  EXPECT_EQ(c.train.global_batch, 16);
}

TEST(ConfigOverrides, ValuesListsAndOrder) {
  const ExperimentConfig c = load_config_text(
      kBase, "cfg.yaml",
      {"train.steps=10", "optimizer.betas=[0.9,0.95]", "output.dir=runs/x", "train.steps=25",
       "schedule.type=linear", "model.attention_bias=true", "train.seed=42", "data.split=line"});
  EXPECT_EQ(c.train.steps, 25);  // the later override wins
  EXPECT_EQ(c.optimizer.beta1, 0.9);
  EXPECT_EQ(c.optimizer.beta2, 0.95);
  EXPECT_EQ(c.output.dir, "runs/x");
  EXPECT_EQ(c.schedule.type, ScheduleType::kLinear);  // a section the file does not have
  EXPECT_TRUE(c.model.attention_bias);
  EXPECT_EQ(c.train.seed, 42u);
  EXPECT_EQ(c.data.split, TextSplit::kLine);
}

TEST(ConfigOverrides, WholeSection) {
  const ExperimentConfig c =
      load_config_text(kBase, "cfg.yaml", {"optimizer={name: sgd, lr: 0.5, momentum: 0.9}"});
  EXPECT_EQ(c.optimizer.name, OptimizerName::kSgd);
  EXPECT_EQ(c.optimizer.lr, 0.5);
  EXPECT_EQ(c.optimizer.momentum, 0.9);
}

TEST(ConfigOverrides, SpacesAroundKeyAndValue) {
  const ExperimentConfig c = load_config_text(kBase, "cfg.yaml", {" train.steps = 33 "});
  EXPECT_EQ(c.train.steps, 33);
}

TEST(ConfigOverrides, SyntaxErrorInValue) {
  const auto problems = problems_of(kBase, {"optimizer.betas=[0.9,"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rfind("<override 1>: optimizer.betas: YAML syntax error: ", 0), 0u)
      << problems[0];
}

TEST(ConfigRoundTrip, FullConfig) {
  const ExperimentConfig a = load_config_text(kFullConfig, "cfg.yaml");
  const std::string yaml = to_yaml(a);
  EXPECT_NE(yaml.find("  betas: [0.85, 0.95]\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  lr: 0.0003\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  momentum: 0.9\n"), std::string::npos) << yaml;
  expect_same(a, load_config_text(yaml, "cfg.yaml"));
  EXPECT_EQ(to_yaml(load_config_text(yaml, "cfg.yaml")), yaml);  // a fixed point
}

TEST(ConfigRoundTrip, DefaultsAndDerivedValues) {
  for (const auto& overrides : std::vector<std::vector<std::string>>{
           {},
           {"model.family=gpt2"},
           {"optimizer.lr=0.30000000000000004", "optimizer.eps=1e-300"},
           {"model.num_kv_heads=2", "train.micro_batch=1", "optimizer.weight_decay=0.1"}}) {
    const ExperimentConfig a = load_config_text(kBase, "cfg.yaml", overrides);
    const std::string yaml = to_yaml(a);
    SCOPED_TRACE(yaml);
    expect_same(a, load_config_text(yaml, "cfg.yaml"));
  }
}

TEST(ConfigRoundTrip, ResolvedYamlListsEveryKey) {
  const std::string yaml = to_yaml(load_config_text(kBase, "cfg.yaml"));
  for (const char* line :
       {"output:\n  dir: runs/t\n", "  num_kv_heads: 4\n", "  head_dim: 16\n", "  micro_batch: auto\n",
        "  norm_eps: 1e-05\n", "  rope_theta: 10000.0\n", "  grad_clip: 1.0\n",
        "  betas: [0.9, 0.999]\n", "  zero: 0\n", "peft:\n  method: none\n"}) {
    EXPECT_NE(yaml.find(line), std::string::npos) << line << "\nin\n" << yaml;
  }
}

TEST(ConfigRoundTrip, JsonlDataSection) {
  const ExperimentConfig a = load_config_text(
      kBase, "cfg.yaml",
      {"data.format=jsonl",
       std::string("data.train=[") + kTrainFile + ", {path: " + kTrainFile + ", weight: 0.5}]",
       "data.template={preset: llama3, system: \"Be brief.\\nReally\", "
       "few_shot: [{prompt: \"1+1=\", completion: \"2\"}], translation: \"{src_lang_name}: {src}\"}",
       "data.train_on_prompt=true", "data.skip_invalid=true", "data.cache_dir=/tmp/c",
       "data.valid_fraction=0.25", "data.overlong=drop"});
  ASSERT_EQ(a.data.sources.size(), 2u);
  EXPECT_EQ(a.data.sources[1].weight, 0.5);
  EXPECT_EQ(a.data.prompt_template.system, "Be brief.\nReally");
  const ExperimentConfig b = load_config_text(to_yaml(a), "cfg.yaml");
  expect_same(a, b);
  ASSERT_EQ(b.data.sources.size(), 2u);
  EXPECT_EQ(b.data.sources[0].path, kTrainFile);
  EXPECT_EQ(b.data.sources[1].weight, 0.5);
  EXPECT_TRUE(b.data.train_is_list);
  EXPECT_EQ(b.data.prompt_template.preset, "llama3");
  EXPECT_EQ(b.data.prompt_template.system, "Be brief.\nReally");
  ASSERT_EQ(b.data.prompt_template.few_shot.size(), 1u);
  EXPECT_EQ(b.data.prompt_template.few_shot[0].prompt, "1+1=");
  EXPECT_EQ(b.data.prompt_template.few_shot[0].completion, "2");
  EXPECT_EQ(b.data.prompt_template.translation, "{src_lang_name}: {src}");
  EXPECT_TRUE(b.data.train_on_prompt);
  EXPECT_TRUE(b.data.skip_invalid);
  EXPECT_EQ(b.data.cache_dir, "/tmp/c");
}

TEST(ConfigRoundTrip, StringsThatNeedQuotes) {
  const TempDir dir;
  const fs::path weird = dir.write("a b: c's \"x\" #1.txt", "text\n");
  for (const std::string out_dir :
       {"runs/with space", "123", "true", "null", "-x", "a: b", "x #y", "tab\there", "new\nline",
        "quote\"back\\slash", "[x]", "~", "1e3", ".inf", "yes", "ünïcödé"}) {
    SCOPED_TRACE(out_dir);
    ExperimentConfig a = load_config_text(kBase, "cfg.yaml");
    a.output.dir = out_dir;
    a.data.train = weird.string();
    const std::string yaml = to_yaml(a);
    expect_same(a, load_config_text(yaml, "cfg.yaml"));
  }
}

TEST(ConfigErrorType, IsAUserErrorWithEveryLine) {
  try {
    (void)load_config_text(base_without({"train"}), "cfg.yaml", {"optimizer.lr=0"});
    FAIL() << "expected a ConfigError";
  } catch (const UserError& e) {
    EXPECT_EQ(e.exit_code(), ExitCode::kUserError);
    EXPECT_EQ(e.where(), "");
    const std::string expected =
        "<override 1>: optimizer.lr: must be > 0 (got 0)\n"
        "cfg.yaml: train.steps: required key is missing\n"
        "cfg.yaml: train.global_batch: required key is missing";
    EXPECT_EQ(e.reason(), expected);
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

TEST(ConfigFile, UnreadablePaths) {
  const TempDir dir;
  const std::string missing = (dir.path() / "missing.yaml").string();
  try {
    (void)load_config(missing);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems(),
              std::vector<std::string>{missing + ": cannot read: No such file or directory"});
  }
  try {
    (void)load_config(dir.path().string());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems(),
              std::vector<std::string>{dir.path().string() + ": cannot read: Is a directory"});
  }
}

TEST(ConfigFile, ErrorsNameTheFile) {
  const TempDir dir;
  const fs::path path =
      dir.write("bad.yaml", base_without({"train"}) + "train:\n  steps: ten\n  global_batch: 4\n");
  try {
    (void)load_config(path.string());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems(),
              std::vector<std::string>{path.string() + ":6:10: train.steps: expected an integer, "
                                                       "got \"ten\""});
  }
}

TEST(ConfigFile, SyntaxErrorPosition) {
  const auto problems = problems_of("output:\n  dir: x\n bad: 1\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rfind("cfg.yaml:3:2: YAML syntax error: ", 0), 0u) << problems[0];
}

struct BadCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> overrides;
  std::vector<std::string> expected;
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

class MalformedConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedConfig, ReportsExactly) {
  const BadCase& c = GetParam();
  EXPECT_EQ(problems_of(c.yaml, c.overrides), c.expected) << "config:\n" << c.yaml;
}

// clang-format off
const BadCase kBadCases[] = {
    // ---- unknown keys and sections ----
    {"unknown_key_suggests", base_without({"optimizer"}) + "optimizer:\n  lr: 0.001\n  lrr: 0.002\n", {},
     {"cfg.yaml:7:3: optimizer.lrr: unknown key (did you mean \"lr\"?)"}},
    {"unknown_key_replaces_required", base_without({"optimizer"}) + "optimizer:\n  lrr: 0.001\n", {},
     {"cfg.yaml:6:3: optimizer.lrr: unknown key (did you mean \"lr\"?)",
      "cfg.yaml: optimizer.lr: required key is missing"}},
    {"unknown_key_no_suggestion", kBase + "runtime:\n  colour: blue\n", {},
     {"cfg.yaml:7:3: runtime.colour: unknown key"}},
    {"unknown_key_longer_typo", kBase + "modl: 1\ncheckpoint:\n  keep_lst: 2\n  everysteps: 0\n", {},
     {"cfg.yaml:6:1: modl: unknown section (did you mean \"model\"?)",
      "cfg.yaml:8:3: checkpoint.keep_lst: unknown key (did you mean \"keep_last\"?)",
      "cfg.yaml:9:3: checkpoint.everysteps: unknown key (did you mean \"every_steps\"?)"}},
    {"unknown_section_suggests", kBase + "optimiser:\n  lr: 1\n", {},
     {"cfg.yaml:6:1: optimiser: unknown section (did you mean \"optimizer\"?)"}},
    {"unknown_section_no_suggestion", kBase + "wandb: {project: x}\n", {},
     {"cfg.yaml:6:1: wandb: unknown section"}},
    {"unknown_key_in_override", kBase, {"optimizer.lrr=1"},
     {"<override 1>: optimizer.lrr: unknown key (did you mean \"lr\"?)"}},
    {"unknown_section_in_override", kBase, {"train.steps=3", "trian.steps=3"},
     {"<override 2>: trian: unknown section (did you mean \"train\"?)"}},
    // ---- duplicates ----
    {"duplicate_key", base_without({"train"}) + "train:\n  steps: 10\n  global_batch: 4\n  steps: 20\n", {},
     {"cfg.yaml:8:3: train.steps: duplicate key (first defined at line 6)"}},
    {"duplicate_section", kBase + "output: {dir: runs/u}\n", {},
     {"cfg.yaml:6:1: output: duplicate key (first defined at line 1)"}},
    // ---- wrong types ----
    {"int_got_word", base_without({"train"}) + "train:\n  steps: ten\n  global_batch: 4\n", {},
     {"cfg.yaml:6:10: train.steps: expected an integer, got \"ten\""}},
    {"int_got_float", kBase, {"train.steps=2.5"},
     {"<override 1>: train.steps: expected an integer, got \"2.5\""}},
    {"int_got_exponent", kBase, {"train.global_batch=1e3"},
     {"<override 1>: train.global_batch: expected an integer, got \"1e3\""}},
    {"int_got_quoted", base_without({"train"}) + "train:\n  steps: \"10\"\n  global_batch: 4\n", {},
     {"cfg.yaml:6:10: train.steps: expected an integer, got the quoted string \"10\""}},
    {"int_got_no_value", base_without({"train"}) + "train:\n  steps:\n  global_batch: 4\n", {},
     {"cfg.yaml:6:3: train.steps: expected an integer, got no value"}},
    {"int_got_mapping", kBase, {"train.steps={a: 1}"},
     {"<override 1>: train.steps: expected an integer, got a mapping"}},
    {"int_got_sequence", kBase + "runtime:\n  threads: [1, 2]\n", {},
     {"cfg.yaml:7:12: runtime.threads: expected an integer, got a sequence"}},
    {"float_got_word", kBase, {"optimizer.lr=fast"},
     {"<override 1>: optimizer.lr: expected a number, got \"fast\""}},
    {"float_got_inf", kBase, {"optimizer.grad_clip=.inf"},
     {"<override 1>: optimizer.grad_clip: expected a number, got \".inf\""}},
    {"bool_got_yes", kBase, {"model.tie_embeddings=yes"},
     {"<override 1>: model.tie_embeddings: expected true or false, got \"yes\""}},
    {"bool_got_number", kBase + "model_x: 0\n", {"model.mlp_bias=1"},
     {"cfg.yaml:6:1: model_x: unknown section (did you mean \"model\"?)",
      "<override 1>: model.mlp_bias: expected true or false, got \"1\""}},
    {"string_got_mapping", base_without({"output"}) + "output:\n  dir: {path: x}\n", {},
     {"cfg.yaml:6:8: output.dir: expected a string, got a mapping"}},
    {"string_got_sequence", kBase, {"output.dir=[a, b]"},
     {"<override 1>: output.dir: expected a string, got a sequence"}},
    {"string_empty", kBase, {"output.dir=\"\""},
     {"<override 1>: output.dir: must not be empty"}},
    {"section_not_a_mapping", kBase + "peft: lora\n", {},
     {"cfg.yaml:6:7: peft: expected a mapping of keys, got \"lora\""}},
    {"required_section_not_a_mapping", base_without({"train"}) + "train: [1, 2]\n", {},
     {"cfg.yaml:5:8: train: expected a mapping of keys, got a sequence"}},
    {"betas_scalar", kBase, {"optimizer.betas=0.9"},
     {"<override 1>: optimizer.betas: expected a sequence [beta1, beta2], got \"0.9\""}},
    {"betas_length", kBase, {"optimizer.betas=[0.9]"},
     {"<override 1>: optimizer.betas: expected exactly 2 numbers [beta1, beta2], got 1"}},
    {"betas_item_type", kBase, {"optimizer.betas=[0.9, high]"},
     {"<override 1>: optimizer.betas[1]: expected a number, got \"high\""}},
    // ---- ranges ----
    {"int_below_min", kBase, {"train.steps=0"},
     {"<override 1>: train.steps: must be >= 1 (got 0)"}},
    {"float_not_positive", kBase, {"train.steps=10", "optimizer.lr=-1"},
     {"<override 2>: optimizer.lr: must be > 0 (got -1)"}},
    {"float_closed_unit", kBase, {"schedule.min_lr_ratio=1.5"},
     {"<override 1>: schedule.min_lr_ratio: must be in [0, 1] (got 1.5)"}},
    {"betas_out_of_range", base_without({"optimizer"}) + "optimizer:\n  lr: 0.001\n  betas: [0.9, 1.0]\n", {},
     {"cfg.yaml:7:16: optimizer.betas[1]: must be in [0, 1) (got 1.0)"}},
    {"seed_negative", kBase, {"train.seed=-1"},
     {"<override 1>: train.seed: must be >= 0 (got -1)"}},
    {"seed_too_large", kBase, {"train.seed=18446744073709551616"},
     {"<override 1>: train.seed: must be <= 18446744073709551615 (got 18446744073709551616)"}},
    {"int_overflow", kBase, {"train.steps=99999999999999999999"},
     {"<override 1>: train.steps: is outside the 64-bit integer range (got 99999999999999999999)"}},
    {"zero_not_0_or_1", kBase, {"optimizer.zero=2"},
     {"<override 1>: optimizer.zero: must be 0 or 1 (got 2)"}},
    {"seq_len_below_2", kBase, {"data.seq_len=1"},
     {"<override 1>: data.seq_len: must be >= 2 (got 1)"}},
    {"momentum_range", kBase, {"optimizer.name=sgd", "optimizer.momentum=1"},
     {"<override 2>: optimizer.momentum: must be in [0, 1) (got 1)"}},
    // ---- enums ----
    {"enum_device", kBase + "runtime:\n  device: gpu\n", {},
     {"cfg.yaml:7:11: runtime.device: must be one of auto, cpu, cuda (got \"gpu\")"}},
    {"enum_data_format", kBase, {"data.format=csv"},
     {"<override 1>: data.format: must be one of text, jsonl (got \"csv\")"}},
    {"enum_family", kBase, {"model.family=mistral"},
     {"<override 1>: model.family: must be one of llama, gpt2 (got \"mistral\")"}},
    {"enum_got_mapping", kBase, {"peft.method={a: 1}"},
     {"<override 1>: peft.method: must be one of none, lora, prompt_tuning, adapter, ia3 (got a mapping)"}},
    {"enum_split", kBase, {"data.split=sentence"},
     {"<override 1>: data.split: must be one of none, paragraph, line (got \"sentence\")"}},
    // ---- missing required keys ----
    {"missing_several", "output: {dir: runs/t}\noptimizer: {lr: 0.001}\n", {},
     {"cfg.yaml: model.vocab_size: required key is missing",
      "cfg.yaml: model.hidden_size: required key is missing",
      "cfg.yaml: model.num_layers: required key is missing",
      "cfg.yaml: model.num_heads: required key is missing",
      "cfg.yaml: model.intermediate_size: required key is missing",
      "cfg.yaml: data.train: required key is missing",
      "cfg.yaml: data.seq_len: required key is missing",
      "cfg.yaml: train.steps: required key is missing",
      "cfg.yaml: train.global_batch: required key is missing"}},
    {"missing_output_dir", base_without({"output"}), {},
     {"cfg.yaml: output.dir: required key is missing"}},
    // ---- cross-field rules ----
    {"kv_heads_divide", kBase, {"model.hidden_size=768", "model.num_heads=12", "model.num_kv_heads=5"},
     {"<override 3>: model.num_kv_heads: must divide model.num_heads (12 % 5 != 0)"}},
    {"hidden_divisible_by_heads", kBase, {"model.num_heads=5"},
     {"cfg.yaml:2:39: model.hidden_size: must be divisible by model.num_heads when model.head_dim is not set (64 % 5 != 0)"}},
    {"head_dim_even_for_rope", kBase, {"model.head_dim=15"},
     {"<override 1>: model.head_dim: must be even when model.position is rope (got 15)"}},
    {"derived_head_dim_even_for_rope", kBase, {"model.hidden_size=60"},
     {"cfg.yaml: model.head_dim: must be even when model.position is rope (got 15 = model.hidden_size / model.num_heads)"}},
    {"seq_len_within_positions", kBase, {"model.max_position_embeddings=16", "data.seq_len=32"},
     {"<override 2>: data.seq_len: must be <= model.max_position_embeddings (32 > 16)"}},
    {"byte_tokenizer_vocab", kBase, {"model.vocab_size=100"},
     {"<override 1>: model.vocab_size: the byte tokenizer needs at least 257 ids (256 bytes + EOS), got 100"}},
    {"train_file_not_found", base_without({"data"}) + "data:\n  train: missing.txt\n  seq_len: 32\n", {},
     {"cfg.yaml:6:10: data.train: file not found: missing.txt"}},
    {"train_file_not_found_override", kBase, {"data.train=no/such/file.txt"},
     {"<override 1>: data.train: file not found: no/such/file.txt"}},
    {"train_file_is_a_directory", kBase, {"data.train=datasets"},
     {"<override 1>: data.train: not a regular file: datasets"}},
    {"global_batch_multiple", kBase, {"train.micro_batch=3", "parallel.data=1"},
     {"cfg.yaml:4:34: train.global_batch: must be a multiple of parallel.data * train.micro_batch (4 % (1 * 3) != 0)"}},
    {"micro_batch_larger_than_global", kBase, {"train.global_batch=4", "train.micro_batch=8", "parallel.data=1"},
     {"<override 1>: train.global_batch: must be a multiple of parallel.data * train.micro_batch (4 % (1 * 8) != 0)"}},
    {"global_batch_multiple_of_data", kBase, {"parallel.data=3"},
     {"cfg.yaml:4:34: train.global_batch: must be a multiple of parallel.data (4 % 3 != 0)"}},
    {"data_auto_or_int", kBase, {"parallel.data=many"},
     {"<override 1>: parallel.data: expected auto or an integer >= 1, got \"many\""}},
    {"micro_batch_zero", kBase, {"train.micro_batch=0"},
     {"<override 1>: train.micro_batch: expected auto or an integer >= 1, got \"0\""}},
    {"warmup_below_steps", kBase, {"schedule.warmup_steps=10"},
     {"<override 1>: schedule.warmup_steps: must be < train.steps (10 >= 10)"}},
    // ---- issue 19: warmup as a ratio, epochs, metrics during training, the best checkpoint ----
    {"warmup_steps_and_ratio", kBase, {"schedule.warmup_steps=2", "schedule.warmup_ratio=0.1"},
     {"<override 2>: schedule.warmup_ratio: give schedule.warmup_steps or schedule.warmup_ratio, "
      "not both (set the other to 0)"}},
    {"warmup_ratio_below_one", kBase, {"schedule.warmup_ratio=1"},
     {"<override 1>: schedule.warmup_ratio: must be in [0, 1) (got 1)"}},
    {"steps_and_epochs", kBase, {"train.epochs=2"},
     {"<override 1>: train.epochs: give train.steps or train.epochs, not both (set the other to "
      "0)"}},
    {"steps_and_epochs_both_zero", kBase, {"train.steps=0", "train.epochs=0"},
     {"<override 1>: train.steps: must be >= 1, or train.epochs >= 1 (both are 0)"}},
    {"epochs_alone_at_least_one", base_without({"train"}) + "train: {epochs: 0, global_batch: 4}\n",
     {}, {"cfg.yaml:5:17: train.epochs: must be >= 1 (got 0)"}},
    {"eval_metrics_names", kBase, {"train.eval_metrics=[bleu, blue]"},
     {"<override 1>: train.eval_metrics: must be a list of distinct names of bleu, chrf, rouge_l, "
      "exact_match (e.g. [bleu, chrf])"}},
    {"eval_metrics_twice", kBase, {"train.eval_metrics=[chrf, chrf]"},
     {"<override 1>: train.eval_metrics: must be a list of distinct names of bleu, chrf, rouge_l, "
      "exact_match (e.g. [bleu, chrf])"}},
    {"eval_metrics_need_dev_records", kBase,
     {"train.eval_metrics=[bleu]", "data.valid_fraction=0.1"},
     {"<override 1>: train.eval_metrics: needs data.valid, a JSONL file whose records carry "
      "reference answers (data.valid_fraction holds out tokenized documents, which have none)"}},
    {"eval_metrics_not_tensor_parallel", kBase,
     {"train.eval_metrics=[bleu]", "data.format=jsonl",
      "data.valid=datasets/gettext-translations/dev.sample.jsonl", "parallel.tensor=2"},
     {"<override 1>: train.eval_metrics: needs parallel.tensor 1 (got 2): generation does not run "
      "tensor-parallel yet; score checkpoints with `tailor eval`"}},
    {"eval_max_records_alone", kBase, {"train.eval_max_records=3"},
     {"<override 1>: train.eval_max_records: only used with train.eval_metrics"}},
    {"keep_best_needs_dev_and_metric", kBase, {"checkpoint.keep_best=bleu"},
     {"<override 1>: checkpoint.keep_best: needs validation data (data.valid or "
      "data.valid_fraction)",
      "<override 1>: checkpoint.keep_best: bleu is not computed: add it to train.eval_metrics"}},
    {"keep_best_needs_eval_every", kBase, {"checkpoint.keep_best=loss", "data.valid_fraction=0.1"},
     {"<override 1>: checkpoint.keep_best: needs train.eval_every > 0: evaluations during "
      "training to compare"}},
    {"early_stopping_needs_keep_best", kBase, {"train.early_stopping_patience=2"},
     {"<override 1>: train.early_stopping_patience: needs checkpoint.keep_best: the metric that "
      "must improve"}},
    {"momentum_with_adamw", kBase, {"optimizer.momentum=0.9"},
     {"<override 1>: optimizer.momentum: only used by sgd"}},
    // ---- data: sources, JSONL and templates ----
    {"train_list_missing_files", kBase, {"data.train=[a.jsonl, {path: b.jsonl, weight: 2}]"},
     {"<override 1>: data.train: file not found: a.jsonl",
      "<override 1>: data.train: file not found: b.jsonl"}},
    {"train_list_empty", kBase, {"data.train=[]"},
     {"<override 1>: data.train: expected a file path or a non-empty list of {path, weight}, got a sequence"}},
    {"train_mapping", kBase, {"data.train={path: x}"},
     {"<override 1>: data.train: expected a file path or a non-empty list of {path, weight}, got a mapping"}},
    {"train_empty_string", kBase, {"data.train=\"\""},
     {"<override 1>: data.train: must not be empty"}},
    {"train_source_bad_weight", kBase, {"data.train=[{path: datasets/devils-dictionary/devils_dictionary.txt, weight: 0}]"},
     {"<override 1>: data.train[0].weight: must be > 0 (got 0)"}},
    {"train_source_unknown_key", kBase, {"data.train=[{path: datasets/devils-dictionary/devils_dictionary.txt, wieght: 2}]"},
     {"<override 1>: data.train[0].wieght: unknown key (did you mean \"weight\"?)"}},
    {"train_source_no_path", kBase, {"data.train=[{weight: 2}]"},
     {"<override 1>: data.train[0].path: required key is missing"}},
    {"train_source_sequence", kBase, {"data.train=[[a]]"},
     {"<override 1>: data.train[0]: expected a file path or {path, weight}, got a sequence"}},
    {"template_with_text", kBase, {"data.template={preset: chatml}"},
     {"<override 1>: data.template: only used with data.format: jsonl"}},
    {"skip_invalid_with_text", kBase, {"data.skip_invalid=true"},
     {"<override 1>: data.skip_invalid: only used with data.format: jsonl"}},
    {"train_on_prompt_with_text", kBase, {"data.train_on_prompt=true"},
     {"<override 1>: data.train_on_prompt: only used with data.format: jsonl"}},
    {"split_with_jsonl", kBase, {"data.format=jsonl", "data.split=line"},
     {"<override 2>: data.split: only used with data.format: text"}},
    {"template_not_mapping", kBase, {"data.format=jsonl", "data.template=chatml"},
     {"<override 2>: data.template: expected a mapping (preset, system, few_shot, ...), got \"chatml\""}},
    {"template_bad_preset", kBase, {"data.format=jsonl", "data.template.preset=llama2"},
     {"<override 2>: data.template.preset: must be plain, llama3, chatml, mistral, qwen3, phi3, "
      "gemma or the path of a template file (*.yaml; see configs/templates/) (got \"llama2\")"}},
    {"template_unknown_key", kBase, {"data.format=jsonl", "data.template.sytem=hi"},
     {"<override 2>: data.template.sytem: unknown key (did you mean \"system\"?)"}},
    {"template_few_shot_not_list", kBase, {"data.format=jsonl", "data.template.few_shot=3"},
     {"<override 2>: data.template.few_shot: expected a list of {prompt, completion}, got \"3\""}},
    {"template_few_shot_item", kBase, {"data.format=jsonl", "data.template.few_shot=[{prompt: a, answer: b}]"},
     {"<override 2>: data.template.few_shot[0].answer: unknown key",
      "<override 2>: data.template.few_shot[0].completion: required key is missing"}},
    {"template_few_shot_file_missing", kBase, {"data.format=jsonl", "data.template.few_shot_file=no.jsonl"},
     {"<override 2>: data.template.few_shot_file: file not found: no.jsonl"}},
    {"template_few_shot_count_alone", kBase, {"data.format=jsonl", "data.template.few_shot_count=2"},
     {"<override 2>: data.template.few_shot_count: only used with few_shot_file"}},
    {"template_translation_unknown", kBase, {"data.format=jsonl", "data.template.translation=\"{source}\""},
     {"<override 2>: data.template.translation: unknown placeholder {source} (known: {src}, {src_lang}, {tgt_lang}, {src_lang_name}, {tgt_lang_name})"}},
    {"template_translation_no_src", kBase, {"data.format=jsonl", "data.template.translation=Translate"},
     {"<override 2>: data.template.translation: no {src} placeholder (the sentence to translate)"}},
    {"overlong_choice", kBase, {"data.overlong=cut"},
     {"<override 1>: data.overlong: must be one of split, truncate, drop (got \"cut\")"}},
    {"packing_choice", kBase, {"data.packing=padded"},
     {"<override 1>: data.packing: must be one of pack, pad (got \"padded\")"}},
    // ---- preference objectives ----
    {"preference_needs_jsonl_and_padding", kBase, {"objective.type=dpo"},
     {"cfg.yaml: data.format: must be jsonl for objective.type dpo (preference pairs "
      "{\"prompt\", \"chosen\", \"rejected\"})",
      "cfg.yaml: data.packing: must be pad for objective.type dpo: each answer of a pair is a "
      "padded row of its own"}},
    {"preference_keys_need_a_preference_objective", kBase,
     {"objective.beta=0.2", "data.max_prompt_tokens=8"},
     {"<override 1>: objective.beta: only used with a preference objective (objective.type: dpo, "
      "cpo, orpo or simpo)",
      "<override 2>: data.max_prompt_tokens: only used with a preference objective "
      "(objective.type: dpo, cpo, orpo or simpo)"}},
    {"preference_key_of_another_objective", kBase,
     {"data.format=jsonl", "data.packing=pad", "objective.type=cpo", "objective.gamma=1",
      "objective.dpo_loss=ipo"},
     {"<override 4>: objective.gamma: only used with objective.type: simpo (objective.type is "
      "cpo)",
      "<override 5>: objective.dpo_loss: only used with objective.type: dpo (objective.type is "
      "cpo)"}},
    {"preference_limits", kBase,
     {"data.format=jsonl", "data.packing=pad", "objective.type=orpo", "data.max_prompt_tokens=32",
      "data.train_on_prompt=true", "peft.method=prompt_tuning", "objective.label_smoothing=0.1"},
     {"<override 4>: data.max_prompt_tokens: must be < data.seq_len (32 >= 32): the answers need "
      "room",
      "<override 5>: data.train_on_prompt: must be false for objective.type orpo: the "
      "log-probabilities a pair is compared by are its answers' alone",
      "<override 6>: peft.method: prompt_tuning is not supported with objective.type orpo (use "
      "lora or adapter)",
      "<override 7>: objective.label_smoothing: only used with objective.type: dpo (sigmoid), cpo "
      "or simpo (objective.type is orpo)"}},
    {"preference_label_smoothing_range", kBase,
     {"data.format=jsonl", "data.packing=pad", "objective.type=simpo",
      "objective.label_smoothing=0.5"},
     {"<override 4>: objective.label_smoothing: must be in [0, 0.5) (got 0.5)"}},
    {"valid_file_missing", kBase, {"data.valid=no.jsonl"},
     {"<override 1>: data.valid: file not found: no.jsonl"}},
    {"valid_fraction_range", kBase, {"data.valid_fraction=0.7"},
     {"<override 1>: data.valid_fraction: must be in [0, 0.5] (got 0.7)"}},
    {"valid_both", kBase, {"data.valid=datasets/devils-dictionary/devils_dictionary.txt", "data.valid_fraction=0.1"},
     {"<override 2>: data.valid_fraction: give data.valid (a file) or data.valid_fraction, not both"}},
    {"cache_dir_empty", kBase, {"data.cache_dir=\"\""},
     {"<override 1>: data.cache_dir: must not be empty"}},
    // ---- features this build rejects ----
    {"keep_last_zero", kBase + "checkpoint:\n  every_steps: 100\n  keep_last: 0\n", {},
     {"cfg.yaml:8:14: checkpoint.keep_last: must be >= 1 (got 0)"}},
    {"keep_every_negative", kBase, {"checkpoint.keep_every=-5"},
     {"<override 1>: checkpoint.keep_every: must be >= 0 (got -5)"}},
    {"max_skipped_zero", kBase, {"train.max_skipped_steps=0"},
     {"<override 1>: train.max_skipped_steps: must be >= 1 (got 0)"}},
    {"watchdog_negative", kBase, {"runtime.watchdog_s=-1"},
     {"<override 1>: runtime.watchdog_s: must be >= 0 (got -1)"}},
    {"tensor_parallel_zero", kBase, {"parallel.tensor=0"},
     {"<override 1>: parallel.tensor: must be >= 1 (got 0)"}},
    {"attention_unknown", kBase, {"runtime.attention=flash"},
     {"<override 1>: runtime.attention: must be one of auto, cudnn, tailor (got \"flash\")"}},
    {"bf16_on_the_cpu", kBase, {"runtime.device=cpu", "runtime.dtype=bf16"},
     {"<override 2>: runtime.dtype: bf16 needs runtime.device cuda (the CPU computes in f32 or f64)"}},
    {"prompt_tokens_fill_the_row", kBase, {"peft.method=prompt_tuning", "peft.num_virtual_tokens=64", "data.seq_len=64"},
     {"<override 2>: peft.num_virtual_tokens: must be < data.seq_len (64 >= 64): the virtual tokens open every document of a row and count toward its length"}},
    {"prompt_tokens_zero", kBase, {"peft.method=prompt_tuning", "peft.num_virtual_tokens=0"},
     {"<override 2>: peft.num_virtual_tokens: must be in [1, 65536] (got 0)"}},
    {"prompt_text_without_prompt_tuning", kBase, {"peft.method=lora", "peft.prompt_init_text=Hello"},
     {"<override 2>: peft.prompt_init_text: only used with peft.method: prompt_tuning"}},
    {"adapter_with_bottleneck", kBase, {"peft.method=adapter", "peft.adapter=tests/golden/peft/lora_hub"},
     {"<override 2>: peft.adapter: needs peft.method: lora, ia3 or prompt_tuning"}},
    {"adapter_width_zero", kBase, {"peft.method=adapter", "peft.bottleneck=0"},
     {"<override 2>: peft.bottleneck: must be in [1, 1048576] (got 0)"}},
    {"lora_dropout_one", kBase, {"peft.method=lora", "peft.dropout=1"},
     {"<override 2>: peft.dropout: must be in [0, 1) (got 1)"}},
    {"lora_bad_targets", kBase, {"peft.method=lora", "peft.target_modules=[q_proj, qkv]"},
     {"<override 2>: peft.target_modules: must be a non-empty list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear"}},
    {"ia3_feedforward_not_targeted", kBase,
     {"peft.method=ia3", "peft.target_modules=[k_proj, v_proj]", "peft.feedforward_modules=[down_proj]"},
     {"<override 3>: peft.feedforward_modules: down_proj is not in peft.target_modules (feed-forward modules are targets whose input is scaled)"}},
    {"feedforward_without_ia3", kBase, {"peft.method=lora", "peft.feedforward_modules=[down_proj]"},
     {"<override 2>: peft.feedforward_modules: only used with peft.method: ia3"}},
    {"dora_without_lora", kBase, {"peft.method=ia3", "peft.use_dora=true"},
     {"<override 2>: peft.use_dora: only used with peft.method: lora"}},
    {"dora_with_dropout", kBase, {"peft.method=lora", "peft.dropout=0.1", "peft.use_dora=true"},
     {"<override 3>: peft.use_dora: DoRA with peft.dropout > 0 is not supported yet (set peft.dropout: 0)"}},
    {"lora_rank_zero", kBase, {"peft.method=lora", "peft.rank=0"},
     {"<override 2>: peft.rank: must be in [1, 65536] (got 0)"}},
    // Sizes beyond core/limits.h (issue 27, item 6): refused before anything is allocated.
    {"lora_rank_2p40", kBase, {"peft.method=lora", "peft.rank=1099511627776"},
     {"<override 2>: peft.rank: must be in [1, 65536] (got 1099511627776)"}},
    {"hidden_size_2p20", kBase, {"model.hidden_size=1048576"},
     {"<override 1>: model.hidden_size: must be in [1, 131072] (got 1048576)"}},
    {"vocab_size_2p31", kBase, {"model.vocab_size=2147483648"},
     {"<override 1>: model.vocab_size: must be in [1, 16777216] (got 2147483648)"}},
    {"threads_5000", kBase, {"runtime.threads=5000"},
     {"<override 1>: runtime.threads: must be in [0, 1024] (got 5000)"}},
    // ---- overrides ----
    {"override_without_equals", kBase, {"train.steps"},
     {"<override 1>: expected key.path=value, got \"train.steps\""}},
    {"override_empty_key_path", kBase, {"train.steps=3", "=5"},
     {"<override 2>: empty key path in \"=5\""}},
    {"override_empty_key", kBase, {"train..steps=1"},
     {"<override 1>: empty key in key path \"train..steps\""}},
    {"override_duplicate_key", kBase, {"optimizer={lr: 1, lr: 2}"},
     {"<override 1>: optimizer.lr: duplicate key"}},
    {"override_path_through_scalar", kBase, {"train.steps.x=1"},
     {"<override 1>: train.steps: expected an integer, got a mapping"}},
    {"override_no_value", kBase, {"train.steps="},
     {"<override 1>: train.steps: expected an integer, got no value"}},
    // ---- the document itself ----
    {"empty_file", "", {},
     {"cfg.yaml: the config is empty (expected a mapping of sections: output, model, data, train, optimizer, ...)"}},
    {"comments_only", "# nothing here\n\n", {},
     {"cfg.yaml: the config is empty (expected a mapping of sections: output, model, data, train, optimizer, ...)"}},
    {"root_is_a_list", "- output\n- model\n", {},
     {"cfg.yaml:1:1: the config must be a mapping of sections, got a sequence"}},
    {"root_is_a_scalar", "hello\n", {},
     {"cfg.yaml:1:1: the config must be a mapping of sections, got \"hello\""}},
    {"two_documents", kBase + "---\nmore: 1\n", {},
     {"cfg.yaml:7:1: a config is one YAML document; found a second one"}},
    // ---- many at once, ordered by place; no cascades from values already reported ----
    {"many_problems_ordered",
     base_without({"train"}) + "train:\n  steps: ten\n  global_batch: 0\n  micro_batch: 2\nschedul: {}\n",
     {"model.num_heads=zero", "optimizer.lr=-1"},
     {"cfg.yaml:6:10: train.steps: expected an integer, got \"ten\"",
      "cfg.yaml:7:17: train.global_batch: must be >= 1 (got 0)",
      "cfg.yaml:9:1: schedul: unknown section (did you mean \"schedule\"?)",
      "<override 1>: model.num_heads: expected an integer, got \"zero\"",
      "<override 2>: optimizer.lr: must be > 0 (got -1)"}},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Config, MalformedConfig, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

}  // namespace
}  // namespace tailor::config
