// Tensor parallelism's communication, as named functions: model code calls these, never a
// collective directly (Megatron-LM's tensor_parallel/mappings.py is the model).
//
// Megatron pairs each mapping with its conjugate for autograd. Tailor writes the backward by hand,
// so each pair appears as the one direction that communicates:
//   f = copy_to_region          forward: identity      backward: all-reduce (sum) of the gradient
//   g = reduce_from_region      forward: all-reduce    backward: identity
// A column-parallel linear Y_i = X A_i (A = [A_1 ... A_T] split by output columns) takes a
// replicated X through f: each rank's dX_i = dY_i A_i^T is a partial sum, and dX = sum_i dX_i
// (copy_to_region_backward). A row-parallel linear Y = sum_i X_i B_i (B split by input rows)
// ends in g: each rank's X_i B_i is a partial sum of Y (reduce_from_region_forward), whose
// gradient dY reaches every rank whole. The vocab-parallel embedding is a row-parallel lookup
// (each rank fills the rows of its ids, zeros elsewhere: g), the vocab-parallel LM head a
// column-parallel linear (f), and its cross-entropy reduces two statistics per token over the
// group instead of gathering the logits. Gradients of parameters that several ranks hold as
// partial sums (a replicated LoRA factor, a shared KV head) are summed over their group.
// Sequence parallelism (scatter / gather) is not used. A null or one-rank group is a no-op.
#pragma once

#include "backend/tensor.h"
#include "comm/communicator.h"

namespace tailor::model::tp {

// Backward of f: dx [N, D] (partial on each rank) becomes the sum over the group.
void copy_to_region_backward(comm::Communicator* group, const backend::Tensor& dx);
// Forward of g: y (a partial sum on each rank) becomes the sum over the group.
void reduce_from_region_forward(comm::Communicator* group, const backend::Tensor& y);
// Vocab-parallel cross-entropy: each token's max logit over the group's vocabulary shards ...
void vocab_max(comm::Communicator* group, const backend::Tensor& row_max);
// ... and its [2, N] statistics (sum of exp, target logit), summed over the shards.
void vocab_sum(comm::Communicator* group, const backend::Tensor& stats);
// A parameter gradient that each rank of `group` holds as a partial sum becomes the whole sum.
void sum_partial_gradient(comm::Communicator* group, const backend::Tensor& grad);

}  // namespace tailor::model::tp
