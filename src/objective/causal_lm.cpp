#include "objective/causal_lm.h"

namespace tailor::objective {

void CausalLm::begin_step(std::span<const model::Batch* const> micro_batches,
                          comm::Communicator& dp) {
  std::int64_t local_tokens = 0;
  for (const model::Batch* b : micro_batches) local_tokens += model::count_loss_targets(b->targets);
  tokens_ = dp.all_reduce_sum(local_tokens);
  dscale_ = tokens_ > 0 ? 1.0 / static_cast<double>(tokens_) : 0.0;
}

double CausalLm::micro_batch(model::Transformer& model, const model::Batch& batch,
                             const GradsReady& grads_ready) {
  // Every token's gradient weight is known before the forward: one fused pass.
  return model.forward_backward(batch, dscale_, grads_ready);
}

double CausalLm::step_loss(double local_sum, comm::Communicator& dp) {
  return dp.all_reduce_sum(local_sum) * dscale_;
}

EvalLoss CausalLm::evaluate(model::Transformer& model, const data::PackedSequences& sequences,
                            comm::Communicator& dp) {
  const std::int64_t t = sequences.seq_len();
  const Shape s{t};
  backend::Buffer ids(DType::kI32, s), targets(DType::kI32, s), positions(DType::kI32, s),
      docs(DType::kI32, s);
  const model::Batch batch{1, t, ids.tensor(), targets.tensor(), positions.tensor(), docs.tensor()};
  const auto n = static_cast<std::size_t>(t);
  double nll = 0.0;
  std::int64_t count = 0;
  for (std::int64_t i = dp.rank(); i < sequences.size(); i += dp.size()) {
    sequences.fill(i, {ids.ptr<std::int32_t>(), n}, {targets.ptr<std::int32_t>(), n},
                   {positions.ptr<std::int32_t>(), n}, {docs.ptr<std::int32_t>(), n});
    count += model::count_loss_targets(batch.targets);
    nll += model.forward(batch);
  }
  nll = dp.all_reduce_sum(nll);
  count = dp.all_reduce_sum(count);
  return {count > 0 ? nll / static_cast<double>(count) : 0.0, count};
}

}  // namespace tailor::objective
