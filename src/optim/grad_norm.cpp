#include "optim/grad_norm.h"

namespace tailor::optim {

double local_grad_sum_squares(backend::Ops& ops, std::span<const ParamSlice> slices) {
  double total = 0.0;
  for (const ParamSlice& s : slices) total += s.norm_weight * ops.sum_squares(s.grad);
  return total;
}

double clip_to_norm(backend::Ops& ops, std::span<const ParamSlice> slices, double norm,
                    double max_norm) {
  if (!(max_norm > 0.0 && norm > max_norm)) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  for (const ParamSlice& s : slices) ops.scale(s.grad, coef);
  return coef;
}

}  // namespace tailor::optim
