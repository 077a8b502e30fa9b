// Global gradient norm and clipping over parameter slices.
//
// The squared norm is the f64 sum, in slice order, of each slice's sum of squares times its
// norm_weight (1 / number of TP ranks holding the same values), so that after an all-reduce over
// the groups that hold different slices every parameter is counted exactly once. Clipping
// follows torch.nn.utils.clip_grad_norm_: when max_norm > 0 and norm > max_norm, every gradient
// is scaled by max_norm / (norm + 1e-6).
#pragma once

#include <span>

#include "backend/ops.h"
#include "optim/optimizer.h"

namespace tailor::optim {

// This rank's weighted sum of squares (to be all-reduced by the caller).
[[nodiscard]] double local_grad_sum_squares(backend::Ops& ops, std::span<const ParamSlice> slices);

// Scales the slices' gradients when norm > max_norm > 0; returns the coefficient applied (1 if none).
double clip_to_norm(backend::Ops& ops, std::span<const ParamSlice> slices, double norm,
                    double max_norm);

}  // namespace tailor::optim
