#include "model/decoder_layer.h"

#include <cmath>

#include <fmt/format.h>

namespace tailor::model {

using backend::Ops;
using backend::Tensor;

void linear_forward(Ops& ops, const Tensor& x, const Parameter& w, const Parameter* b,
                    const Tensor& y) {
  ops.gemm(x, false, w.value, true, y, 1.0, 0.0);
  if (b != nullptr) ops.add_bias(y, b->value);
}

void linear_backward(Ops& ops, const Tensor& dy, const Tensor& x, Parameter& w, Parameter* b,
                     const Tensor& dx, double dx_beta) {
  if (dx.data != nullptr) ops.gemm(dy, false, w.value, false, dx, 1.0, dx_beta);
  if (w.grad.data != nullptr) ops.gemm(dy, true, x, false, w.grad, 1.0, 1.0);
  if (b != nullptr && b->grad.data != nullptr) ops.bias_backward(b->grad, dy);
}

DecoderLayer::Linear DecoderLayer::make_column(ParameterSet& params, const std::string& name,
                                               std::int64_t out, std::int64_t out_begin,
                                               std::int64_t out_global, std::int64_t in, bool bias,
                                               int replicas) {
  // `replicas` ranks hold the same rows (a KV head shared by several ranks); each computes a
  // partial gradient from its own query heads, summed over those ranks after backward.
  const bool split = out != out_global;
  const bool partial = replicas > 1;
  Linear l;
  l.weight = &params.add(name + ".weight", Shape{out, in}, /*decay=*/true,
                         {Shape{out_global, in}, split ? 0 : -1, out_begin, replicas, partial});
  if (bias)
    l.bias = &params.add(name + ".bias", Shape{out}, /*decay=*/false,
                         {Shape{out_global}, split ? 0 : -1, out_begin, replicas, partial});
  return l;
}

DecoderLayer::Linear DecoderLayer::make_row(ParameterSet& params, const std::string& name,
                                            std::int64_t out, std::int64_t in,
                                            std::int64_t in_begin, std::int64_t in_global,
                                            bool bias) {
  const bool split = in != in_global;
  Linear l;
  l.weight = &params.add(name + ".weight", Shape{out, in}, /*decay=*/true,
                         {Shape{out, in_global}, split ? 1 : -1, in_begin, split ? 1 : tp_.size});
  // The bias is added once, after the all-reduce: replicated.
  if (bias) l.bias = &params.add(name + ".bias", Shape{out}, /*decay=*/false, {Shape{out}, -1, 0, tp_.size});
  return l;
}

DecoderLayer::Norm DecoderLayer::make_norm(ParameterSet& params, const std::string& name) {
  const ShardSpec replicated{Shape{spec_->hidden_size}, -1, 0, tp_.size};
  Norm n;
  n.weight = &params.add(name + ".weight", Shape{spec_->hidden_size}, /*decay=*/false, replicated);
  if (spec_->norm == NormType::kLayerNorm)
    n.bias = &params.add(name + ".bias", Shape{spec_->hidden_size}, /*decay=*/false, replicated);
  return n;
}

DecoderLayer::DecoderLayer(const ModelSpec& spec, const TpLayout& tp, int index,
                           ParameterSet& params)
    : spec_(&spec), tp_(tp) {
  const std::string p = fmt::format("model.layers.{}.", index);
  const std::int64_t d = spec.hidden_size;
  const std::int64_t dh = spec.head_dim;
  const bool ab = spec.attention_bias, mb = spec.mlp_bias;
  norm1_ = make_norm(params, p + "input_layernorm");
  q_ = make_column(params, p + "self_attn.q_proj", tp.q_dim(dh), tp.q_head_begin * dh,
                   spec.q_dim(), d, ab, 1);
  k_ = make_column(params, p + "self_attn.k_proj", tp.kv_dim(dh), tp.kv_head_begin * dh,
                   spec.kv_dim(), d, ab, tp.kv_replicas);
  v_ = make_column(params, p + "self_attn.v_proj", tp.kv_dim(dh), tp.kv_head_begin * dh,
                   spec.kv_dim(), d, ab, tp.kv_replicas);
  o_ = make_row(params, p + "self_attn.o_proj", d, tp.q_dim(dh), tp.q_head_begin * dh,
                spec.q_dim(), spec.o_bias);
  norm2_ = make_norm(params, p + "post_attention_layernorm");
  if (spec.mlp == MlpType::kSwiGLU)
    gate_ = make_column(params, p + "mlp.gate_proj", tp.ffn, tp.ffn_begin, spec.intermediate_size,
                        d, mb, 1);
  up_ = make_column(params, p + "mlp.up_proj", tp.ffn, tp.ffn_begin, spec.intermediate_size, d,
                    mb, 1);
  down_ = make_row(params, p + "mlp.down_proj", d, tp.ffn, tp.ffn_begin, spec.intermediate_size,
                   mb);
}

void DecoderLayer::row_parallel_forward(Ops& ops, const LayerContext& ctx, const Tensor& in,
                                        const Linear& l, const Tensor& residual, const Tensor& y,
                                        const Tensor& partial) const {
  if (ctx.tp == nullptr || ctx.tp->size() == 1) {
    // y = residual + in W^T, the projection accumulated straight into the residual.
    ops.copy(y, residual);
    ops.gemm(in, false, l.weight->value, true, y, 1.0, 1.0);
  } else {
    ops.gemm(in, false, l.weight->value, true, partial, 1.0, 0.0);
    ctx.tp->all_reduce(partial, comm::ReduceOp::kSum);
    ops.copy(y, residual);
    ops.add(y, partial, 1.0);
  }
  if (l.bias != nullptr) ops.add_bias(y, l.bias->value);
}

void DecoderLayer::norm_forward(Ops& ops, const Norm& n, const Tensor& x, const Tensor& y,
                                const Tensor& mean, const Tensor& rstd) const {
  if (spec_->norm == NormType::kRmsNorm) {
    ops.rmsnorm_forward(x, n.weight->value, spec_->norm_eps, y, rstd);
  } else {
    ops.layernorm_forward(x, n.weight->value, n.bias->value, spec_->norm_eps, y,
                          mean, rstd);
  }
}

void DecoderLayer::norm_backward(Ops& ops, const Norm& n, const Tensor& dy, const Tensor& x,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dx) const {
  if (spec_->norm == NormType::kRmsNorm) {
    ops.rmsnorm_backward(dy, x, n.weight->value, rstd, dx, n.weight->grad);
  } else {
    ops.layernorm_backward(dy, x, n.weight->value, mean, rstd, dx,
                           n.weight->grad, n.bias->grad);
  }
}

void DecoderLayer::forward(Ops& ops, const LayerContext& ctx, const Tensor& x, const Tensor& y,
                           const LayerActivations& act, const LayerScratch& scratch) const {
  const ModelSpec& s = *spec_;
  const std::int64_t n_tok = ctx.batch * ctx.seq;
  const std::int64_t hq = tp_.q_heads, hkv = tp_.kv_heads;
  const Shape q4{ctx.batch, ctx.seq, hq, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, hkv, s.head_dim};

  // Attention block.
  norm_forward(ops, norm1_, x, act.h1, act.mean1, act.rstd1);
  linear_forward(ops, act.h1, *q_.weight, q_.bias, act.q);
  linear_forward(ops, act.h1, *k_.weight, k_.bias, act.k);
  linear_forward(ops, act.h1, *v_.weight, v_.bias, act.v);
  if (s.position == PositionType::kRope) {
    ops.rope_forward(act.q.view(Shape{n_tok, hq, s.head_dim}), ctx.positions, ctx.inv_freq);
    ops.rope_forward(act.k.view(Shape{n_tok, hkv, s.head_dim}), ctx.positions, ctx.inv_freq);
  }
  ops.attention_forward(act.q.view(q4), act.k.view(kv4), act.v.view(kv4), ctx.doc_ids,
                        1.0 / std::sqrt(static_cast<double>(s.head_dim)), act.attn.view(q4),
                        act.lse);
  // x_mid = x + attn Wo^T (+ bo), summed over the TP group.
  row_parallel_forward(ops, ctx, act.attn, o_, x, act.x_mid, scratch.partial);

  // MLP block.
  norm_forward(ops, norm2_, act.x_mid, act.h2, act.mean2, act.rstd2);
  linear_forward(ops, act.h2, *up_.weight, up_.bias, act.up);
  if (s.mlp == MlpType::kSwiGLU) {
    linear_forward(ops, act.h2, *gate_.weight, gate_.bias, act.gate);
    ops.swiglu_forward(act.gate, act.up, act.act);
  } else {
    ops.gelu_forward(act.up, act.act);
  }
  row_parallel_forward(ops, ctx, act.act, down_, act.x_mid, y, scratch.partial);
}

void DecoderLayer::backward(Ops& ops, const LayerContext& ctx, const Tensor& x,
                            const LayerActivations& act, const LayerScratch& sc,
                            const Tensor& dy) const {
  const ModelSpec& s = *spec_;
  const std::int64_t n_tok = ctx.batch * ctx.seq;
  const std::int64_t hq = tp_.q_heads, hkv = tp_.kv_heads;
  const Shape q4{ctx.batch, ctx.seq, hq, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, hkv, s.head_dim};
  const bool tp = ctx.tp != nullptr && ctx.tp->size() > 1;

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
  if (tp) ctx.tp->all_reduce(sc.d_h, comm::ReduceOp::kSum);  // column-parallel: sum dX
  norm_backward(ops, norm2_, sc.d_h, act.x_mid, act.mean2, act.rstd2, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now d x_mid

  // Attention block: x_mid = x + attn Wo^T.
  linear_backward(ops, dy, act.attn, *o_.weight, o_.bias, sc.d_attn, 0.0);
  ops.attention_backward(sc.d_attn.view(q4), act.q.view(q4), act.k.view(kv4), act.v.view(kv4),
                         act.attn.view(q4), act.lse, ctx.doc_ids,
                         1.0 / std::sqrt(static_cast<double>(s.head_dim)), sc.d_q.view(q4),
                         sc.d_k.view(kv4), sc.d_v.view(kv4));
  if (s.position == PositionType::kRope) {
    ops.rope_backward(sc.d_q.view(Shape{n_tok, hq, s.head_dim}), ctx.positions, ctx.inv_freq);
    ops.rope_backward(sc.d_k.view(Shape{n_tok, hkv, s.head_dim}), ctx.positions, ctx.inv_freq);
  }
  linear_backward(ops, sc.d_q, act.h1, *q_.weight, q_.bias, sc.d_h, 0.0);
  linear_backward(ops, sc.d_k, act.h1, *k_.weight, k_.bias, sc.d_h, 1.0);
  linear_backward(ops, sc.d_v, act.h1, *v_.weight, v_.bias, sc.d_h, 1.0);
  if (tp) ctx.tp->all_reduce(sc.d_h, comm::ReduceOp::kSum);
  norm_backward(ops, norm1_, sc.d_h, x, act.mean1, act.rstd1, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now dx
}

}  // namespace tailor::model
