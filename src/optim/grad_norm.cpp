#include "optim/grad_norm.h"

#include <vector>

namespace tailor::optim {

double local_grad_sum_squares(backend::Ops& ops, std::span<const ParamSlice> slices) {
  std::vector<backend::Tensor> grads;
  std::vector<double> weights;
  grads.reserve(slices.size());
  weights.reserve(slices.size());
  for (const ParamSlice& s : slices) {
    grads.push_back(s.grad);
    weights.push_back(s.norm_weight);
  }
  return ops.weighted_sum_squares(grads, weights);
}

double clip_to_norm(backend::Ops& ops, std::span<const ParamSlice> slices, double norm,
                    double max_norm) {
  if (!(max_norm > 0.0 && norm > max_norm)) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  for (const ParamSlice& s : slices) ops.scale(s.grad, coef);
  return coef;
}

}  // namespace tailor::optim
