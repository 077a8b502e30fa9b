#include "optim/optimizer.h"

namespace tailor::optim {
namespace {

using backend::Buffer;

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimizerSpec& spec, backend::Ops& ops, std::vector<model::Parameter*> params)
      : spec_(spec), ops_(&ops), params_(std::move(params)) {
    for (model::Parameter* p : params_) {
      State s;
      if (p->trainable) {
        s.m = Buffer(p->value.dtype(), p->shape);
        s.v = Buffer(p->value.dtype(), p->shape);
      }
      state_.push_back(std::move(s));
    }
  }

  void step(double lr) override {
    ++steps_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      model::Parameter& p = *params_[i];
      if (!p.trainable) continue;
      backend::AdamWHyper h;
      h.lr = lr;
      h.beta1 = spec_.beta1;
      h.beta2 = spec_.beta2;
      h.eps = spec_.eps;
      h.weight_decay = p.decay ? spec_.weight_decay : 0.0;
      h.step = steps_;
      ops_->adamw_update(p.value.tensor(), p.grad.tensor(), state_[i].m.tensor(),
                         state_[i].v.tensor(), h);
    }
  }
  [[nodiscard]] std::int64_t steps_taken() const noexcept override { return steps_; }

 private:
  struct State {
    Buffer m, v;
  };
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<model::Parameter*> params_;
  std::vector<State> state_;
  std::int64_t steps_ = 0;
};

// p <- p * (1 - lr * wd); buf <- momentum * buf + g; p <- p - lr * buf  (torch.optim.SGD with
// decoupled decay; buf = g on the first step).
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerSpec& spec, backend::Ops& ops, std::vector<model::Parameter*> params)
      : spec_(spec), ops_(&ops), params_(std::move(params)) {
    for (model::Parameter* p : params_)
      momentum_.emplace_back(spec_.momentum > 0.0 && p->trainable
                                 ? Buffer(p->value.dtype(), p->shape)
                                 : Buffer());
  }

  void step(double lr) override {
    ++steps_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      model::Parameter& p = *params_[i];
      if (!p.trainable) continue;
      const double wd = p.decay ? spec_.weight_decay : 0.0;
      if (wd > 0.0) ops_->scale(p.value.tensor(), 1.0 - lr * wd);
      if (momentum_[i].empty()) {
        ops_->add(p.value.tensor(), p.grad.tensor(), -lr);
      } else {
        const backend::Tensor buf = momentum_[i].tensor();
        if (steps_ == 1) {
          ops_->copy(buf, p.grad.tensor());
        } else {
          ops_->scale(buf, spec_.momentum);
          ops_->add(buf, p.grad.tensor(), 1.0);
        }
        ops_->add(p.value.tensor(), buf, -lr);
      }
    }
  }
  [[nodiscard]] std::int64_t steps_taken() const noexcept override { return steps_; }

 private:
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<model::Parameter*> params_;
  std::vector<Buffer> momentum_;
  std::int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec, backend::Ops& ops,
                                          std::vector<model::Parameter*> params) {
  if (spec.name == "adamw") return std::make_unique<AdamW>(spec, ops, std::move(params));
  if (spec.name == "sgd") return std::make_unique<Sgd>(spec, ops, std::move(params));
  TAILOR_ASSERT(false, "unknown optimizer {}", spec.name);
}

}  // namespace tailor::optim
