#include "model/tp_mappings.h"

namespace tailor::model::tp {
namespace {

bool alone(const comm::Communicator* group) { return group == nullptr || group->size() == 1; }

}  // namespace

void copy_to_region_backward(comm::Communicator* group, const backend::Tensor& dx) {
  if (!alone(group)) group->all_reduce(dx, comm::ReduceOp::kSum);
}

void reduce_from_region_forward(comm::Communicator* group, const backend::Tensor& y) {
  if (!alone(group)) group->all_reduce(y, comm::ReduceOp::kSum);
}

void vocab_max(comm::Communicator* group, const backend::Tensor& row_max) {
  if (!alone(group)) group->all_reduce(row_max, comm::ReduceOp::kMax);
}

void vocab_sum(comm::Communicator* group, const backend::Tensor& stats) {
  if (!alone(group)) group->all_reduce(stats, comm::ReduceOp::kSum);
}

void sum_partial_gradient(comm::Communicator* group, const backend::Tensor& grad) {
  if (!alone(group)) group->all_reduce(grad, comm::ReduceOp::kSum);
}

}  // namespace tailor::model::tp
