#include "model/decoder_layer.h"

#include <cmath>

#include <fmt/format.h>

namespace tailor::model {

using backend::Ops;
using backend::Tensor;

void linear_forward(Ops& ops, const Tensor& x, const Parameter& w, const Parameter* b,
                    const Tensor& y) {
  ops.gemm(x, false, w.value.tensor(), true, y, 1.0, 0.0);
  if (b != nullptr) ops.add_bias(y, b->value.tensor());
}

void linear_backward(Ops& ops, const Tensor& dy, const Tensor& x, Parameter& w, Parameter* b,
                     const Tensor& dx, double dx_beta) {
  if (dx.data != nullptr) ops.gemm(dy, false, w.value.tensor(), false, dx, 1.0, dx_beta);
  if (!w.grad.empty()) ops.gemm(dy, true, x, false, w.grad.tensor(), 1.0, 1.0);
  if (b != nullptr && !b->grad.empty()) ops.bias_backward(b->grad.tensor(), dy);
}

DecoderLayer::Linear DecoderLayer::make_linear(ParameterSet& params, const std::string& name,
                                               std::int64_t out, std::int64_t in, bool bias,
                                               DType dtype) {
  Linear l;
  l.weight = &params.add(name + ".weight", Shape{out, in}, dtype, /*decay=*/true);
  if (bias) l.bias = &params.add(name + ".bias", Shape{out}, dtype, /*decay=*/false);
  return l;
}

DecoderLayer::Norm DecoderLayer::make_norm(ParameterSet& params, const std::string& name,
                                           DType dtype) {
  Norm n;
  n.weight = &params.add(name + ".weight", Shape{spec_->hidden_size}, dtype, /*decay=*/false);
  if (spec_->norm == NormType::kLayerNorm)
    n.bias = &params.add(name + ".bias", Shape{spec_->hidden_size}, dtype, /*decay=*/false);
  return n;
}

DecoderLayer::DecoderLayer(const ModelSpec& spec, int index, ParameterSet& params, DType dtype)
    : spec_(&spec) {
  const std::string p = fmt::format("model.layers.{}.", index);
  const std::int64_t d = spec.hidden_size;
  const std::int64_t f = spec.intermediate_size;
  norm1_ = make_norm(params, p + "input_layernorm", dtype);
  q_ = make_linear(params, p + "self_attn.q_proj", spec.q_dim(), d, spec.attention_bias, dtype);
  k_ = make_linear(params, p + "self_attn.k_proj", spec.kv_dim(), d, spec.attention_bias, dtype);
  v_ = make_linear(params, p + "self_attn.v_proj", spec.kv_dim(), d, spec.attention_bias, dtype);
  o_ = make_linear(params, p + "self_attn.o_proj", d, spec.q_dim(), spec.attention_bias, dtype);
  norm2_ = make_norm(params, p + "post_attention_layernorm", dtype);
  if (spec.mlp == MlpType::kSwiGLU)
    gate_ = make_linear(params, p + "mlp.gate_proj", f, d, spec.mlp_bias, dtype);
  up_ = make_linear(params, p + "mlp.up_proj", f, d, spec.mlp_bias, dtype);
  down_ = make_linear(params, p + "mlp.down_proj", d, f, spec.mlp_bias, dtype);
}

void DecoderLayer::norm_forward(Ops& ops, const Norm& n, const Tensor& x, const Tensor& y,
                                const Tensor& mean, const Tensor& rstd) const {
  if (spec_->norm == NormType::kRmsNorm) {
    ops.rmsnorm_forward(x, n.weight->value.tensor(), spec_->norm_eps, y, rstd);
  } else {
    ops.layernorm_forward(x, n.weight->value.tensor(), n.bias->value.tensor(), spec_->norm_eps, y,
                          mean, rstd);
  }
}

void DecoderLayer::norm_backward(Ops& ops, const Norm& n, const Tensor& dy, const Tensor& x,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dx) const {
  if (spec_->norm == NormType::kRmsNorm) {
    ops.rmsnorm_backward(dy, x, n.weight->value.tensor(), rstd, dx, n.weight->grad.tensor());
  } else {
    ops.layernorm_backward(dy, x, n.weight->value.tensor(), mean, rstd, dx,
                           n.weight->grad.tensor(), n.bias->grad.tensor());
  }
}

void DecoderLayer::forward(Ops& ops, const LayerContext& ctx, const Tensor& x, const Tensor& y,
                           const LayerActivations& act) const {
  const ModelSpec& s = *spec_;
  const std::int64_t n_tok = ctx.batch * ctx.seq;
  const Shape q4{ctx.batch, ctx.seq, s.num_heads, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, s.num_kv_heads, s.head_dim};

  // Attention block.
  norm_forward(ops, norm1_, x, act.h1, act.mean1, act.rstd1);
  linear_forward(ops, act.h1, *q_.weight, q_.bias, act.q);
  linear_forward(ops, act.h1, *k_.weight, k_.bias, act.k);
  linear_forward(ops, act.h1, *v_.weight, v_.bias, act.v);
  if (s.position == PositionType::kRope) {
    ops.rope_forward(act.q.view(Shape{n_tok, s.num_heads, s.head_dim}), ctx.positions, ctx.inv_freq);
    ops.rope_forward(act.k.view(Shape{n_tok, s.num_kv_heads, s.head_dim}), ctx.positions,
                     ctx.inv_freq);
  }
  ops.attention_forward(act.q.view(q4), act.k.view(kv4), act.v.view(kv4), ctx.doc_ids,
                        1.0 / std::sqrt(static_cast<double>(s.head_dim)), act.attn.view(q4),
                        act.lse);
  ops.copy(act.x_mid, x);
  // x_mid = x + attn Wo^T (+ bo): accumulate the projection straight into the residual.
  ops.gemm(act.attn, false, o_.weight->value.tensor(), true, act.x_mid, 1.0, 1.0);
  if (o_.bias != nullptr) ops.add_bias(act.x_mid, o_.bias->value.tensor());

  // MLP block.
  norm_forward(ops, norm2_, act.x_mid, act.h2, act.mean2, act.rstd2);
  linear_forward(ops, act.h2, *up_.weight, up_.bias, act.up);
  if (s.mlp == MlpType::kSwiGLU) {
    linear_forward(ops, act.h2, *gate_.weight, gate_.bias, act.gate);
    ops.swiglu_forward(act.gate, act.up, act.act);
  } else {
    ops.gelu_forward(act.up, act.act);
  }
  ops.copy(y, act.x_mid);
  ops.gemm(act.act, false, down_.weight->value.tensor(), true, y, 1.0, 1.0);
  if (down_.bias != nullptr) ops.add_bias(y, down_.bias->value.tensor());
}

void DecoderLayer::backward(Ops& ops, const LayerContext& ctx, const Tensor& x,
                            const LayerActivations& act, const LayerScratch& sc,
                            const Tensor& dy) const {
  const ModelSpec& s = *spec_;
  const std::int64_t n_tok = ctx.batch * ctx.seq;
  const Shape q4{ctx.batch, ctx.seq, s.num_heads, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, s.num_kv_heads, s.head_dim};

  // MLP block: y = x_mid + act Wd^T. dy flows unchanged into d x_mid (residual).
  linear_backward(ops, dy, act.act, *down_.weight, down_.bias, sc.d_act, 0.0);
  if (s.mlp == MlpType::kSwiGLU) {
    ops.swiglu_backward(sc.d_act, act.gate, act.up, sc.d_gate, sc.d_up);
    linear_backward(ops, sc.d_gate, act.h2, *gate_.weight, gate_.bias, sc.d_h, 0.0);
    linear_backward(ops, sc.d_up, act.h2, *up_.weight, up_.bias, sc.d_h, 1.0);
  } else {
    ops.gelu_backward(sc.d_act, act.up, sc.d_up);
    linear_backward(ops, sc.d_up, act.h2, *up_.weight, up_.bias, sc.d_h, 0.0);
  }
  norm_backward(ops, norm2_, sc.d_h, act.x_mid, act.mean2, act.rstd2, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now d x_mid

  // Attention block: x_mid = x + attn Wo^T.
  linear_backward(ops, dy, act.attn, *o_.weight, o_.bias, sc.d_attn, 0.0);
  ops.attention_backward(sc.d_attn.view(q4), act.q.view(q4), act.k.view(kv4), act.v.view(kv4),
                         act.attn.view(q4), act.lse, ctx.doc_ids,
                         1.0 / std::sqrt(static_cast<double>(s.head_dim)), sc.d_q.view(q4),
                         sc.d_k.view(kv4), sc.d_v.view(kv4));
  if (s.position == PositionType::kRope) {
    ops.rope_backward(sc.d_q.view(Shape{n_tok, s.num_heads, s.head_dim}), ctx.positions,
                      ctx.inv_freq);
    ops.rope_backward(sc.d_k.view(Shape{n_tok, s.num_kv_heads, s.head_dim}), ctx.positions,
                      ctx.inv_freq);
  }
  linear_backward(ops, sc.d_q, act.h1, *q_.weight, q_.bias, sc.d_h, 0.0);
  linear_backward(ops, sc.d_k, act.h1, *k_.weight, k_.bias, sc.d_h, 1.0);
  linear_backward(ops, sc.d_v, act.h1, *v_.weight, v_.bias, sc.d_h, 1.0);
  norm_backward(ops, norm1_, sc.d_h, x, act.mean1, act.rstd1, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now dx
}

}  // namespace tailor::model
