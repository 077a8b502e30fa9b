#include "model/decoder_layer.h"

#include <cmath>

#include <fmt/format.h>

#include "core/rng.h"

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
  const GradSum sum = replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone;
  Linear l;
  l.weight = &params.add(name + ".weight", Shape{out, in}, ParamRole::kWeight,
                         {Shape{out_global, in}, split ? 0 : -1, out_begin, replicas, sum});
  if (bias)
    l.bias = &params.add(name + ".bias", Shape{out}, ParamRole::kBias,
                         {Shape{out_global}, split ? 0 : -1, out_begin, replicas, sum});
  return l;
}

DecoderLayer::Linear DecoderLayer::make_row(ParameterSet& params, const std::string& name,
                                            std::int64_t out, std::int64_t in,
                                            std::int64_t in_begin, std::int64_t in_global,
                                            bool bias) {
  const bool split = in != in_global;
  Linear l;
  l.weight = &params.add(name + ".weight", Shape{out, in}, ParamRole::kWeight,
                         {Shape{out, in_global}, split ? 1 : -1, in_begin, split ? 1 : tp_.size});
  // The bias is added once, after the all-reduce: replicated.
  if (bias)
    l.bias = &params.add(name + ".bias", Shape{out}, ParamRole::kBias, {Shape{out}, -1, 0, tp_.size});
  return l;
}

DecoderLayer::Norm DecoderLayer::make_norm(ParameterSet& params, const std::string& name) {
  const ShardSpec replicated{Shape{spec_->hidden_size}, -1, 0, tp_.size};
  Norm n;
  n.weight = &params.add(name + ".weight", Shape{spec_->hidden_size}, ParamRole::kNormWeight,
                         replicated);
  if (spec_->norm == NormType::kLayerNorm)
    n.bias = &params.add(name + ".bias", Shape{spec_->hidden_size}, ParamRole::kBias, replicated);
  return n;
}

DecoderLayer::DecoderLayer(const ModelSpec& spec, const TpLayout& tp, int index,
                           ParameterSet& params, const LoraSpec* lora, std::int64_t bottleneck)
    : spec_(&spec), tp_(tp), lora_(lora), bottleneck_(bottleneck) {
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
  q_.index = 0, k_.index = 1, v_.index = 2, o_.index = 3, gate_.index = 4, up_.index = 5,
  down_.index = 6;
  // Names and input layouts (the dropout masks of LoRA are drawn at global input indices).
  for (Linear* l : {&q_, &k_, &v_, &gate_, &up_}) l->in_global = d;
  q_.name = p + "self_attn.q_proj", k_.name = p + "self_attn.k_proj",
  v_.name = p + "self_attn.v_proj", o_.name = p + "self_attn.o_proj";
  gate_.name = p + "mlp.gate_proj", up_.name = p + "mlp.up_proj", down_.name = p + "mlp.down_proj";
  o_.in_begin = tp.q_head_begin * dh, o_.in_global = spec.q_dim();
  down_.in_begin = tp.ffn_begin, down_.in_global = spec.intermediate_size;
  if (lora != nullptr || bottleneck > 0) {
    // The base is frozen: no gradient, no optimizer state.
    for (Linear* l : {&q_, &k_, &v_, &o_, &gate_, &up_, &down_}) {
      if (l->weight != nullptr) params.freeze(*l->weight);
      if (l->bias != nullptr) params.freeze(*l->bias);
    }
    for (Norm* n : {&norm1_, &norm2_}) {
      params.freeze(*n->weight);
      if (n->bias != nullptr) params.freeze(*n->bias);
    }
  }
  if (bottleneck > 0) {
    adapters_[0] = make_adapter(params, p + "attn_adapter", bottleneck);
    adapters_[1] = make_adapter(params, p + "mlp_adapter", bottleneck);
  }
  if (lora != nullptr) {
    const std::int64_t qd = tp.q_dim(dh), kvd = tp.kv_dim(dh);
    add_lora(params, q_, p + "self_attn.q_proj", "q_proj", false, qd, tp.q_head_begin * dh,
             spec.q_dim(), d, 0, d, 1);
    add_lora(params, k_, p + "self_attn.k_proj", "k_proj", false, kvd, tp.kv_head_begin * dh,
             spec.kv_dim(), d, 0, d, tp.kv_replicas);
    add_lora(params, v_, p + "self_attn.v_proj", "v_proj", false, kvd, tp.kv_head_begin * dh,
             spec.kv_dim(), d, 0, d, tp.kv_replicas);
    add_lora(params, o_, p + "self_attn.o_proj", "o_proj", true, d, 0, d, qd,
             tp.q_head_begin * dh, spec.q_dim(), 1);
    if (gate_.weight != nullptr)
      add_lora(params, gate_, p + "mlp.gate_proj", "gate_proj", false, tp.ffn, tp.ffn_begin,
               spec.intermediate_size, d, 0, d, 1);
    add_lora(params, up_, p + "mlp.up_proj", "up_proj", false, tp.ffn, tp.ffn_begin,
             spec.intermediate_size, d, 0, d, 1);
    add_lora(params, down_, p + "mlp.down_proj", "down_proj", true, d, 0, d, tp.ffn, tp.ffn_begin,
             spec.intermediate_size, 1);
  }
}

