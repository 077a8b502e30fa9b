#include "optim/optimizer.h"

namespace tailor::optim {

std::vector<ParamSlice> whole_parameters(model::ParameterSet& params) {
  std::vector<ParamSlice> out;
  for (model::Parameter& p : params.all()) {
    if (!p.trainable || p.grad.data == nullptr) continue;
    const std::int64_t n = p.shape.numel();
    out.push_back({p.name, 0, p.value.view(Shape{n}), p.grad.view(Shape{n}), p.decay,
                   1.0 / static_cast<double>(p.replicas)});
  }
  return out;
}

namespace {

using backend::Buffer;

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimizerSpec& spec, backend::Ops& ops, std::vector<ParamSlice> slices)
      : spec_(spec), ops_(&ops), slices_(std::move(slices)) {
    for (const ParamSlice& s : slices_) {
      m_.emplace_back(s.value.dtype, s.value.shape);
      v_.emplace_back(s.value.dtype, s.value.shape);
      numel_ += 2 * s.value.numel();
    }
  }

  void step(double lr) override {
    ++steps_;
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      const ParamSlice& s = slices_[i];
      backend::AdamWHyper h;
      h.lr = lr;
      h.beta1 = spec_.beta1;
      h.beta2 = spec_.beta2;
      h.eps = spec_.eps;
      h.weight_decay = s.decay ? spec_.weight_decay : 0.0;
      h.step = steps_;
      ops_->adamw_update(s.value, s.grad, m_[i].tensor(), v_[i].tensor(), h);
    }
  }
  [[nodiscard]] std::int64_t steps_taken() const noexcept override { return steps_; }
  void set_steps_taken(std::int64_t steps) noexcept override { steps_ = steps; }
  [[nodiscard]] std::vector<StateTensor> state() const override {
    std::vector<StateTensor> out;
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      out.push_back({"exp_avg", i, m_[i].tensor()});
      out.push_back({"exp_avg_sq", i, v_[i].tensor()});
    }
    return out;
  }
  [[nodiscard]] std::int64_t state_numel() const noexcept override { return numel_; }

 private:
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<ParamSlice> slices_;
  std::vector<Buffer> m_, v_;
  std::int64_t steps_ = 0;
  std::int64_t numel_ = 0;
};

// p <- p * (1 - lr * wd); buf <- momentum * buf + g; p <- p - lr * buf  (torch.optim.SGD with
// decoupled decay; buf = g on the first step).
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerSpec& spec, backend::Ops& ops, std::vector<ParamSlice> slices)
      : spec_(spec), ops_(&ops), slices_(std::move(slices)) {
    for (const ParamSlice& s : slices_) {
      momentum_.emplace_back(spec_.momentum > 0.0 ? Buffer(s.value.dtype, s.value.shape) : Buffer());
      numel_ += spec_.momentum > 0.0 ? s.value.numel() : 0;
    }
  }

  void step(double lr) override {
    ++steps_;
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      const ParamSlice& s = slices_[i];
      const double wd = s.decay ? spec_.weight_decay : 0.0;
      if (wd > 0.0) ops_->scale(s.value, 1.0 - lr * wd);
      if (momentum_[i].empty()) {
        ops_->add(s.value, s.grad, -lr);
      } else {
        const backend::Tensor buf = momentum_[i].tensor();
        if (steps_ == 1) {
          ops_->copy(buf, s.grad);
        } else {
          ops_->scale(buf, spec_.momentum);
          ops_->add(buf, s.grad, 1.0);
        }
        ops_->add(s.value, buf, -lr);
      }
    }
  }
  [[nodiscard]] std::int64_t steps_taken() const noexcept override { return steps_; }
  void set_steps_taken(std::int64_t steps) noexcept override { steps_ = steps; }
  [[nodiscard]] std::vector<StateTensor> state() const override {
    std::vector<StateTensor> out;
    for (std::size_t i = 0; i < slices_.size(); ++i)
      if (!momentum_[i].empty()) out.push_back({"momentum", i, momentum_[i].tensor()});
    return out;
  }
  [[nodiscard]] std::int64_t state_numel() const noexcept override { return numel_; }

 private:
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<ParamSlice> slices_;
  std::vector<Buffer> momentum_;
  std::int64_t steps_ = 0;
  std::int64_t numel_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec, backend::Ops& ops,
                                          std::vector<ParamSlice> slices) {
  if (spec.name == "sgd") return std::make_unique<Sgd>(spec, ops, std::move(slices));
  TAILOR_ASSERT(spec.name == "adamw", "unknown optimizer {}", spec.name);
  return std::make_unique<AdamW>(spec, ops, std::move(slices));
}

}  // namespace tailor::optim
