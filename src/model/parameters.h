// Named parameters with their gradients.
//
// Every parameter has its canonical Hugging Face name (`model.layers.3.self_attn.q_proj.weight`),
// which is how optimizers, weight-decay groups, checkpoints, LoRA targets and exports address it:
// names over indices. Shapes are PyTorch's: a linear weight is [out, in].
#pragma once

#include <cstdint>
#include <string>
#include <deque>

#include "backend/ops.h"
#include "backend/tensor.h"

namespace tailor::model {

struct Parameter {
  std::string name;
  Shape shape;
  bool decay = true;          // weight decay applies (matrices and embeddings, not norms/biases)
  bool trainable = true;
  backend::Buffer value;
  backend::Buffer grad;       // empty when not trainable
};

class ParameterSet {
 public:
  // Adds a parameter, zero-filled, in `dtype`. Names must be unique.
  Parameter& add(std::string name, Shape shape, DType dtype, bool decay);

  [[nodiscard]] std::deque<Parameter>& all() noexcept { return params_; }
  [[nodiscard]] const std::deque<Parameter>& all() const noexcept { return params_; }
  // nullptr when absent.
  [[nodiscard]] Parameter* find(const std::string& name) noexcept;
  [[nodiscard]] const Parameter* find(const std::string& name) const noexcept;
  // Asserting lookup.
  [[nodiscard]] Parameter& at(const std::string& name);

  [[nodiscard]] std::int64_t numel() const noexcept;
  void zero_grad(backend::Ops& ops);

 private:
  std::deque<Parameter> params_;  // deque: references stay valid as parameters are added
};

}  // namespace tailor::model
