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

// Master weights: a slice whose values are stored in a narrower type than its gradient (bf16
// weights, f32 gradients) is updated in an f32 copy, from which the weights are rounded after
// every step; small updates accumulate in the master instead of vanishing in bf16.
Buffer make_master(backend::Ops& ops, const ParamSlice& s) {
  if (s.value.dtype == s.grad.dtype) return Buffer();
  Buffer master = ops.alloc(s.grad.dtype, s.value.shape);
  ops.copy(master.tensor(), s.value);
  return master;
}

// The tensor the update is computed in: the master when there is one.
backend::Tensor update_target(const Buffer& master, const ParamSlice& s) {
  return master.empty() ? s.value : master.tensor();
}

void publish(backend::Ops& ops, const Buffer& master, const ParamSlice& s) {
  if (!master.empty()) ops.copy(s.value, master.tensor());
}

void append_master_state(std::vector<StateTensor>& out, const std::vector<Buffer>& master) {
  for (std::size_t i = 0; i < master.size(); ++i)
    if (!master[i].empty()) out.push_back({"master", i, master[i].tensor()});
}

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimizerSpec& spec, backend::Ops& ops, std::vector<ParamSlice> slices)
      : spec_(spec), ops_(&ops), slices_(std::move(slices)) {
    for (const ParamSlice& s : slices_) {
      const DType moments = spec_.bf16_moments ? DType::kBF16 : s.grad.dtype;
      m_.push_back(ops.alloc(moments, s.value.shape));
      v_.push_back(ops.alloc(moments, s.value.shape));
      master_.push_back(make_master(ops, s));
      numel_ += (master_.back().empty() ? 2 : 3) * s.value.numel();
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
      if (master_[i].empty()) {
        ops_->adamw_update(s.value, s.grad, m_[i].tensor(), v_[i].tensor(), h);
      } else {  // update the f32 master, round the weights from it (one kernel on CUDA)
        ops_->adamw_update_master(master_[i].tensor(), s.grad, m_[i].tensor(), v_[i].tensor(), h,
                                  s.value);
      }
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
    append_master_state(out, master_);
    return out;
  }
  [[nodiscard]] std::int64_t state_numel() const noexcept override { return numel_; }

 private:
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<ParamSlice> slices_;
  std::vector<Buffer> m_, v_, master_;
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
      momentum_.push_back(spec_.momentum > 0.0 ? ops.alloc(s.grad.dtype, s.value.shape) : Buffer());
      master_.push_back(make_master(ops, s));
      numel_ += (spec_.momentum > 0.0 ? s.value.numel() : 0) +
                (master_.back().empty() ? 0 : s.value.numel());
    }
  }

  void step(double lr) override {
    ++steps_;
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      const ParamSlice& s = slices_[i];
      const backend::Tensor p = update_target(master_[i], s);
      const double wd = s.decay ? spec_.weight_decay : 0.0;
      if (wd > 0.0) ops_->scale(p, 1.0 - lr * wd);
      if (momentum_[i].empty()) {
        ops_->add(p, s.grad, -lr);
      } else {
        const backend::Tensor buf = momentum_[i].tensor();
        if (steps_ == 1) {
          ops_->copy(buf, s.grad);
        } else {
          ops_->scale(buf, spec_.momentum);
          ops_->add(buf, s.grad, 1.0);
        }
        ops_->add(p, buf, -lr);
      }
      publish(*ops_, master_[i], s);
    }
  }
  [[nodiscard]] std::int64_t steps_taken() const noexcept override { return steps_; }
  void set_steps_taken(std::int64_t steps) noexcept override { steps_ = steps; }
  [[nodiscard]] std::vector<StateTensor> state() const override {
    std::vector<StateTensor> out;
    for (std::size_t i = 0; i < slices_.size(); ++i)
      if (!momentum_[i].empty()) out.push_back({"momentum", i, momentum_[i].tensor()});
    append_master_state(out, master_);
    return out;
  }
  [[nodiscard]] std::int64_t state_numel() const noexcept override { return numel_; }

 private:
  OptimizerSpec spec_;
  backend::Ops* ops_;
  std::vector<ParamSlice> slices_;
  std::vector<Buffer> momentum_, master_;
  std::int64_t steps_ = 0;
  std::int64_t numel_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec, backend::Ops& ops,
                                          std::vector<ParamSlice> slices) {
  if (spec.kind == OptimizerKind::kSgd) return std::make_unique<Sgd>(spec, ops, std::move(slices));
  return std::make_unique<AdamW>(spec, ops, std::move(slices));
}

}  // namespace tailor::optim
