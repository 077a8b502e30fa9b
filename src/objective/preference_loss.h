// The per-pair losses of the preference objectives, as functions of one pair's sequence
// log-probabilities (the sums of its answer tokens' log-probabilities, or their means where the
// objective normalizes by length), with their derivatives. These are the formulas of TRL's
// trainers (DPOTrainer, CPOTrainer with loss_type sigmoid and simpo, ORPOTrainer), which the
// golden tests compare against:
//   dpo   z = (pc - rc) - (pr - rr)   loss = -(1-e) log s(b z) - e log s(-b z)    rewards b(p - r)
//   ipo   z' = (pc - rc)/nc - (pr - rr)/nr, loss = (z' - 1/(2b))^2  (n: answer tokens)
//                                                                                  rewards b(p - r)
//   cpo   z = pc - pr                 loss as dpo                                  rewards b p
//   simpo z = pc - pr - g/b (averaged) loss as dpo                                 rewards b p
//   orpo  o = (pc - pr) - (log(1 - e^pc) - log(1 - e^pr)) (averaged), loss = -b log s(o)
//                                                                                  rewards b p
// with b = beta, e = label_smoothing, g = gamma, s the logistic function, p / r the policy's and
// the reference's log-probabilities of the chosen (c) and rejected (r) answers. CPO and ORPO add
// nll_weight times the mean NLL of the chosen answers' tokens over the batch (not per pair).
#pragma once

namespace tailor::objective {

enum class PreferenceKind { kDpo, kIpo, kCpo, kSimpo, kOrpo };

struct PreferenceParams {
  PreferenceKind kind = PreferenceKind::kDpo;
  double beta = 0.1;
  double label_smoothing = 0.0;
  double gamma = 0.5;       // simpo
  double nll_weight = 0.0;  // cpo, orpo (0 for the others)
};

// Whether the kind compares log-probabilities averaged over the answer's tokens (its rewards and
// logged log-probabilities are averages too). IPO is not: only its loss averages the log-ratios.
[[nodiscard]] bool length_normalized(PreferenceKind kind) noexcept;
// Whether it needs the reference model's log-probabilities (dpo, ipo).
[[nodiscard]] bool needs_reference(PreferenceKind kind) noexcept;

struct PairTerms {
  double loss = 0.0;        // the pair's loss (without the NLL term)
  double d_chosen = 0.0;    // d loss / d pc
  double d_rejected = 0.0;  // d loss / d pr
  double reward_chosen = 0.0, reward_rejected = 0.0;
};

// One pair's terms; pc, pr (and rc, rr) already averaged where length_normalized. nc, nr: the
// answers' token counts (IPO's loss averages by them).
[[nodiscard]] PairTerms pair_terms(const PreferenceParams& p, double pc, double pr, double rc,
                                   double rr, double nc = 1.0, double nr = 1.0);

}  // namespace tailor::objective
