// The train section: how long, how big and from where a run trains.
#include <algorithm>
#include <optional>

#include "config/schema.h"

namespace tailor::config {
namespace {

void check_resume(SchemaReader& r, const std::string& path, const TrainConfig& t) {
  if (!t.resume.empty()) return;
  r.problem(path, "must be auto, never or a checkpoint path (got \"\")");
  r.mark_bad(path);
}

// train.eval_metrics: a list of generation metrics, each named once.
void read_eval_metrics(ReadContext& c, TrainConfig& t) {
  SchemaReader& r = c.reader;
  const YamlNode* n = r.read_node("eval_metrics");
  if (n == nullptr) return;
  std::vector<EvalMetric> metrics;
  bool ok = n->kind == YamlNode::Kind::kSequence;
  for (const YamlNode& item : n->items) {
    const std::optional<EvalMetric> m =
        item.kind == YamlNode::Kind::kScalar ? from_name<EvalMetric>(item.scalar) : std::nullopt;
    ok = ok && m && std::find(metrics.begin(), metrics.end(), *m) == metrics.end();
    if (m) metrics.push_back(*m);
  }
  if (ok) {
    t.eval_metrics = std::move(metrics);
    return;
  }
  r.problem_at(n->loc, "train.eval_metrics",
               fmt::format("must be a list of distinct names of {} (e.g. [bleu, chrf])",
                           fmt::join(names_of<EvalMetric>(), ", ")));
  r.mark_bad("train.eval_metrics");
}

void write_eval_metrics(YamlWriter& w, const TrainConfig& t) {
  std::string list = "[";
  for (std::size_t i = 0; i < t.eval_metrics.size(); ++i)
    list += fmt::format("{}{}", i ? ", " : "", name_of(t.eval_metrics[i]));
  w.line("eval_metrics", list + "]");
}

// train.steps and train.epochs: one of them says how long the run is. Each is >= 1, and steps is
// required, unless the other is given; then it may be 0, "not used", so that an override can
// switch a config from one to the other (train.steps=0 train.epochs=3). Both >= 1 is a
// cross-field problem (cross_field_rules.cpp).
KeyType<TrainConfig> length_key(std::int64_t TrainConfig::*member, std::string_view other) {
  return {"int",
          Presence::kOptional,
          {},
          [=](ReadContext& c, std::string_view key, TrainConfig& t) {
            const bool alternative = c.reader.given(other);
            const Presence presence =
                alternative || key == "epochs" ? Presence::kOptional : Presence::kRequired;
            std::int64_t v = 0;
            if (!c.reader.read_int(key, v, alternative ? kAtLeast0 : kAtLeast1, presence))
              return false;
            t.*member = v;
            return true;
          },
          [=](YamlWriter& w, std::string_view key, const TrainConfig& t) {
            w.line(key, fmt::format("{}", t.*member));
          }};
}

// Keys added after the first resolved configs were written are written only when they are used,
// so the resolved config of a run that does not use them stays what it was.
bool has_steps(const TrainConfig& t) { return t.steps > 0; }
bool has_epochs_only(const TrainConfig& t) { return t.epochs > 0 && t.steps == 0; }
std::string epochs_note(const TrainConfig& t) {
  return t.epochs > 0 ? fmt::format("epochs: {} (resolved into steps)", t.epochs) : "";
}
bool generates(const TrainConfig& t) { return !t.eval_metrics.empty(); }
bool stops_early(const TrainConfig& t) { return t.early_stopping_patience > 0; }

}  // namespace

const Section<TrainConfig>& train_section() {
  using S = TrainConfig;
  using F = Field<S>;
  static const Section<S> section{
      "train",
      &ExperimentConfig::train,
      {
          F{"steps", length_key(&S::steps, "epochs"), Resume::kMayChange,
            "optimizer steps (or train.epochs; 0: not used)"}
              .written_if(has_steps),
          F{"epochs", length_key(&S::epochs, "steps"), Resume::kMayChange,
            "passes over the training data instead of train.steps (0: not used)"}
              .written_if(has_epochs_only, epochs_note),
          {"seed", unsigned_integer(&S::seed), Resume::kFixed,
           "seed of every random stream (initialization, data order, dropout)"},
          {"global_batch", integer(&S::global_batch, kAtLeast1, Presence::kRequired),
           Resume::kFixed, "sequences per optimizer step, all ranks together"},
          {"micro_batch", integer_or_auto(&S::micro_batch, kAtLeast1), Resume::kMayChange,
           "sequences per forward/backward pass on one rank (auto: global_batch / parallel.data)"},
          F{"resume", text(&S::resume), Resume::kMayChange,
            "auto | never | a checkpoints/step_<N> directory to continue from"}
              .checked_by(check_resume),
          {"log_every", integer(&S::log_every, kAtLeast1), Resume::kMayChange,
           "progress line and metrics.jsonl record every N steps"},
          {"max_skipped_steps", integer(&S::max_skipped_steps, kAtLeast1), Resume::kMayChange,
           "stop after this many consecutive non-finite steps"},
          {"eval_every", integer(&S::eval_every, kAtLeast0), Resume::kMayChange,
           "validation loss every N steps (0: at the end only)"},
          F{"eval_metrics",
            custom("list", Presence::kOptional, read_eval_metrics, write_eval_metrics),
            Resume::kMayChange, "generation metrics of the data.valid answers at every evaluation"}
              .written_if(generates),
          F{"eval_max_records", integer(&S::eval_max_records, kAtLeast0), Resume::kMayChange,
            "dev records generated per evaluation for train.eval_metrics (0: all)"}
              .written_if(generates),
          F{"eval_max_new_tokens", integer(&S::eval_max_new_tokens, kAtLeast1),
            Resume::kMayChange, "tokens generated per dev answer"}
              .written_if(generates),
          F{"early_stopping_patience", integer(&S::early_stopping_patience, kAtLeast0),
            Resume::kMayChange,
            "stop after N evaluations without a better checkpoint.keep_best metric (0: never)"}
              .written_if(stops_early),
          // Recomputation is bit-identical to keeping the activations.
          {"recompute", choice(&S::recompute), Resume::kMayChange,
           "activation recomputation: none, selective (norms, MLP activation) or full (layers)"},
      }};
  return section;
}

}  // namespace tailor::config
