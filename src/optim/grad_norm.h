// Global gradient norm and clipping over a list of parameters.
//
// The norm is sqrt of the f64 sum of every trainable gradient's sum of squares, taken in parameter
// order (deterministic). Clipping follows torch.nn.utils.clip_grad_norm_: when max_norm > 0 and
// norm > max_norm, every gradient is scaled by max_norm / (norm + 1e-6).
#pragma once

#include <span>

#include "backend/ops.h"
#include "model/parameters.h"

namespace tailor::optim {

[[nodiscard]] double global_grad_norm(backend::Ops& ops, std::span<model::Parameter* const> params);

// Returns the norm before clipping.
double clip_grad_norm(backend::Ops& ops, std::span<model::Parameter* const> params, double max_norm);

}  // namespace tailor::optim
