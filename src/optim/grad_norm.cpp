#include "optim/grad_norm.h"

#include <cmath>

namespace tailor::optim {

double global_grad_norm(backend::Ops& ops, std::span<model::Parameter* const> params) {
  double total = 0.0;
  for (const model::Parameter* p : params)
    if (p->trainable && !p->grad.empty()) total += ops.sum_squares(p->grad.tensor());
  return std::sqrt(total);
}

double clip_grad_norm(backend::Ops& ops, std::span<model::Parameter* const> params,
                      double max_norm) {
  const double norm = global_grad_norm(ops, params);
  if (max_norm > 0.0 && norm > max_norm) {
    const double coef = max_norm / (norm + 1e-6);
    for (model::Parameter* p : params)
      if (p->trainable && !p->grad.empty()) ops.scale(p->grad.tensor(), coef);
  }
  return norm;
}

}  // namespace tailor::optim
