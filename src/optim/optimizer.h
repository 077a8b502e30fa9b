// Optimizers over a list of parameter slices (not a model): AdamW with decoupled weight decay, and
// SGD with momentum.
//
// A slice is a contiguous piece of one parameter: the whole parameter normally, or the part of it
// that falls in this rank's range of the flat parameter vector under ZeRO-1 (see zero.h). State
// (moments) is allocated per slice, so it exists only for what this rank updates; weight decay
// applies only to slices of parameters marked `decay` (matrices and embeddings, never norms or
// biases). State has the gradient's dtype; a slice whose values are narrower than its gradient
// (bf16 weights, f32 gradients) also gets f32 master weights, updated in place of the values,
// which are rounded from them after every step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "model/parameters.h"

namespace tailor::optim {

struct ParamSlice {
  std::string name;            // the parameter's canonical name
  std::int64_t flat_begin = 0; // offset of this slice within the parameter's local elements
  backend::Tensor value;       // 1-D view
  backend::Tensor grad;        // 1-D view, same length
  bool decay = true;
  double norm_weight = 1.0;    // 1 / (TP ranks holding the same values): counted once in norms
};

// One slice per trainable parameter, whole.
[[nodiscard]] std::vector<ParamSlice> whole_parameters(model::ParameterSet& params);

enum class OptimizerKind { kAdamW, kSgd };

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kAdamW;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;       // sgd
  bool bf16_moments = false;   // adamw: moments stored in bf16 (CUDA backend)
};

// A state tensor of one slice (checkpoints save and restore these).
struct StateTensor {
  std::string kind;            // exp_avg, exp_avg_sq (AdamW); momentum (SGD); master (f32
                               // master weights of a slice stored in bf16)
  std::size_t slice = 0;       // index into the optimizer's slices
  backend::Tensor value;       // same length as the slice
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every slice from its gradient, at learning rate lr.
  virtual void step(double lr) = 0;
  [[nodiscard]] virtual std::int64_t steps_taken() const noexcept = 0;
  // Restores the update count (bias correction) after loading state from a checkpoint.
  virtual void set_steps_taken(std::int64_t steps) noexcept = 0;
  // Every state tensor, slice by slice.
  [[nodiscard]] virtual std::vector<StateTensor> state() const = 0;
  // Elements of optimizer state held by this rank.
  [[nodiscard]] virtual std::int64_t state_numel() const noexcept = 0;
};

[[nodiscard]] std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec,
                                                        backend::Ops& ops,
                                                        std::vector<ParamSlice> slices);

}  // namespace tailor::optim
