// The optimizer step of an SPMD job: data-parallel gradient reduction, the global gradient norm,
// clipping, and the update — unsharded, or ZeRO-1 sharded over the data-parallel group.
//
// Unsharded: gradients (one flat vector per rank) are all-reduced over the DP group in buckets
// taken from the end of the vector, the order backward produces them (so the GPU backend can start
// a bucket as soon as its gradients are final); every rank then updates all of its parameters.
//
// ZeRO-1: the flat vector (P elements, padded to a multiple of D) is cut into D equal ranges;
// gradients are reduce-scattered so DP rank d receives the summed gradient of range d, keeps
// optimizer state for that range only, updates it, and the updated parameters are all-gathered.
// Optimizer memory per rank falls by D; the result equals the unsharded update (same formula on
// the same numbers, element by element).
//
// The gradient norm counts every parameter once: sharded slices add their squares, replicated
// ones are weighted by 1 / replicas, and the sum is all-reduced over the groups holding
// different pieces (TP, and DP under ZeRO).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/ops.h"
#include "comm/communicator.h"
#include "model/parameters.h"
#include "optim/optimizer.h"

namespace tailor::optim {

struct DataParallelSpec {
  bool zero = false;
  std::int64_t bucket_elements = 1 << 22;  // DP all-reduce bucket (unsharded mode)
};

class DataParallelOptimizer {
 public:
  DataParallelOptimizer(backend::Ops& ops, model::ParameterSet& params, comm::Communicator& dp,
                        comm::Communicator& tp, const OptimizerSpec& optimizer,
                        const DataParallelSpec& spec);

  // After backward of this rank's micro-batches (gradients summed locally, already scaled by
  // 1 / tokens of the global batch): reduce, clip to max_norm (0: no clipping), update at lr.
  // Returns the global gradient norm before clipping.
  double step(double lr, double max_norm);

  // Overlap of the DP reduction with backward (unsharded, DP > 1): the callback to pass to the
  // last micro-batch's Transformer::forward_backward. Called with an offset from which all
  // gradients are final, it starts the all-reduce of every bucket lying wholly past it; step()
  // reduces whatever is left. Buckets are the same as without overlap and each is reduced once,
  // from final gradients, so the result is the same bits; over NCCL (its own stream) the
  // reductions run while the GPU still computes earlier layers' gradients. Empty when there is
  // nothing to overlap (ZeRO, DP = 1).
  [[nodiscard]] std::function<void(std::int64_t)> overlap_hook();

  [[nodiscard]] std::int64_t state_numel() const noexcept { return optimizer_->state_numel(); }
  [[nodiscard]] bool sharded() const noexcept { return spec_.zero; }
  // The slices this rank updates (whole trainable parameters, or its ZeRO range of them) and the
  // optimizer holding their state: what a checkpoint saves and restores.
  [[nodiscard]] const std::vector<ParamSlice>& slices() const noexcept { return slices_; }
  [[nodiscard]] Optimizer& optimizer() noexcept { return *optimizer_; }

 private:
  backend::Ops* ops_;
  model::ParameterSet* params_;
  comm::Communicator* dp_;
  comm::Communicator* tp_;
  DataParallelSpec spec_;
  std::vector<ParamSlice> slices_;
  std::unique_ptr<Optimizer> optimizer_;
  // Unsharded: buckets [reduced_from_, P) have been all-reduced this step.
  std::int64_t reduced_from_ = -1;  // -1: none yet
  void reduce_buckets_from(std::int64_t offset);
  // ZeRO-1 only.
  std::int64_t shard_size_ = 0, shard_begin_ = 0, shard_end_ = 0;
  backend::Buffer padded_, shard_grad_;
};

}  // namespace tailor::optim
