#include "optim/data_parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "optim/grad_norm.h"

namespace tailor::optim {

using backend::Buffer;
using backend::Tensor;

DataParallelOptimizer::DataParallelOptimizer(backend::Ops& ops, model::ParameterSet& params,
                                             comm::Communicator& dp, comm::Communicator& tp,
                                             const OptimizerSpec& optimizer,
                                             const DataParallelSpec& spec)
    : ops_(&ops), params_(&params), dp_(&dp), tp_(&tp), spec_(spec) {
  if (!spec_.zero) {
    slices_ = whole_parameters(params);
  } else {
    // ZeRO ranges cut the trainable part of the flat vector (gradient offsets).
    const std::int64_t p = params.trainable_numel();
    const std::int64_t d = dp.size();
    shard_size_ = (p + d - 1) / d;
    shard_begin_ = std::min(p, dp.rank() * shard_size_);
    shard_end_ = std::min(p, shard_begin_ + shard_size_);
    // Gradient dtype (f32 under bf16 weights): the updated values travel through it too, exactly.
    const DType dtype = params.flat_grads().dtype;
    padded_ = ops.alloc(dtype, Shape{shard_size_ * d});
    shard_grad_ = ops.alloc(dtype, Shape{shard_size_});
    // The pieces of each parameter that fall in [shard_begin, shard_end).
    for (model::Parameter& prm : params.all()) {
      if (!prm.trainable || prm.grad.data == nullptr) continue;
      const std::int64_t off = prm.offset - params.trainable_begin();
      const std::int64_t lo = std::max(off, shard_begin_);
      const std::int64_t hi = std::min(off + prm.shape.numel(), shard_end_);
      if (lo >= hi) continue;
      slices_.push_back({prm.name, lo - off, params.trainable_values().flat_slice(lo, hi),
                         shard_grad_.tensor().flat_slice(lo - shard_begin_, hi - shard_begin_),
                         prm.decay, 1.0 / static_cast<double>(prm.replicas)});
    }
  }
  optimizer_ = make_optimizer(optimizer, ops, slices_);
}

// Buckets end at P, P - B, P - 2B, ...: the order backward finishes gradients in.
void DataParallelOptimizer::reduce_buckets_from(std::int64_t offset) {
  const Tensor grads = params_->flat_grads();
  if (reduced_from_ < 0) reduced_from_ = params_->trainable_numel();
  while (reduced_from_ > 0) {
    const std::int64_t begin = std::max<std::int64_t>(0, reduced_from_ - spec_.bucket_elements);
    if (begin < offset) break;
    // Over NCCL this runs beside the rest of backward; step() waits for it.
    dp_->all_reduce_start(grads.flat_slice(begin, reduced_from_), comm::ReduceOp::kSum);
    reduced_from_ = begin;
  }
}

std::function<void(std::int64_t)> DataParallelOptimizer::overlap_hook() {
  if (spec_.zero || dp_->size() == 1) return {};
  return [this](std::int64_t offset) { reduce_buckets_from(offset); };
}

double DataParallelOptimizer::step(double lr, double max_norm) {
  const Tensor grads = params_->flat_grads();
  const std::int64_t p = params_->trainable_numel();
  double sum_sq = 0.0;
  if (!spec_.zero) {
    if (dp_->size() > 1) {
      reduce_buckets_from(0);
      dp_->wait();
    }
    reduced_from_ = -1;
    sum_sq = tp_->all_reduce_sum(local_grad_sum_squares(*ops_, slices_));
  } else {
    // Reduce-scatter over a padded copy (the tail beyond P is zero).
    const Tensor padded = padded_.tensor();
    ops_->fill(padded.flat_slice(p, padded.numel()), 0.0);
    ops_->copy(padded.flat_slice(0, p), grads);
    dp_->reduce_scatter(padded, shard_grad_.tensor());
    sum_sq = local_grad_sum_squares(*ops_, slices_);
    sum_sq = tp_->all_reduce_sum(dp_->all_reduce_sum(sum_sq));
  }
  const double norm = std::sqrt(sum_sq);
  if (std::isfinite(norm)) {
    clip_to_norm(*ops_, slices_, norm, max_norm);
    optimizer_->step(lr);
  }
  if (spec_.zero) {
    // All-gather the updated ranges in place, then back into the flat parameter vector.
    const Tensor padded = padded_.tensor();
    const Tensor values = params_->trainable_values();
    const Tensor mine = padded.flat_slice(dp_->rank() * shard_size_, (dp_->rank() + 1) * shard_size_);
    if (shard_end_ > shard_begin_)
      ops_->copy(mine.flat_slice(0, shard_end_ - shard_begin_), values.flat_slice(shard_begin_, shard_end_));
    dp_->all_gather(mine, padded);
    ops_->copy(values, padded.flat_slice(0, p));
  }
  return norm;
}

}  // namespace tailor::optim
