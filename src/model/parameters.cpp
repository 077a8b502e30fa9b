#include "model/parameters.h"

namespace tailor::model {

Parameter& ParameterSet::add(std::string name, Shape shape, DType dtype, bool decay) {
  TAILOR_ASSERT(find(name) == nullptr, "duplicate parameter {}", name);
  Parameter p;
  p.name = std::move(name);
  p.shape = shape;
  p.decay = decay;
  p.value = backend::Buffer(dtype, shape);
  p.grad = backend::Buffer(dtype, shape);
  params_.push_back(std::move(p));
  return params_.back();
}

Parameter* ParameterSet::find(const std::string& name) noexcept {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

const Parameter* ParameterSet::find(const std::string& name) const noexcept {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

Parameter& ParameterSet::at(const std::string& name) {
  Parameter* p = find(name);
  TAILOR_ASSERT(p != nullptr, "no parameter named {}", name);
  return *p;
}

std::int64_t ParameterSet::numel() const noexcept {
  std::int64_t n = 0;
  for (const auto& p : params_) n += p.shape.numel();
  return n;
}

void ParameterSet::zero_grad(backend::Ops& ops) {
  for (auto& p : params_)
    if (!p.grad.empty()) ops.fill(p.grad.tensor(), 0.0);
}

}  // namespace tailor::model