LayerActivations DecoderLayer::allocate_activations(std::vector<backend::Buffer>& storage,
                                                    DType dtype, const backend::Ops& ops,
                                                    std::int64_t batch, std::int64_t seq,
                                                    const LayerActivations* shared) const {
  const std::int64_t n = batch * seq;
  const std::int64_t d = spec_->hidden_size;
  const std::int64_t f = tp_.ffn;
  const std::int64_t qd = tp_.q_dim(spec_->head_dim);
  const std::int64_t kvd = tp_.kv_dim(spec_->head_dim);
  const bool layer_norm = spec_->norm == NormType::kLayerNorm;
  const DType stat = accum_dtype(dtype);  // norm statistics, log-sum-exp
  auto make = [&](Shape shape, DType t) {
    storage.push_back(ops.alloc(t, shape));
    return storage.back().tensor();
  };
  LayerActivations l;
  l.h1 = shared != nullptr ? shared->h1 : make(Shape{n, d}, dtype);
  if (layer_norm) l.mean1 = make(Shape{n}, stat);
  l.rstd1 = make(Shape{n}, stat);
  l.q = make(Shape{n, qd}, dtype);
  l.k = make(Shape{n, kvd}, dtype);
  l.v = make(Shape{n, kvd}, dtype);
  l.attn = make(Shape{n, qd}, dtype);
  l.lse = make(Shape{batch, tp_.q_heads, seq}, stat);
  l.x_mid = make(Shape{n, d}, dtype);
  l.h2 = shared != nullptr ? shared->h2 : make(Shape{n, d}, dtype);
  if (layer_norm) l.mean2 = make(Shape{n}, stat);
  l.rstd2 = make(Shape{n}, stat);
  if (spec_->mlp == MlpType::kSwiGLU) l.gate = make(Shape{n, f}, dtype);
  l.up = make(Shape{n, f}, dtype);
  l.act = shared != nullptr ? shared->act : make(Shape{n, f}, dtype);
  if (lora_ != nullptr)
    for (auto& u : l.lora_u) u = make(Shape{n, lora_->rank}, dtype);
  if (bottleneck_ > 0)
    for (int k = 0; k < 2; ++k) {
      l.adapter_in[k] = make(Shape{n, d}, dtype);
      l.adapter_pre[k] = make(Shape{n, bottleneck_}, dtype);
      l.adapter_act[k] = make(Shape{n, bottleneck_}, dtype);
    }
  return l;
}

DecoderLayer::Adapter DecoderLayer::make_adapter(ParameterSet& params, const std::string& name,
                                                 std::int64_t width) {
  const std::int64_t d = spec_->hidden_size;
  const int t = tp_.size;
  Adapter a;
  a.down_w = &params.add(name + ".down.weight", Shape{width, d}, ParamRole::kAdapterWeight, {Shape{}, -1, 0, t, GradSum::kNone});
  a.down_b = &params.add(name + ".down.bias", Shape{width}, ParamRole::kAdapterBias, {Shape{}, -1, 0, t, GradSum::kNone});
  a.up_w = &params.add(name + ".up.weight", Shape{d, width}, ParamRole::kAdapterOut, {Shape{}, -1, 0, t, GradSum::kNone});
  a.up_b = &params.add(name + ".up.bias", Shape{d}, ParamRole::kAdapterBias, {Shape{}, -1, 0, t, GradSum::kNone});
  return a;
}

