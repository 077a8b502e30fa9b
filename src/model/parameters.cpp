#include "model/parameters.h"

namespace tailor::model {

std::int64_t Parameter::global_index(std::int64_t i) const noexcept {
  if (shard_dim < 0) return i;
  if (shape.rank() == 1) return shard_offset + i;
  const std::int64_t cols = shape.cols();
  const std::int64_t r = i / cols, c = i % cols;
  const std::int64_t gcols = global_shape.cols();
  return shard_dim == 0 ? (shard_offset + r) * gcols + c : r * gcols + shard_offset + c;
}

Parameter& ParameterSet::add(std::string name, Shape shape, ParamRole role, ShardSpec shard) {
  TAILOR_ASSERT(find(name) == nullptr, "duplicate parameter {}", name);
  TAILOR_ASSERT(values_.empty(), "parameter {} added after allocate()", name);
  Parameter p;
  p.name = std::move(name);
  p.shape = shape;
  p.global_shape = shard.global_shape.rank() == 0 ? shape : shard.global_shape;
  p.shard_dim = shard.shard_dim;
  p.shard_offset = shard.shard_offset;
  p.replicas = shard.replicas;
  p.grad_sum = shard.grad_sum;
  p.role = role;
  p.decay = decays(role);
  numel_ += shape.numel();
  params_.push_back(std::move(p));
  by_name_.emplace(params_.back().name, &params_.back());
  return params_.back();
}

void ParameterSet::freeze(Parameter& p) {
  TAILOR_ASSERT(values_.empty(), "freeze() after allocate()");
  p.trainable = false;
}

void ParameterSet::allocate(DType dtype, const backend::Ops& ops) {
  TAILOR_ASSERT(values_.empty(), "allocate() called twice");
  std::int64_t offset = 0;
  for (Parameter& p : params_)
    if (!p.trainable) {
      p.offset = offset;
      offset += p.shape.numel();
    }
  trainable_begin_ = offset;
  for (Parameter& p : params_)
    if (p.trainable) {
      p.offset = offset;
      offset += p.shape.numel();
    }
  values_ = ops.alloc(dtype, Shape{numel_});
  grads_ = ops.alloc(accum_dtype(dtype), Shape{numel_ - trainable_begin_});
  for (Parameter& p : params_) {
    p.value = values_.tensor().flat_slice(p.offset, p.offset + p.shape.numel()).view(p.shape);
    if (p.trainable) {
      const std::int64_t g = p.offset - trainable_begin_;
      p.grad = grads_.tensor().flat_slice(g, g + p.shape.numel()).view(p.shape);
    }
  }
}

Parameter* ParameterSet::find(const std::string& name) noexcept {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const Parameter* ParameterSet::find(const std::string& name) const noexcept {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Parameter& ParameterSet::at(const std::string& name) {
  Parameter* p = find(name);
  TAILOR_ASSERT(p != nullptr, "no parameter named {}", name);
  return *p;
}

void ParameterSet::zero_grad(backend::Ops& ops) {
  if (!grads_.empty()) ops.fill(grads_.tensor(), 0.0);
}

}  // namespace tailor::model
