// Evaluation outside training: `tailor eval` (validation loss/perplexity and generation metrics of
// a checkpoint, a Hugging Face directory or a config's starting model on a dev set) and
// `tailor prompt-search` (candidate prompts ranked on the dev set, no training).
//
// Loss and perplexity are computed as training's eval computes them (ARCHITECTURE.md: exp of the
// mean NLL over the loss-masked target tokens, response tokens only unless
// data.train_on_prompt), from the dev records rendered with the config's template and packed into
// data.seq_len sequences. Generation metrics greedy-decode every record that carries a reference
// (the translation's tgt, the completion, the final assistant turn) with the same template and
// score the outputs with eval/metrics.h (BLEU and chrF as sacreBLEU, ROUGE-L as rouge-score).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/tokenizer.h"
#include "eval/generation_prompt.h"
#include "eval/metrics.h"
#include "model/transformer.h"

namespace tailor::trainer {

struct EvalOptions {
  std::string checkpoint;            // a checkpoint directory; "" = the config's model
  std::string data;                  // dev JSONL; "" = data.valid
  std::int64_t max_records = 0;      // records generated for metrics (0: all)
  std::int64_t max_new_tokens = 128;
  bool generate = true;              // generation metrics (records with references)
  std::string hypotheses_out;        // JSONL of {prompt, reference, hypothesis} ("" = none)
  int threads = 0;
  config::RuntimeDevice device = config::RuntimeDevice::kAuto;
  // Prompts too long for the model are answered "" (scored wrong) instead of skipped, so that
  // every prompt-search candidate is scored on the same records.
  bool keep_unanswerable = false;
};

struct EvalReport {
  std::int64_t step = 0;             // the checkpoint's step (0 otherwise)
  double loss = 0.0, ppl = 0.0;
  std::int64_t tokens = 0;           // loss-carrying tokens
  std::int64_t records = 0;
  std::optional<eval::CorpusMetrics> metrics;  // when generated
  // A preference objective's statistics on the dev pairs (rewards_accuracy, ...); `tokens`
  // then counts pairs.
  std::vector<std::pair<std::string, double>> objective;
};

// One line of JSON: {"step", "eval_loss", "eval_ppl", "eval_tokens", "records", a preference
// objective's "eval_<name>" statistics, and the metrics of metrics_json when generated}.
[[nodiscard]] std::string eval_report_json(const EvalReport& r);

[[nodiscard]] EvalReport evaluate(const config::ExperimentConfig& cfg, const EvalOptions& options);

// The records of dev file `path` that carry a reference answer, as prompts rendered with the
// config's template and tokenizer: at most `max_records` (0: all), in file order; prompts that
// leave no room for an answer within the model's positions are skipped (and counted in a warning),
// or with `keep_unanswerable` kept with no ids: generate_dev_answers answers them "".
[[nodiscard]] std::vector<eval::GenerationPrompt> dev_generation_prompts(
    const config::ExperimentConfig& cfg, const std::string& path, const data::Tokenizer& tokenizer,
    const model::Transformer& model, std::int64_t max_records, bool keep_unanswerable = false);

// Greedy answers to those prompts (batches of 8, stopping at the template's end of turn), with
// their prompts and references: what the metrics score. Collective over the model's TP group.
// With `log_progress`, a line per batch.
struct DevAnswers {
  std::vector<std::string> prompts, hypotheses, references;
};
[[nodiscard]] DevAnswers generate_dev_answers(model::Transformer& model,
                                              const data::Tokenizer& tokenizer,
                                              const config::ExperimentConfig& cfg,
                                              const std::vector<eval::GenerationPrompt>& prompts,
                                              std::int64_t max_new_tokens,
                                              bool log_progress = false);

// One metric of a corpus score.
[[nodiscard]] double metric_value(const eval::CorpusMetrics& m, config::EvalMetric metric);

struct PromptScore {
  std::string name;
  double loss = 0.0;                 // dev loss with this prompt
  std::optional<eval::CorpusMetrics> metrics;
  double score = 0.0;                // the ranking metric (loss: lower is better)
  // With prompt_search.search_records: loss, metrics and score above are on the search split,
  // these on the held-out split (never used for ranking).
  std::optional<double> heldout_loss;
  std::optional<eval::CorpusMetrics> heldout_metrics;
  std::optional<double> heldout_score;
  // prompt_search.strategy few_shot: the config this row was scored with (its template's few_shot
  // list is the chosen demonstrations), what --write-best writes; null for listed candidates.
  std::shared_ptr<const config::ExperimentConfig> variant;
};

// Scores every prompt_search candidate (and the config's own data.template as "base") on the
// dev set (or, with prompt_search.search_records, ranks on the search split and scores the
// held-out split too) with the config's starting model (or `options.checkpoint`), best first.
[[nodiscard]] std::vector<PromptScore> prompt_search(const config::ExperimentConfig& cfg,
                                                     const EvalOptions& options);

// The config with the named candidate's template as data.template (to write the best as a config).
[[nodiscard]] config::ExperimentConfig with_candidate(const config::ExperimentConfig& cfg,
                                                      const std::string& name);

}  // namespace tailor::trainer