void DecoderLayer::adapter_forward(Ops& ops, const Adapter& a, int slot,
                                   const LayerActivations& act, const Tensor& residual,
                                   const Tensor& out) const {
  const Tensor& p = act.adapter_in[slot];
  linear_forward(ops, p, *a.down_w, a.down_b, act.adapter_pre[slot]);   // [N, m]
  ops.gelu_forward(act.adapter_pre[slot], act.adapter_act[slot]);
  ops.copy(out, residual);
  ops.add(out, p, 1.0);                                                   // residual + p
  ops.gemm(act.adapter_act[slot], false, a.up_w->value, true, out, 1.0, 1.0);
  ops.add_bias(out, a.up_b->value);
}

void DecoderLayer::adapter_backward(Ops& ops, const Adapter& a, int slot,
                                    const LayerActivations& act, const LayerScratch& sc,
                                    const Tensor& dy) const {
  // dp = dy (identity path) + gradient through up(gelu(down(p))).
  ops.copy(sc.adapter_dp, dy);
  linear_backward(ops, dy, act.adapter_act[slot], *a.up_w, a.up_b, sc.adapter_d1, 0.0);
  ops.gelu_backward(sc.adapter_d1, act.adapter_pre[slot], sc.adapter_d2);
  linear_backward(ops, sc.adapter_d2, act.adapter_in[slot], *a.down_w, a.down_b, sc.adapter_dp, 1.0);
}

void DecoderLayer::add_lora(ParameterSet& params, Linear& l, const std::string& name,
                            std::string_view module, bool row_parallel, std::int64_t out,
                            std::int64_t out_begin, std::int64_t out_global, std::int64_t in,
                            std::int64_t in_begin, std::int64_t in_global, int replicas) {
  if (!lora_->targets_module(module)) return;
  const std::int64_t r = lora_->rank;
  const int t = tp_.size;
  const GradSum tp_sum = t > 1 ? GradSum::kTensorParallel : GradSum::kNone;
  if (!row_parallel) {
    // A replicated (partial gradients from each rank's B rows); B split like W's rows.
    l.lora_a = &params.add(name + ".lora_A.weight", Shape{r, in}, ParamRole::kLoraA,
                           {Shape{r, in_global}, -1, 0, t, tp_sum});
    const bool split = out != out_global;
    l.lora_b = &params.add(name + ".lora_B.weight", Shape{out, r}, ParamRole::kAdapterOut,
                           {Shape{out_global, r}, split ? 0 : -1, out_begin, split ? replicas : t,
                            replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone});
  } else {
    // A split like W's columns; B replicated (partial gradients: the sum of x_r A_r^T).
    const bool split = in != in_global;
    l.lora_a = &params.add(name + ".lora_A.weight", Shape{r, in}, ParamRole::kLoraA,
                           {Shape{r, in_global}, split ? 1 : -1, in_begin, split ? 1 : t,
                            GradSum::kNone});
    l.lora_b = &params.add(name + ".lora_B.weight", Shape{out, r}, ParamRole::kAdapterOut,
                           {Shape{out, r}, -1, 0, t, tp_sum});
  }
}

bool DecoderLayer::lora_dropout_on(const LayerContext& ctx) const {
  return lora_ != nullptr && lora_->dropout > 0.0 && ctx.step >= 0;
}

backend::DropoutKey DecoderLayer::lora_dropout_key(const LayerContext& ctx, const Linear& l) const {
  // One stream per (step, linear): masks of different steps and modules are independent; within
  // one, element (token, column) draws its number at its index in the step's global input.
  backend::DropoutKey k;
  k.seed = ctx.seed;
  k.stream = stream_id(fmt::format("lora_dropout/{}/{}", ctx.step, l.name));
  k.row0 = ctx.first_token;
  k.row_width = l.in_global;
  k.col0 = l.in_begin;
  return k;
}

void DecoderLayer::lora_forward(Ops& ops, const LayerContext& ctx, const Linear& l,
                                const Tensor& x, const LayerActivations& act,
                                const LayerScratch& sc, const Tensor& y) const {
  if (l.lora_a == nullptr) return;
  const Tensor& u = act.lora_u[l.index];
  Tensor in = x;
  if (lora_dropout_on(ctx)) {  // in = dropout(x) [N, in]
    in = sc.lora_x.flat_slice(0, x.numel()).view(x.shape);
    ops.dropout(x, in, lora_->dropout, lora_dropout_key(ctx, l));
  }
  ops.gemm(in, false, l.lora_a->value, true, u, 1.0, 0.0);                 // u = in A^T  [N, r]
  ops.gemm(u, false, l.lora_b->value, true, y, lora_->scale(), 1.0);       // y += s u B^T
}

