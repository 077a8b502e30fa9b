#include "peft/bottleneck.h"

#include <fmt/format.h>

#include "checkpoint/output_dir.h"
#include "config/config.h"
#include "core/logging.h"
#include "model/decoder_layer.h"
#include "peft/adapter_files.h"

namespace tailor::peft {

using backend::Ops;
using backend::Tensor;
using model::Parameter;
using model::ParamRole;

namespace {

// out = residual + p + up(gelu(down(p))). Saved: down(p) and its gelu [N, m]. Scratch: the
// gradients of both [N, m].
class BottleneckAdapter final : public model::BlockAdapter {
 public:
  BottleneckAdapter(Parameter& down_w, Parameter& down_b, Parameter& up_w, Parameter& up_b)
      : down_w_(&down_w), down_b_(&down_b), up_w_(&up_w), up_b_(&up_b),
        width_(down_w.shape[0]) {}

  [[nodiscard]] model::AdapterBuffers buffers() const override {
    return {{width_, width_}, {width_, width_}};
  }

  void forward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
               const Tensor& p, const Tensor& residual, const Tensor& out) const override {
    (void)ctx;
    const Tensor& pre = t.saved[0];
    const Tensor& act = t.saved[1];
    model::linear_forward(ops, p, *down_w_, down_b_, pre);  // [N, m]
    ops.gelu_forward(pre, act);
    ops.copy(out, residual);
    ops.add(out, p, 1.0);                                    // residual + p
    ops.gemm(act, false, up_w_->value, true, out, 1.0, 1.0);
    ops.add_bias(out, up_b_->value);
  }

  // dp = dy (identity path) + gradient through up(gelu(down(p))).
  void backward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                const Tensor& dy, const Tensor& p, const Tensor& dp) const override {
    (void)ctx;
    const Shape nm{dy.rows(), width_};
    const Tensor d1 = t.scratch[0].flat_slice(0, nm.numel()).view(nm);
    const Tensor d2 = t.scratch[1].flat_slice(0, nm.numel()).view(nm);
    ops.copy(dp, dy);
    model::linear_backward(ops, dy, t.saved[1], *up_w_, up_b_, d1, 0.0);
    ops.gelu_backward(d1, t.saved[0], d2);
    model::linear_backward(ops, d2, p, *down_w_, down_b_, dp, 1.0);
  }

 private:
  Parameter* down_w_;  // [m, D]
  Parameter* down_b_;  // [m]
  Parameter* up_w_;    // [D, m], zero-initialised
  Parameter* up_b_;    // [D]
  std::int64_t width_;
};

}  // namespace

std::unique_ptr<model::BlockAdapter> Bottleneck::attach_block(model::ParameterSet& params,
                                                              const model::BlockSite& site) const {
  const std::string name =
      site.layer_prefix + (site.sublayer == model::Sublayer::kAttention ? "attn_adapter"
                                                                        : "mlp_adapter");
  const std::int64_t d = site.hidden, m = width_;
  // Replicated: every rank holds all of it and computes the same gradient.
  const model::ShardSpec replicated{Shape{}, -1, 0, site.tp_size, model::GradSum::kNone};
  Parameter& down_w = params.add(name + ".down.weight", Shape{m, d}, ParamRole::kAdapterWeight,
                                 replicated);
  Parameter& down_b = params.add(name + ".down.bias", Shape{m}, ParamRole::kAdapterBias, replicated);
  Parameter& up_w = params.add(name + ".up.weight", Shape{d, m}, ParamRole::kAdapterOut, replicated);
  Parameter& up_b = params.add(name + ".up.bias", Shape{d}, ParamRole::kAdapterBias, replicated);
  return std::make_unique<BottleneckAdapter>(down_w, down_b, up_w, up_b);
}

std::shared_ptr<const Method> Bottleneck::from_config(const config::PeftConfig& peft,
                                                      const model::ModelSpec& spec) {
  (void)spec;
  return std::make_shared<Bottleneck>(peft.bottleneck);
}

std::string Bottleneck::summary(const model::Transformer& model, comm::Communicator& tp) const {
  (void)tp;  // replicated: every rank holds them all
  const auto trainable = static_cast<double>(model.params().trainable_numel());
  const auto total = static_cast<double>(model.spec().num_parameters());
  return fmt::format("peft: bottleneck adapters of width {} after attention and MLP: {:.0f} "
                     "trainable parameters ({:.3f}% of {:.2f}M)",
                     width_, trainable, 100.0 * trainable / total, total / 1e6);
}

void Bottleneck::export_adapter(const std::string& dir, const ExportContext& ctx) const {
  TAILOR_ASSERT(ctx.model.tp_layout().size == 1, "bottleneck export needs TP = 1");
  checkpoint::OutputDir out(dir);
  const std::string& tmp = out.tmp();
  checkpoint::write_hf_tensors(tmp + "/adapters.safetensors",
                               method_tensors(ctx.model, ctx.ops, kName, ""), DType::kF32,
                               {{"format", "tailor"}});
  write_adapter_config(tmp + "/adapter_config.json",
                       nlohmann::json{{"tailor_adapter", "bottleneck"},
                                      {"width", width_},
                                      {"placement", {"attention", "mlp"}},
                                      {"activation", "gelu_tanh"}});
  out.commit();
  log::info("exported the bottleneck adapters (Tailor layout) to {}", dir);
}

}  // namespace tailor::peft
