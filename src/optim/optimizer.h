// Optimizers over a list of parameters (not a model): AdamW with decoupled weight decay, and SGD
// with momentum. State is allocated for trainable parameters only; weight decay applies only to
// parameters marked `decay` (matrices and embeddings; never norms or biases).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "model/parameters.h"

namespace tailor::optim {

struct OptimizerSpec {
  std::string name = "adamw";  // adamw | sgd
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;       // sgd
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every trainable parameter from its gradient, at learning rate lr.
  virtual void step(double lr) = 0;
  [[nodiscard]] virtual std::int64_t steps_taken() const noexcept = 0;
};

// Parameters must outlive the optimizer.
[[nodiscard]] std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec,
                                                        backend::Ops& ops,
                                                        std::vector<model::Parameter*> params);

}  // namespace tailor::optim