void DecoderLayer::lora_backward(Ops& ops, const LayerContext& ctx, const Linear& l,
                                 const Tensor& dy, const Tensor& x, const LayerActivations& act,
                                 const LayerScratch& sc, const Tensor& dx) const {
  if (l.lora_a == nullptr) return;
  const double s = lora_->scale();
  const Tensor& u = act.lora_u[l.index];
  const bool drop = lora_dropout_on(ctx);
  ops.gemm(dy, true, u, false, l.lora_b->grad, s, 1.0);          // dB += s dy^T u   [out, r]
  ops.gemm(dy, false, l.lora_b->value, false, sc.lora_du, s, 0.0);  // du = s dy B    [N, r]
  if (!drop) {
    ops.gemm(sc.lora_du, true, x, false, l.lora_a->grad, 1.0, 1.0);   // dA += du^T x   [r, in]
    if (dx.data != nullptr) ops.gemm(sc.lora_du, false, l.lora_a->value, false, dx, 1.0, 1.0);
    return;
  }
  // The mask is recomputed (same key) rather than stored: dA += du^T dropout(x), and
  // dx += dropout(du A) (dropout is linear, its own transpose).
  const backend::DropoutKey key = lora_dropout_key(ctx, l);
  const Tensor xd = sc.lora_x.flat_slice(0, x.numel()).view(x.shape);
  ops.dropout(x, xd, lora_->dropout, key);
  ops.gemm(sc.lora_du, true, xd, false, l.lora_a->grad, 1.0, 1.0);
  if (dx.data == nullptr) return;
  ops.gemm(sc.lora_du, false, l.lora_a->value, false, xd, 1.0, 0.0);  // xd = du A    [N, in]
  ops.dropout(xd, xd, lora_->dropout, key);
  ops.add(dx, xd, 1.0);
}

