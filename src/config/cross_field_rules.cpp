// Cross-section rules and derived values; see cross_field_rules.h. Rules that this build cannot
// honour (CUDA without a CUDA backend) are problems like any other.
#include "config/cross_field_rules.h"
#include "core/environment.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <fmt/format.h>

namespace tailor::config {
namespace {

// Fills num_kv_heads and head_dim and checks the model's shape rules.
void resolve_model(SchemaReader& r, ExperimentConfig& c) {
  ModelConfig& m = c.model;
  if (!m.path.empty()) {
    // The tokenizer of a downloaded model is its own unless the config says otherwise.
    if (!r.is_set("data.tokenizer")) c.data.tokenizer = TokenizerKind::kModel;
    return;  // the rest is checked against config.json when the model loads
  }
  if (r.is_ok("data.tokenizer") && c.data.tokenizer == TokenizerKind::kModel) {
    r.problem("data.tokenizer", "model needs model.path (a Hugging Face model directory)");
  }
  const bool heads_ok = r.is_ok("model.num_heads");
  if (!r.is_set("model.num_kv_heads")) {
    if (heads_ok) m.num_kv_heads = m.num_heads;
  } else if (heads_ok && r.is_ok("model.num_kv_heads") && m.num_heads % m.num_kv_heads != 0) {
    r.problem("model.num_kv_heads", fmt::format("must divide model.num_heads ({} % {} != 0)",
                                                m.num_heads, m.num_kv_heads));
  }

  bool head_dim_derived = false;
  if (!r.is_set("model.head_dim")) {
    if (heads_ok && r.is_ok("model.hidden_size")) {
      if (m.hidden_size % m.num_heads != 0) {
        r.problem("model.hidden_size",
                  fmt::format("must be divisible by model.num_heads when model.head_dim is not "
                              "set ({} % {} != 0)",
                              m.hidden_size, m.num_heads));
        r.mark_bad("model.head_dim");
      } else {
        m.head_dim = m.hidden_size / m.num_heads;
        head_dim_derived = true;
      }
    } else {
      r.mark_bad("model.head_dim");
    }
  }
  if (r.is_ok("model.head_dim") && r.is_ok("model.position") && m.position == PositionKind::kRope &&
      m.head_dim % 2 != 0) {
    r.problem("model.head_dim",
              head_dim_derived
                  ? fmt::format("must be even when model.position is rope (got {} = "
                                "model.hidden_size / model.num_heads)",
                                m.head_dim)
                  : fmt::format("must be even when model.position is rope (got {})", m.head_dim));
  }
}

void check_data(SchemaReader& r, const ExperimentConfig& c) {
  const DataConfig& d = c.data;
  if (r.is_ok("data.format") && d.format == DataFormat::kText) {
    for (const char* key : {"data.template", "data.train_on_prompt", "data.skip_invalid"})
      if (r.is_set(key)) r.problem(key, "only used with data.format: jsonl");
  }
  if (r.is_ok("data.format") && d.format == DataFormat::kJsonl && r.is_set("data.split"))
    r.problem("data.split", "only used with data.format: text");
  if (!c.model.path.empty()) return;  // checked against config.json when the model loads
  if (r.is_ok("data.seq_len") && r.is_ok("model.max_position_embeddings") &&
      d.seq_len > c.model.max_position_embeddings) {
    r.problem("data.seq_len", fmt::format("must be <= model.max_position_embeddings ({} > {})",
                                          d.seq_len, c.model.max_position_embeddings));
  }
  if (r.is_ok("data.tokenizer") && d.tokenizer == TokenizerKind::kByte &&
      r.is_ok("model.vocab_size") && c.model.vocab_size < 257) {
    r.problem("model.vocab_size",
              fmt::format("the byte tokenizer needs at least 257 ids (256 bytes + EOS), got {}",
                          c.model.vocab_size));
  }
  if (r.is_ok("data.train")) {
    for (const DataSourceConfig& src : d.sources) {
      std::error_code ec;
      const auto status = std::filesystem::status(src.path, ec);
      if (ec || !std::filesystem::exists(status)) {
        r.problem("data.train", fmt::format("file not found: {}", src.path));
      } else if (!std::filesystem::is_regular_file(status)) {
        r.problem("data.train", fmt::format("not a regular file: {}", src.path));
      } else if (std::ifstream probe(src.path, std::ios::binary); !probe) {
        r.problem("data.train", fmt::format("cannot read: {}", src.path));
      }
    }
  }
}

void resolve_train(SchemaReader& r, ExperimentConfig& c) {
  TrainConfig& t = c.train;
  const std::int64_t dp = c.parallel.data;
  // parallel.data or train.micro_batch `auto` (0) are resolved against the job's size when it
  // starts (trainer); only explicit values are checked here.
  const bool sizes_ok = r.is_ok("train.global_batch") && r.is_ok("parallel.data") && dp > 0;
  if (t.micro_batch == 0) {
    if (sizes_ok && t.global_batch % dp != 0) {
      r.problem("train.global_batch", fmt::format("must be a multiple of parallel.data ({} % {} "
                                                  "!= 0)",
                                                  t.global_batch, dp));
    } else if (sizes_ok) {
      t.micro_batch = t.global_batch / dp;
    }
  } else if (sizes_ok && r.is_ok("train.micro_batch") &&
             t.global_batch % (dp * t.micro_batch) != 0) {
    r.problem("train.global_batch",
              fmt::format("must be a multiple of parallel.data * train.micro_batch ({} % ({} * {}) "
                          "!= 0)",
                          t.global_batch, dp, t.micro_batch));
  }
  if (r.is_set("schedule.warmup_steps") && r.is_ok("schedule.warmup_steps") &&
      r.is_ok("train.steps") && t.steps > 0 && c.schedule.warmup_steps >= t.steps) {
    r.problem("schedule.warmup_steps",
              fmt::format("must be < train.steps ({} >= {})", c.schedule.warmup_steps, t.steps));
  }
}

// How long a run is: train.steps or train.epochs, exactly one (epochs become steps once the data
// is packed, trainer); the warmup as steps or as a fraction of them, not both.
void check_length(SchemaReader& r, const ExperimentConfig& c) {
  // (0 is "not used": an override can switch from one to the other)
  const TrainConfig& t = c.train;
  // (a missing train.steps, or one < 1 without train.epochs, is reported when it is read)
  if (r.is_set("train.steps") && r.is_set("train.epochs") && r.is_ok("train.steps") &&
      r.is_ok("train.epochs")) {
    if (t.steps == 0 && t.epochs == 0)
      r.problem("train.steps", "must be >= 1, or train.epochs >= 1 (both are 0)");
    else if (t.steps > 0 && t.epochs > 0)
      r.problem("train.epochs", "give train.steps or train.epochs, not both (set the other to 0)");
  }
  // (0 is "not used": an override can switch from one to the other)
  if (r.is_set("schedule.warmup_steps") && r.is_set("schedule.warmup_ratio") &&
      c.schedule.warmup_steps > 0 && c.schedule.warmup_ratio > 0.0)
    r.problem("schedule.warmup_ratio",
              "give schedule.warmup_steps or schedule.warmup_ratio, not both (set the other to 0)");
}

// Generation metrics during training, the best checkpoint and early stopping.
void check_evaluation(SchemaReader& r, const ExperimentConfig& c) {
  const TrainConfig& t = c.train;
  const DataConfig& d = c.data;
  const bool has_dev = !d.valid.empty() || d.valid_fraction > 0.0;
  if (r.is_ok("train.eval_metrics") && !t.eval_metrics.empty()) {
    if (d.valid.empty())
      r.problem("train.eval_metrics",
                d.valid_fraction > 0.0
                    ? "needs data.valid, a JSONL file whose records carry reference answers "
                      "(data.valid_fraction holds out tokenized documents, which have none)"
                    : "needs data.valid, a JSONL file whose records carry reference answers");
    else if (r.is_ok("data.format") && d.format != DataFormat::kJsonl)
      r.problem("train.eval_metrics", "needs data.format: jsonl (records with reference answers)");
    if (r.is_ok("parallel.tensor") && c.parallel.tensor > 1)
      r.problem("train.eval_metrics",
                fmt::format("needs parallel.tensor 1 (got {}): generation does not run "
                            "tensor-parallel yet; score checkpoints with `tailor eval`",
                            c.parallel.tensor));
  }
  if (r.is_ok("train.eval_metrics") && t.eval_metrics.empty())
    for (const char* key : {"train.eval_max_records", "train.eval_max_new_tokens"})
      if (r.is_set(key)) r.problem(key, "only used with train.eval_metrics");
  const BestMetric best = c.checkpoint.keep_best;
  if (r.is_ok("checkpoint.keep_best") && best != BestMetric::kNone) {
    if (!has_dev) {
      r.problem("checkpoint.keep_best", "needs validation data (data.valid or "
                                        "data.valid_fraction)");
    } else if (r.is_ok("train.eval_every") && t.eval_every == 0) {
      r.problem("checkpoint.keep_best",
                "needs train.eval_every > 0: evaluations during training to compare");
    }
    if (best != BestMetric::kLoss && r.is_ok("train.eval_metrics")) {
      const auto wanted = from_name<EvalMetric>(name_of(best));
      if (std::find(t.eval_metrics.begin(), t.eval_metrics.end(), wanted) == t.eval_metrics.end())
        r.problem("checkpoint.keep_best",
                  fmt::format("{} is not computed: add it to train.eval_metrics", best));
    }
  }
  if (r.is_ok("train.early_stopping_patience") && t.early_stopping_patience > 0 &&
      r.is_ok("checkpoint.keep_best") && best == BestMetric::kNone)
    r.problem("train.early_stopping_patience",
              "needs checkpoint.keep_best: the metric that must improve");
}

void check_optimizer(SchemaReader& r, const ExperimentConfig& c) {
  const OptimizerConfig& o = c.optimizer;
  if (r.is_set("optimizer.momentum") && r.is_ok("optimizer.momentum") &&
      r.is_ok("optimizer.name") && o.name != OptimizerName::kSgd) {
    r.problem("optimizer.momentum", "only used by sgd");
  }
  if (r.is_ok("optimizer.moments") && o.moments == MomentsDType::kBF16) {
    if (r.is_ok("optimizer.name") && o.name != OptimizerName::kAdamW)
      r.problem("optimizer.moments",
                fmt::format("bf16 moments are AdamW's (optimizer.name is {})", o.name));
    else if (r.is_ok("runtime.device") && c.runtime.device == RuntimeDevice::kCpu)
      r.problem("optimizer.moments", "bf16 moments need runtime.device cuda (the CPU keeps f32)");
  }
}

// Features this build does not have: accepted by the schema, rejected here.
void check_build_limits(SchemaReader& r, const ExperimentConfig& c) {
  const RuntimeConfig& rt = c.runtime;
#ifndef TAILOR_HAVE_CUDA
  // (TAILOR_EMULATE_CUDA=1 is the testing hook that emulates the device on the CPU.)
  if (rt.device == RuntimeDevice::kCuda && !env::is_one("TAILOR_EMULATE_CUDA"))
    r.problem("runtime.device", "this build has no CUDA backend");
#endif
  if (rt.attention == RuntimeAttention::kCudnn && r.is_ok("runtime.attention")) {
#ifndef TAILOR_HAVE_CUDNN
    r.problem("runtime.attention", "cudnn: this build has no cuDNN (use auto or tailor)");
#else
    if (r.is_ok("runtime.device") && rt.device == RuntimeDevice::kCpu)
      r.problem("runtime.attention",
                "cudnn needs runtime.device cuda or auto (use auto or tailor on the CPU)");
    else if (r.is_ok("runtime.dtype") &&
             (rt.dtype == RuntimeDType::kF32 || rt.dtype == RuntimeDType::kF64))
      r.problem("runtime.attention",
                fmt::format("cudnn runs bf16 attention (runtime.dtype is {}; use auto or tailor)",
                            rt.dtype));
#endif
  }
  if (r.is_ok("runtime.dtype") && r.is_ok("runtime.device")) {
    if (rt.device == RuntimeDevice::kCpu && rt.dtype == RuntimeDType::kBF16)
      r.problem("runtime.dtype", "bf16 needs runtime.device cuda (the CPU computes in f32 or f64)");
    if (rt.device == RuntimeDevice::kCuda && rt.dtype == RuntimeDType::kF64)
      r.problem("runtime.dtype", "f64 runs on the CPU only (runtime.device: cpu)");
  }
}

// PEFT rules. Prompt tuning: every document fragment of a row opens with the virtual tokens, so a
// row must hold them and at least one real token.
void check_peft(SchemaReader& r, const ExperimentConfig& c) {
  const PeftConfig& p = c.peft;
  if (!p.adapter.empty() && p.method != PeftMethod::kLora &&
      p.method != PeftMethod::kPromptTuning && p.method != PeftMethod::kIa3) {
    r.problem("peft.adapter", "needs peft.method: lora, ia3 or prompt_tuning");
  }
  if (p.method != PeftMethod::kPromptTuning) {
    if (r.is_set("peft.prompt_init_text"))
      r.problem("peft.prompt_init_text", "only used with peft.method: prompt_tuning");
    return;
  }
  if (r.is_ok("peft.num_virtual_tokens") && r.is_ok("data.seq_len") &&
      p.num_virtual_tokens >= c.data.seq_len) {
    r.problem("peft.num_virtual_tokens",
              fmt::format("must be < data.seq_len ({} >= {}): the virtual tokens open every "
                          "document of a row and count toward its length",
                          p.num_virtual_tokens, c.data.seq_len));
  }
}

// Preference objectives train on pairs: JSONL, each pair as two padded rows, the loss on the
// answers only; their parameters mean nothing to another objective.
void check_objective(SchemaReader& r, const ExperimentConfig& c) {
  const ObjectiveConfig& o = c.objective;
  if (!r.is_ok("objective.type")) return;
  const std::string type(name_of(o.type));
  if (!is_preference(o.type)) {
    for (const char* key : {"objective.beta", "objective.dpo_loss", "objective.reference",
                            "objective.label_smoothing",
                            "objective.gamma", "objective.nll_weight", "data.max_prompt_tokens"})
      if (r.is_set(key))
        r.problem(key, "only used with a preference objective (objective.type: dpo, cpo, orpo or "
                       "simpo)");
    return;
  }
  const auto only_for = [&](const char* key, bool used, const char* which) {
    if (r.is_set(key) && !used) r.problem(key, fmt::format("only used with {} (objective.type is "
                                                           "{})", which, type));
  };
  only_for("objective.dpo_loss", o.type == ObjectiveType::kDpo, "objective.type: dpo");
  only_for("objective.reference", o.type == ObjectiveType::kDpo, "objective.type: dpo");
  only_for("objective.gamma", o.type == ObjectiveType::kSimpo, "objective.type: simpo");
  only_for("objective.nll_weight", o.type == ObjectiveType::kCpo || o.type == ObjectiveType::kOrpo,
           "objective.type: cpo or orpo");
  only_for("objective.label_smoothing",
           o.type != ObjectiveType::kOrpo &&
               !(o.type == ObjectiveType::kDpo && o.dpo_loss == DpoLoss::kIpo),
           "objective.type: dpo (sigmoid), cpo or simpo");
  const DataConfig& d = c.data;
  if (r.is_ok("data.format") && d.format != DataFormat::kJsonl)
    r.problem("data.format", fmt::format("must be jsonl for objective.type {} (preference pairs "
                                         "{{\"prompt\", \"chosen\", \"rejected\"}})",
                                         type));
  if (r.is_ok("data.packing") && d.packing != PackingMode::kPad)
    r.problem("data.packing", fmt::format("must be pad for objective.type {}: each answer of a "
                                          "pair is a padded row of its own",
                                          type));
  if (r.is_ok("data.train_on_prompt") && d.train_on_prompt)
    r.problem("data.train_on_prompt",
              fmt::format("must be false for objective.type {}: the log-probabilities a pair is "
                          "compared by are its answers' alone",
                          type));
  if (r.is_ok("data.max_prompt_tokens") && r.is_ok("data.seq_len") &&
      d.max_prompt_tokens >= d.seq_len)
    r.problem("data.max_prompt_tokens", fmt::format("must be < data.seq_len ({} >= {}): the "
                                                    "answers need room",
                                                    d.max_prompt_tokens, d.seq_len));
  if (r.is_ok("peft.method") && c.peft.method == PeftMethod::kPromptTuning)
    r.problem("peft.method", fmt::format("prompt_tuning is not supported with objective.type {} "
                                         "(use lora or adapter)",
                                         type));
}

// prompt_search.strategy few_shot chooses from a pool; its keys mean nothing to the list.
void check_prompt_search(SchemaReader& r, const ExperimentConfig& c) {
  const PromptSearchConfig& p = c.prompt_search;
  if (!r.is_ok("prompt_search.strategy")) return;
  if (p.strategy == PromptStrategy::kFewShot) {
    if (p.pool.empty())
      r.problem("prompt_search.pool", "required with prompt_search.strategy few_shot (a JSONL "
                                      "file of {\"prompt\", \"completion\"} demonstrations)");
    if (r.is_ok("prompt_search.shots") && p.shots < 1)
      r.problem("prompt_search.shots", "must be at least 1 with prompt_search.strategy few_shot");
    if (!p.candidates.empty())
      r.problem("prompt_search.candidates", "only used with prompt_search.strategy list");
    return;
  }
  for (const char* key : {"prompt_search.pool", "prompt_search.shots", "prompt_search.random_seeds"})
    if (r.is_set(key)) r.problem(key, "only used with prompt_search.strategy few_shot");
}

}  // namespace

void apply_cross_field_rules(SchemaReader& r, ExperimentConfig& c) {
  resolve_model(r, c);
  check_data(r, c);
  resolve_train(r, c);
  check_length(r, c);
  check_evaluation(r, c);
  check_optimizer(r, c);
  check_build_limits(r, c);
  check_peft(r, c);
  check_objective(r, c);
  check_prompt_search(r, c);
}

}  // namespace tailor::config
