// Preference losses and their derivatives (see preference_loss.h).
#include "objective/preference_loss.h"

#include <cmath>

namespace tailor::objective {
namespace {

// log s(x) = -log(1 + e^-x), stable for either sign.
double log_sigmoid(double x) {
  return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// loss(z) = -(1-e) log s(b z) - e log s(-b z) and its derivative in z.
void smoothed_sigmoid(double beta, double eps, double z, double& loss, double& dz) {
  loss = -(1.0 - eps) * log_sigmoid(beta * z) - eps * log_sigmoid(-beta * z);
  dz = -(1.0 - eps) * beta * sigmoid(-beta * z) + eps * beta * sigmoid(beta * z);
}

// log(1 - e^x) for x < 0, accurate near 0 and far below it.
double log1mexp(double x) {
  return x > -0.6931471805599453 ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
}

}  // namespace

bool length_normalized(PreferenceKind kind) noexcept {
  return kind == PreferenceKind::kSimpo || kind == PreferenceKind::kOrpo;
}

bool needs_reference(PreferenceKind kind) noexcept {
  return kind == PreferenceKind::kDpo || kind == PreferenceKind::kIpo;
}

PairTerms pair_terms(const PreferenceParams& p, double pc, double pr, double rc, double rr,
                     double nc, double nr) {
  PairTerms t;
  const double b = p.beta;
  double dz = 0.0;
  switch (p.kind) {
    case PreferenceKind::kDpo: {
      smoothed_sigmoid(b, p.label_smoothing, (pc - rc) - (pr - rr), t.loss, dz);
      t.reward_chosen = b * (pc - rc);
      t.reward_rejected = b * (pr - rr);
      break;
    }
    case PreferenceKind::kIpo: {
      const double u = (pc - rc) / nc - (pr - rr) / nr - 1.0 / (2.0 * b);
      t.loss = u * u;
      t.d_chosen = 2.0 * u / nc;
      t.d_rejected = -2.0 * u / nr;
      t.reward_chosen = b * (pc - rc);
      t.reward_rejected = b * (pr - rr);
      return t;
    }
    case PreferenceKind::kCpo:
    case PreferenceKind::kSimpo: {
      const double z = pc - pr - (p.kind == PreferenceKind::kSimpo ? p.gamma / b : 0.0);
      smoothed_sigmoid(b, p.label_smoothing, z, t.loss, dz);
      t.reward_chosen = b * pc;
      t.reward_rejected = b * pr;
      break;
    }
    case PreferenceKind::kOrpo: {
      // d log(1 - e^x)/dx = -e^x / (1 - e^x), so d o/d pc = 1 / (1 - e^pc).
      const double o = (pc - pr) - (log1mexp(pc) - log1mexp(pr));
      t.loss = -b * log_sigmoid(o);
      const double d_o = -b * sigmoid(-o);
      t.d_chosen = d_o / -std::expm1(pc);
      t.d_rejected = -d_o / -std::expm1(pr);
      t.reward_chosen = b * pc;
      t.reward_rejected = b * pr;
      return t;
    }
  }
  t.d_chosen = dz;
  t.d_rejected = -dz;
  return t;
}

}  // namespace tailor::objective