void DecoderLayer::row_parallel_forward(Ops& ops, const LayerContext& ctx, const Tensor& in,
                                        const Linear& l, const Tensor& residual, const Tensor& y,
                                        const LayerScratch& scratch,
                                        const LayerActivations& act) const {
  if (ctx.tp == nullptr || ctx.tp->size() == 1) {
    // y = residual + in W^T, the projection accumulated straight into the residual (absent: 0).
    if (residual.data != nullptr) ops.copy(y, residual); else ops.fill(y, 0.0);
    ops.gemm(in, false, l.weight->value, true, y, 1.0, 1.0);
    lora_forward(ops, ctx, l, in, act, scratch, y);
  } else {
    // The LoRA partial sum joins the base partial sum before the all-reduce.
    const Tensor& partial = scratch.partial;
    ops.gemm(in, false, l.weight->value, true, partial, 1.0, 0.0);
    lora_forward(ops, ctx, l, in, act, scratch, partial);
    ctx.tp->all_reduce(partial, comm::ReduceOp::kSum);
    if (residual.data != nullptr) {
      ops.copy(y, residual);
      ops.add(y, partial, 1.0);
    } else {
      ops.copy(y, partial);
    }
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

void DecoderLayer::project_qkv(Ops& ops, const LayerContext& ctx, const Tensor& x,
                               const LayerActivations& act, const LayerScratch& scratch) const {
  const ModelSpec& s = *spec_;
  const std::int64_t n_tok = ctx.batch * ctx.seq;
  norm_forward(ops, norm1_, x, act.h1, act.mean1, act.rstd1);
  linear_forward(ops, act.h1, *q_.weight, q_.bias, act.q);
  linear_forward(ops, act.h1, *k_.weight, k_.bias, act.k);
  linear_forward(ops, act.h1, *v_.weight, v_.bias, act.v);
  lora_forward(ops, ctx, q_, act.h1, act, scratch, act.q);
  lora_forward(ops, ctx, k_, act.h1, act, scratch, act.k);
  lora_forward(ops, ctx, v_, act.h1, act, scratch, act.v);
  if (s.position == PositionType::kRope) {
    ops.rope_forward(act.q.view(Shape{n_tok, tp_.q_heads, s.head_dim}), ctx.positions,
                     ctx.inv_freq);
    ops.rope_forward(act.k.view(Shape{n_tok, tp_.kv_heads, s.head_dim}), ctx.positions,
                     ctx.inv_freq);
  }
}

void DecoderLayer::finish_forward(Ops& ops, const LayerContext& ctx, const Tensor& x,
                                  const Tensor& y, const LayerActivations& act,
                                  const LayerScratch& scratch) const {
  // x_mid = x + attn Wo^T (+ bo), summed over the TP group (through an adapter if present).
  if (bottleneck_ > 0) {
    row_parallel_forward(ops, ctx, act.attn, o_, Tensor{}, act.adapter_in[0], scratch, act);
    adapter_forward(ops, adapters_[0], 0, act, x, act.x_mid);
  } else {
    row_parallel_forward(ops, ctx, act.attn, o_, x, act.x_mid, scratch, act);
  }

  // MLP block.
  norm_forward(ops, norm2_, act.x_mid, act.h2, act.mean2, act.rstd2);
  linear_forward(ops, act.h2, *up_.weight, up_.bias, act.up);
  lora_forward(ops, ctx, up_, act.h2, act, scratch, act.up);
  if (spec_->mlp == MlpType::kSwiGLU) {
    linear_forward(ops, act.h2, *gate_.weight, gate_.bias, act.gate);
    lora_forward(ops, ctx, gate_, act.h2, act, scratch, act.gate);
    ops.swiglu_forward(act.gate, act.up, act.act);
  } else {
    ops.gelu_forward(act.up, act.act);
  }
  if (bottleneck_ > 0) {
    row_parallel_forward(ops, ctx, act.act, down_, Tensor{}, act.adapter_in[1], scratch, act);
    adapter_forward(ops, adapters_[1], 1, act, act.x_mid, y);
  } else {
    row_parallel_forward(ops, ctx, act.act, down_, act.x_mid, y, scratch, act);
  }
}

void DecoderLayer::forward(Ops& ops, const LayerContext& ctx, const Tensor& x, const Tensor& y,
                           const LayerActivations& act, const LayerScratch& scratch) const {
  const ModelSpec& s = *spec_;
  const Shape q4{ctx.batch, ctx.seq, tp_.q_heads, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, tp_.kv_heads, s.head_dim};
  project_qkv(ops, ctx, x, act, scratch);
  ops.attention_forward(act.q.view(q4), act.k.view(kv4), act.v.view(kv4), ctx.doc_ids,
                        1.0 / std::sqrt(static_cast<double>(s.head_dim)), act.attn.view(q4),
                        act.lse);
  finish_forward(ops, ctx, x, y, act, scratch);
}

void DecoderLayer::recompute(Ops& ops, const LayerContext& ctx, const Tensor& x,
                             const LayerActivations& act, const LayerScratch& scratch,
                             Recompute mode, const Tensor& y_scratch) const {
  if (mode == Recompute::kFull) {
    forward(ops, ctx, x, y_scratch, act, scratch);
    return;
  }
  if (mode != Recompute::kSelective) return;
  norm_forward(ops, norm1_, x, act.h1, act.mean1, act.rstd1);
  norm_forward(ops, norm2_, act.x_mid, act.h2, act.mean2, act.rstd2);
  if (spec_->mlp == MlpType::kSwiGLU) {
    ops.swiglu_forward(act.gate, act.up, act.act);
  } else {
    ops.gelu_forward(act.up, act.act);
  }
}

void DecoderLayer::forward_cached(Ops& ops, const LayerContext& ctx, const Tensor& x,
                                  const Tensor& y, const LayerActivations& act,
                                  const LayerScratch& scratch, const LayerCache& cache) const {
  const ModelSpec& s = *spec_;
  const std::int64_t t = ctx.seq;
  const std::int64_t cap = cache.k.shape[1];
  const Shape q4{ctx.batch, t, tp_.q_heads, s.head_dim};
  project_qkv(ops, ctx, x, act, scratch);
  // Row b's new keys and values go to cache indices [start[b], start[b] + T).
  const std::int64_t kvd = tp_.kv_dim(s.head_dim);
  const Tensor k_rows = cache.k.view(Shape{ctx.batch * cap, kvd});
  const Tensor v_rows = cache.v.view(Shape{ctx.batch * cap, kvd});
  for (std::int64_t b = 0; b < ctx.batch; ++b) {
    const std::int64_t at = b * cap + cache.start_host[static_cast<std::size_t>(b)];
    ops.copy(k_rows.row_slice(at, at + t), act.k.row_slice(b * t, (b + 1) * t));
    ops.copy(v_rows.row_slice(at, at + t), act.v.row_slice(b * t, (b + 1) * t));
  }
  ops.attention_cached(act.q.view(q4), cache.k, cache.v, cache.start,
                       1.0 / std::sqrt(static_cast<double>(s.head_dim)), act.attn.view(q4));
  finish_forward(ops, ctx, x, y, act, scratch);
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
  // Through the MLP adapter first: d(down output) = dp.
  Tensor d_out = dy;
  if (bottleneck_ > 0) {
    adapter_backward(ops, adapters_[1], 1, act, sc, dy);
    d_out = sc.adapter_dp;
  }
  linear_backward(ops, d_out, act.act, *down_.weight, down_.bias, sc.d_act, 0.0);
  lora_backward(ops, ctx, down_, d_out, act.act, act, sc, sc.d_act);
  if (s.mlp == MlpType::kSwiGLU) {
    ops.swiglu_backward(sc.d_act, act.gate, act.up, sc.d_gate, sc.d_up);
    linear_backward(ops, sc.d_gate, act.h2, *gate_.weight, gate_.bias, sc.d_h, 0.0);
    lora_backward(ops, ctx, gate_, sc.d_gate, act.h2, act, sc, sc.d_h);
    linear_backward(ops, sc.d_up, act.h2, *up_.weight, up_.bias, sc.d_h, 1.0);
    lora_backward(ops, ctx, up_, sc.d_up, act.h2, act, sc, sc.d_h);
  } else {
    ops.gelu_backward(sc.d_act, act.up, sc.d_up);
    linear_backward(ops, sc.d_up, act.h2, *up_.weight, up_.bias, sc.d_h, 0.0);
    lora_backward(ops, ctx, up_, sc.d_up, act.h2, act, sc, sc.d_h);
  }
  if (tp) ctx.tp->all_reduce(sc.d_h, comm::ReduceOp::kSum);  // column-parallel: sum dX
  norm_backward(ops, norm2_, sc.d_h, act.x_mid, act.mean2, act.rstd2, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now d x_mid

  // Attention block: x_mid = x + attn Wo^T.
  Tensor d_attn_out = dy;
  if (bottleneck_ > 0) {
    adapter_backward(ops, adapters_[0], 0, act, sc, dy);
    d_attn_out = sc.adapter_dp;
  }
  linear_backward(ops, d_attn_out, act.attn, *o_.weight, o_.bias, sc.d_attn, 0.0);
  lora_backward(ops, ctx, o_, d_attn_out, act.attn, act, sc, sc.d_attn);
  ops.attention_backward(sc.d_attn.view(q4), act.q.view(q4), act.k.view(kv4), act.v.view(kv4),
                         act.attn.view(q4), act.lse, ctx.doc_ids,
                         1.0 / std::sqrt(static_cast<double>(s.head_dim)), sc.d_q.view(q4),
                         sc.d_k.view(kv4), sc.d_v.view(kv4));
  if (s.position == PositionType::kRope) {
    ops.rope_backward(sc.d_q.view(Shape{n_tok, hq, s.head_dim}), ctx.positions, ctx.inv_freq);
    ops.rope_backward(sc.d_k.view(Shape{n_tok, hkv, s.head_dim}), ctx.positions, ctx.inv_freq);
  }
  linear_backward(ops, sc.d_q, act.h1, *q_.weight, q_.bias, sc.d_h, 0.0);
  lora_backward(ops, ctx, q_, sc.d_q, act.h1, act, sc, sc.d_h);
  linear_backward(ops, sc.d_k, act.h1, *k_.weight, k_.bias, sc.d_h, 1.0);
  lora_backward(ops, ctx, k_, sc.d_k, act.h1, act, sc, sc.d_h);
  linear_backward(ops, sc.d_v, act.h1, *v_.weight, v_.bias, sc.d_h, 1.0);
  lora_backward(ops, ctx, v_, sc.d_v, act.h1, act, sc, sc.d_h);
  if (tp) ctx.tp->all_reduce(sc.d_h, comm::ReduceOp::kSum);
  norm_backward(ops, norm1_, sc.d_h, x, act.mean1, act.rstd1, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now dx
}

}  // namespace tailor::model
