// The objective section: what training minimizes (src/objective).
#include "config/schema.h"

namespace tailor::config {
namespace {

constexpr FloatRange kAtLeast0Real{0.0, false, std::nullopt, false};

bool preference(const ObjectiveConfig& o) { return is_preference(o.type); }
bool dpo(const ObjectiveConfig& o) { return o.type == ObjectiveType::kDpo; }
bool simpo(const ObjectiveConfig& o) { return o.type == ObjectiveType::kSimpo; }
bool with_nll(const ObjectiveConfig& o) {
  return o.type == ObjectiveType::kCpo || o.type == ObjectiveType::kOrpo;
}

}  // namespace

const Section<ObjectiveConfig>& objective_section() {
  using S = ObjectiveConfig;
  using F = Field<S>;
  static const Section<S> section{
      "objective",
      &ExperimentConfig::objective,
      {
          // Another loss is another training run: a resumed run keeps its objective.
          {"type", choice(&S::type), Resume::kFixed,
           "the training loss (causal_lm: mean NLL of the loss-carrying target tokens; dpo, cpo, "
           "orpo, simpo: preference pairs)"},
          F{"beta", real(&S::beta, kPositive), Resume::kFixed,
            "preference objectives: the scale of the log-probabilities in the loss"}
              .written_if(preference),
          F{"dpo_loss", choice(&S::dpo_loss), Resume::kFixed,
            "dpo: sigmoid (DPO) or ipo (squared loss on length-averaged log-ratios)"}
              .written_if(dpo),
          F{"reference", choice(&S::reference), Resume::kFixed,
            "dpo: the reference log-probabilities (auto: adapters off under PEFT, else "
            "precomputed; precomputed: one cached pass before training; model: adapters off or "
            "a frozen copy)"}
              .written_if(dpo),
          F{"label_smoothing", real(&S::label_smoothing, {0.0, false, 0.5, true}),
            Resume::kFixed, "dpo (sigmoid), cpo, simpo: assumed rate of flipped preferences"}
              .written_if(preference),
          F{"gamma", real(&S::gamma, kAtLeast0Real), Resume::kFixed,
            "simpo: the target reward margin"}
              .written_if(simpo),
          F{"nll_weight", real(&S::nll_weight, kAtLeast0Real), Resume::kFixed,
            "cpo, orpo: weight of the NLL of the chosen answers"}
              .written_if(with_nll),
      }};
  return section;
}

}  // namespace tailor::config
