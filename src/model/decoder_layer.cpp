#include "model/tp_mappings.h"
#include "model/decoder_layer.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::model {

using backend::Ops;
using backend::Tensor;

namespace {

}  // namespace

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
  Linear l;
  static_cast<ParallelLinear&>(l) = column_parallel_linear(params, tp_, index_, name, out,
                                                           out_begin, out_global, in, bias,
                                                           replicas);
  return l;
}

DecoderLayer::Linear DecoderLayer::make_row(ParameterSet& params, const std::string& name,
                                            std::int64_t out, std::int64_t in,
                                            std::int64_t in_begin, std::int64_t in_global,
                                            bool bias) {
  Linear l;
  static_cast<ParallelLinear&>(l) =
      row_parallel_linear(params, tp_, index_, name, out, in, in_begin, in_global, bias);
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

DecoderLayer::Norm DecoderLayer::make_head_norm(ParameterSet& params, const std::string& name) {
  const ShardSpec replicated{Shape{spec_->head_dim}, -1, 0, tp_.size,
                             tp_.size > 1 ? GradSum::kTensorParallel : GradSum::kNone};
  Norm n;
  n.weight = &params.add(name + ".weight", Shape{spec_->head_dim}, ParamRole::kNormWeight,
                         replicated);
  return n;
}

DecoderLayer::DecoderLayer(const ModelSpec& spec, const TpLayout& tp, int index,
                           ParameterSet& params, std::span<const Attachment* const> attachments)
    : spec_(&spec), tp_(tp), index_(index) {
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
  if (spec.qk_norm) {
    q_norm_ = make_head_norm(params, p + "self_attn.q_norm");
    k_norm_ = make_head_norm(params, p + "self_attn.k_norm");
  }
  if (spec.sandwich_norms) {
    TAILOR_ASSERT(spec.norm == NormType::kRmsNorm, "sandwich norms are RMSNorms");
    post_attn_norm_ = make_norm(params, p + "post_attention_layernorm");
    norm2_ = make_norm(params, p + "pre_feedforward_layernorm");
    post_ff_norm_ = make_norm(params, p + "post_feedforward_layernorm");
  } else {
    norm2_ = make_norm(params, p + "post_attention_layernorm");
  }
  if (spec.gated_mlp())
    gate_ = make_column(params, p + "mlp.gate_proj", tp.ffn, tp.ffn_begin, spec.intermediate_size,
                        d, mb, 1);
  up_ = make_column(params, p + "mlp.up_proj", tp.ffn, tp.ffn_begin, spec.intermediate_size, d,
                    mb, 1);
  down_ = make_row(params, p + "mlp.down_proj", d, tp.ffn, tp.ffn_begin, spec.intermediate_size,
                   mb);
  for (const Attachment* a : attachments) attach(params, *a);
}

void DecoderLayer::attach(ParameterSet& params, const Attachment& a) {
  const std::string prefix = fmt::format("model.layers.{}.", index_);
  for (int k = 0; k < 2; ++k) {
    const BlockSite site{prefix, index_, k == 0 ? Sublayer::kAttention : Sublayer::kMlp,
                         spec_->hidden_size, tp_.size};
    Attached<BlockAdapter> b;
    b.adapter = attach_owned(a, params, [&] { return a.attach_block(params, site); });
    if (b.adapter == nullptr) continue;
    if (spec_->sandwich_norms)
      throw_user_error("peft.method",
                       "bottleneck adapters are not supported on models with sandwich norms "
                       "(Gemma 2 and 3): use lora, ia3 or prompt_tuning");
    TAILOR_ASSERT(blocks_[k].adapter == nullptr, "two block adapters after sublayer {} of layer {}",
                  k, index_);
    reserve_buffers(b);
    blocks_[k] = std::move(b);
  }
  for (Linear* l : {&q_, &k_, &v_, &o_, &gate_, &up_, &down_}) {
    if (l->weight == nullptr) continue;  // no gate in a GELU MLP
    Attached<LinearAdapter> la;
    la.adapter = attach_owned(a, params, [&] { return a.attach_linear(params, l->site); });
    if (la.adapter == nullptr) continue;
    la.hooks = la.adapter->hooks();
    reserve_buffers(la);
    if (la.hooks.input) {
      TAILOR_ASSERT(l->input_hook < 0, "two input hooks on {}", l->site.name);
      TAILOR_ASSERT(la.n_saved > 0 && saved_widths_[la.saved] == l->site.in,
                    "the input hook on {} keeps no x'", l->site.name);
      l->input_hook = static_cast<int>(l->adapters.size());
      hook_widths_[1] = std::max(hook_widths_[1], l->site.in);
    }
    if (la.hooks.output) {
      l->output_hooks = true;
      hook_widths_[0] = std::max(hook_widths_[0], l->site.out);
    }
    l->adapters.push_back(std::move(la));
  }
}

template <class Adapter>
void DecoderLayer::reserve_buffers(Attached<Adapter>& attached) {
  const AdapterBuffers need = attached.adapter->buffers();
  attached.saved = saved_widths_.size();
  attached.n_saved = need.saved.size();
  saved_widths_.insert(saved_widths_.end(), need.saved.begin(), need.saved.end());
  if (scratch_widths_.size() < need.scratch.size()) scratch_widths_.resize(need.scratch.size(), 0);
  for (std::size_t i = 0; i < need.scratch.size(); ++i)
    scratch_widths_[i] = std::max(scratch_widths_[i], need.scratch[i]);
}

template <class Adapter>
AdapterTensors DecoderLayer::tensors(const Attached<Adapter>& a, const LayerActivations& act,
                                     const LayerScratch& scratch) const {
  return {std::span<const Tensor>(act.adapter).subspan(a.saved, a.n_saved), scratch.adapter};
}

std::vector<const LinearAdapter*> DecoderLayer::adapters_on(const Parameter& weight) const {
  std::vector<const LinearAdapter*> out;
  for (const Linear* l : {&q_, &k_, &v_, &o_, &gate_, &up_, &down_})
    if (l->weight == &weight || (l->bias != nullptr && l->bias == &weight))
      for (const Attached<LinearAdapter>& a : l->adapters) out.push_back(a.adapter.get());
  return out;
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
  if (spec_->qk_norm) {
    l.q_pre = make(Shape{n, qd}, dtype);
    l.k_pre = make(Shape{n, kvd}, dtype);
    l.q_rstd = make(Shape{n * tp_.q_heads}, stat);
    l.k_rstd = make(Shape{n * tp_.kv_heads}, stat);
  }
  l.attn = make(Shape{n, qd}, dtype);
  l.lse = make(Shape{batch, tp_.q_heads, seq}, stat);
  l.x_mid = make(Shape{n, d}, dtype);
  l.h2 = shared != nullptr ? shared->h2 : make(Shape{n, d}, dtype);
  if (layer_norm) l.mean2 = make(Shape{n}, stat);
  l.rstd2 = make(Shape{n}, stat);
  if (spec_->gated_mlp()) l.gate = make(Shape{n, f}, dtype);
  if (spec_->sandwich_norms) {
    l.o_out = make(Shape{n, d}, dtype);
    l.rstd_pa = make(Shape{n}, stat);
    l.m_out = make(Shape{n, d}, dtype);
    l.rstd_pf = make(Shape{n}, stat);
  }
  l.up = make(Shape{n, f}, dtype);
  l.act = shared != nullptr ? shared->act : make(Shape{n, f}, dtype);
  for (int k = 0; k < 2; ++k)
    if (blocks_[k].adapter != nullptr) l.block_in[k] = make(Shape{n, d}, dtype);
  for (const std::int64_t w : saved_widths_) l.adapter.push_back(make(Shape{n, w}, dtype));
  return l;
}

Tensor DecoderLayer::linear_input(const Linear& l, const Tensor& x,
                                  const LayerActivations& act) const {
  if (l.input_hook < 0) return x;
  const Attached<LinearAdapter>& a = l.adapters[static_cast<std::size_t>(l.input_hook)];
  return act.adapter[a.saved];  // x' (adapter.h: an input adapter's first saved tensor)
}

Tensor DecoderLayer::adapters_forward(Ops& ops, const LayerContext& ctx, const Linear& l,
                                      const Tensor& x, const LayerActivations& act,
                                      const LayerScratch& scratch) const {
  // ctx.adapters false: the base alone (a preference objective's reference), forward only.
  if (l.input_hook < 0 || !ctx.adapters) return x;
  const Attached<LinearAdapter>& a = l.adapters[static_cast<std::size_t>(l.input_hook)];
  a.adapter->input_forward(ops, ctx, tensors(a, act, scratch), x);
  return linear_input(l, x, act);
}

void DecoderLayer::adapters_add(Ops& ops, const LayerContext& ctx, const Linear& l,
                                const Tensor& x, const LayerActivations& act,
                                const LayerScratch& scratch, const Tensor& y) const {
  if (!ctx.adapters) return;
  for (const Attached<LinearAdapter>& a : l.adapters)
    if (a.hooks.additive) a.adapter->forward(ops, ctx, tensors(a, act, scratch), x, y);
}

void DecoderLayer::adapters_output(Ops& ops, const LayerContext& ctx, const Linear& l,
                                   const LayerActivations& act, const LayerScratch& scratch,
                                   const Tensor& y) const {
  if (!ctx.adapters) return;
  const Tensor b = l.bias != nullptr ? l.bias->value : Tensor{};
  for (const Attached<LinearAdapter>& a : l.adapters)
    if (a.hooks.output) a.adapter->output_forward(ops, ctx, tensors(a, act, scratch), y, b);
}

void DecoderLayer::column_forward(Ops& ops, const LayerContext& ctx, const Linear& l,
                                  const Tensor& x, const LayerActivations& act,
                                  const LayerScratch& scratch, const Tensor& y) const {
  const Tensor in = adapters_forward(ops, ctx, l, x, act, scratch);
  linear_forward(ops, in, *l.weight, l.bias, y);
  adapters_add(ops, ctx, l, in, act, scratch, y);
  adapters_output(ops, ctx, l, act, scratch, y);
}

void DecoderLayer::linear_backward_hooked(Ops& ops, const LayerContext& ctx, const Linear& l,
                                          const Tensor& dy, const Tensor& x,
                                          const LayerActivations& act,
                                          const LayerScratch& scratch, const Tensor& dx,
                                          double dx_beta) const {
  // dz: the gradient before the output hooks (last first), in the layer's own scratch so that
  // dy (the residual stream's gradient for o and down) stays as it is.
  Tensor dz = dy;
  if (l.output_hooks) {
    dz = scratch.hook_out.flat_slice(0, dy.numel()).view(dy.shape);
    ops.copy(dz, dy);
    const Tensor b = l.bias != nullptr ? l.bias->value : Tensor{};
    for (auto it = l.adapters.rbegin(); it != l.adapters.rend(); ++it)
      if (it->hooks.output)
        it->adapter->output_backward(ops, ctx, tensors(*it, act, scratch), dz, b);
  }
  const Tensor in = linear_input(l, x, act);
  Tensor din = dx;
  double beta = dx_beta;
  if (l.input_hook >= 0) {
    din = scratch.hook_in.flat_slice(0, in.numel()).view(in.shape);
    beta = 0.0;
  }
  linear_backward(ops, dz, in, *l.weight, l.bias, din, beta);
  for (const Attached<LinearAdapter>& a : l.adapters)
    if (a.hooks.additive) a.adapter->backward(ops, ctx, tensors(a, act, scratch), dz, in, din);
  if (l.input_hook < 0) return;
  if (dx_beta == 0.0) ops.fill(dx, 0.0);
  const Attached<LinearAdapter>& a = l.adapters[static_cast<std::size_t>(l.input_hook)];
  a.adapter->input_backward(ops, ctx, tensors(a, act, scratch), x, din, dx);
}

void DecoderLayer::row_parallel_forward(Ops& ops, const LayerContext& ctx, const Tensor& x,
                                        const Linear& l, const Tensor& residual, const Tensor& y,
                                        const LayerScratch& scratch,
                                        const LayerActivations& act) const {
  const Tensor in = adapters_forward(ops, ctx, l, x, act, scratch);
  if (l.output_hooks) {
    // z = the whole projection (summed over the group, bias added) on its own, rescaled by the
    // output hooks, then joined with the residual.
    const Tensor z = scratch.hook_out.flat_slice(0, y.numel()).view(y.shape);
    ops.gemm(in, false, l.weight->value, true, z, 1.0, 0.0);
    adapters_add(ops, ctx, l, in, act, scratch, z);
    if (ctx.tp != nullptr && ctx.tp->size() > 1) tp::reduce_from_region_forward(ctx.tp, z);
    if (l.bias != nullptr) ops.add_bias(z, l.bias->value);
    adapters_output(ops, ctx, l, act, scratch, z);
    if (residual.data != nullptr) {
      ops.copy(y, residual);
      ops.add(y, z, 1.0);
    } else {
      ops.copy(y, z);
    }
    return;
  }
  if (ctx.tp == nullptr || ctx.tp->size() == 1) {
    // y = residual + in W^T, the projection accumulated straight into the residual (absent: 0).
    if (residual.data != nullptr) ops.copy(y, residual); else ops.fill(y, 0.0);
    ops.gemm(in, false, l.weight->value, true, y, 1.0, 1.0);
    adapters_add(ops, ctx, l, in, act, scratch, y);
  } else {
    // The adapters' partial sums join the base partial sum before the all-reduce.
    const Tensor& partial = scratch.partial;
    ops.gemm(in, false, l.weight->value, true, partial, 1.0, 0.0);
    adapters_add(ops, ctx, l, in, act, scratch, partial);
    tp::reduce_from_region_forward(ctx.tp, partial);
    if (residual.data != nullptr) {
      ops.copy(y, residual);
      ops.add(y, partial, 1.0);
    } else {
      ops.copy(y, partial);
    }
  }
  if (l.bias != nullptr) ops.add_bias(y, l.bias->value);
}

void DecoderLayer::sublayer_output(Ops& ops, const LayerContext& ctx, int slot, const Tensor& in,
                                   const Linear& l, const Tensor& residual, const Tensor& y,
                                   const LayerActivations& act,
                                   const LayerScratch& scratch) const {
  const Attached<BlockAdapter>& b = blocks_[slot];
  if (b.adapter == nullptr || !ctx.adapters) {
    row_parallel_forward(ops, ctx, in, l, residual, y, scratch, act);
    return;
  }
  // p = the projection alone, kept for backward; y = residual + a(p).
  row_parallel_forward(ops, ctx, in, l, Tensor{}, act.block_in[slot], scratch, act);
  b.adapter->forward(ops, ctx, tensors(b, act, scratch), act.block_in[slot], residual, y);
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
  // With q/k norm the projections land in q_pre / k_pre (kept for backward) and their norms fill q
  // and k: rows of [N*H, Dh], one per head, through the ordinary RMSNorm op.
  const Tensor& q_lin = s.qk_norm ? act.q_pre : act.q;
  const Tensor& k_lin = s.qk_norm ? act.k_pre : act.k;
  column_forward(ops, ctx, q_, act.h1, act, scratch, q_lin);
  column_forward(ops, ctx, k_, act.h1, act, scratch, k_lin);
  column_forward(ops, ctx, v_, act.h1, act, scratch, act.v);
  if (s.qk_norm) {
    const Shape q_rows{n_tok * tp_.q_heads, s.head_dim};
    const Shape k_rows{n_tok * tp_.kv_heads, s.head_dim};
    ops.rmsnorm_forward(act.q_pre.view(q_rows), q_norm_.weight->value, s.norm_eps,
                        act.q.view(q_rows), act.q_rstd);
    ops.rmsnorm_forward(act.k_pre.view(k_rows), k_norm_.weight->value, s.norm_eps,
                        act.k.view(k_rows), act.k_rstd);
  }
  if (s.position == PositionType::kRope) {
    ops.rope_forward(act.q.view(Shape{n_tok, tp_.q_heads, s.head_dim}), ctx.positions,
                     rope_freq(ctx));
    ops.rope_forward(act.k.view(Shape{n_tok, tp_.kv_heads, s.head_dim}), ctx.positions,
                     rope_freq(ctx));
  }
}

void DecoderLayer::finish_forward(Ops& ops, const LayerContext& ctx, const Tensor& x,
                                  const Tensor& y, const LayerActivations& act,
                                  const LayerScratch& scratch) const {
  // x_mid = x + attn Wo^T (+ bo), summed over the TP group (through a block adapter if present;
  // through the post-attention norm under sandwich norms).
  join_residual(ops, ctx, 0, act.attn, o_, post_attn_norm_, x, act.x_mid, act.o_out, act.rstd_pa,
                act, scratch);

  // MLP block.
  norm_forward(ops, norm2_, act.x_mid, act.h2, act.mean2, act.rstd2);
  column_forward(ops, ctx, up_, act.h2, act, scratch, act.up);
  if (spec_->gated_mlp()) column_forward(ops, ctx, gate_, act.h2, act, scratch, act.gate);
  mlp_activation(ops, act);
  join_residual(ops, ctx, 1, act.act, down_, post_ff_norm_, act.x_mid, y, act.m_out, act.rstd_pf,
                act, scratch);
}

void DecoderLayer::join_residual(Ops& ops, const LayerContext& ctx, int slot, const Tensor& in,
                                 const Linear& l, const Norm& post, const Tensor& residual,
                                 const Tensor& y, const Tensor& kept, const Tensor& rstd,
                                 const LayerActivations& act, const LayerScratch& scratch) const {
  if (!spec_->sandwich_norms) {
    sublayer_output(ops, ctx, slot, in, l, residual, y, act, scratch);
    return;
  }
  // p alone (summed over the TP group), then y = residual + norm(p).
  sublayer_output(ops, ctx, slot, in, l, Tensor{}, kept, act, scratch);
  ops.rmsnorm_forward(kept, post.weight->value, spec_->norm_eps, scratch.sandwich, rstd);
  ops.copy(y, residual);
  ops.add(y, scratch.sandwich, 1.0);
}

void DecoderLayer::mlp_activation(Ops& ops, const LayerActivations& act) const {
  switch (spec_->mlp) {
    case MlpType::kSwiGLU: ops.swiglu_forward(act.gate, act.up, act.act); return;
    case MlpType::kGeGLU: ops.geglu_forward(act.gate, act.up, act.act); return;
    case MlpType::kGelu: ops.gelu_forward(act.up, act.act); return;
  }
}

const Tensor& DecoderLayer::rope_freq(const LayerContext& ctx) const {
  const bool local = ctx.inv_freq_local.data != nullptr && spec_->attention_window(index_) > 0;
  return local ? ctx.inv_freq_local : ctx.inv_freq;
}

void DecoderLayer::forward(Ops& ops, const LayerContext& ctx, const Tensor& x, const Tensor& y,
                           const LayerActivations& act, const LayerScratch& scratch) const {
  const ModelSpec& s = *spec_;
  const Shape q4{ctx.batch, ctx.seq, tp_.q_heads, s.head_dim};
  const Shape kv4{ctx.batch, ctx.seq, tp_.kv_heads, s.head_dim};
  project_qkv(ops, ctx, x, act, scratch);
  ops.attention_forward(act.q.view(q4), act.k.view(kv4), act.v.view(kv4), ctx.doc_ids,
                        s.attention_scale(), s.attention_window(index_), act.attn.view(q4),
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
  mlp_activation(ops, act);
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
                       s.attention_scale(), s.attention_window(index_), act.attn.view(q4));
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

  // MLP block: y = x_mid + act Wd^T. dy flows unchanged into d x_mid (residual).
  // Through the MLP's block adapter first: d(down output) = dp.
  // Under sandwich norms: through post_feedforward_layernorm first, d p = sc.sandwich.
  Tensor d_out = dy;
  if (const Attached<BlockAdapter>& b = blocks_[1]; b.adapter != nullptr) {
    b.adapter->backward(ops, ctx, tensors(b, act, sc), dy, act.block_in[1], sc.d_block);
    d_out = sc.d_block;
  } else if (s.sandwich_norms) {
    ops.rmsnorm_backward(dy, act.m_out, post_ff_norm_.weight->value, act.rstd_pf, sc.sandwich,
                         post_ff_norm_.weight->grad);
    d_out = sc.sandwich;
  }
  linear_backward_hooked(ops, ctx, down_, d_out, act.act, act, sc, sc.d_act, 0.0);
  if (s.gated_mlp()) {
    if (s.mlp == MlpType::kGeGLU)
      ops.geglu_backward(sc.d_act, act.gate, act.up, sc.d_gate, sc.d_up);
    else
      ops.swiglu_backward(sc.d_act, act.gate, act.up, sc.d_gate, sc.d_up);
    linear_backward_hooked(ops, ctx, gate_, sc.d_gate, act.h2, act, sc, sc.d_h, 0.0);
    linear_backward_hooked(ops, ctx, up_, sc.d_up, act.h2, act, sc, sc.d_h, 1.0);
  } else {
    ops.gelu_backward(sc.d_act, act.up, sc.d_up);
    linear_backward_hooked(ops, ctx, up_, sc.d_up, act.h2, act, sc, sc.d_h, 0.0);
  }
  tp::copy_to_region_backward(ctx.tp, sc.d_h);  // column-parallel: sum dX
  norm_backward(ops, norm2_, sc.d_h, act.x_mid, act.mean2, act.rstd2, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now d x_mid

  // Attention block: x_mid = x + attn Wo^T.
  Tensor d_attn_out = dy;
  if (const Attached<BlockAdapter>& b = blocks_[0]; b.adapter != nullptr) {
    b.adapter->backward(ops, ctx, tensors(b, act, sc), dy, act.block_in[0], sc.d_block);
    d_attn_out = sc.d_block;
  } else if (s.sandwich_norms) {
    ops.rmsnorm_backward(dy, act.o_out, post_attn_norm_.weight->value, act.rstd_pa, sc.sandwich,
                         post_attn_norm_.weight->grad);
    d_attn_out = sc.sandwich;
  }
  linear_backward_hooked(ops, ctx, o_, d_attn_out, act.attn, act, sc, sc.d_attn, 0.0);
  ops.attention_backward(sc.d_attn.view(q4), act.q.view(q4), act.k.view(kv4), act.v.view(kv4),
                         act.attn.view(q4), act.lse, ctx.doc_ids,
                         s.attention_scale(), s.attention_window(index_), sc.d_q.view(q4),
                         sc.d_k.view(kv4), sc.d_v.view(kv4));
  if (s.position == PositionType::kRope) {
    ops.rope_backward(sc.d_q.view(Shape{n_tok, hq, s.head_dim}), ctx.positions, rope_freq(ctx));
    ops.rope_backward(sc.d_k.view(Shape{n_tok, hkv, s.head_dim}), ctx.positions, rope_freq(ctx));
  }
  // Through the q/k norms: d_attn is free after the attention's backward and holds d q_pre, then
  // (once q's projection is done with it) d k_pre in its first N*Hkv*Dh elements.
  Tensor d_q_lin = sc.d_q, d_k_lin = sc.d_k;
  if (s.qk_norm) {
    const Shape q_rows{n_tok * hq, s.head_dim};
    ops.rmsnorm_backward(sc.d_q.view(q_rows), act.q_pre.view(q_rows), q_norm_.weight->value,
                         act.q_rstd, sc.d_attn.view(q_rows), q_norm_.weight->grad);
    d_q_lin = sc.d_attn;
  }
  linear_backward_hooked(ops, ctx, q_, d_q_lin, act.h1, act, sc, sc.d_h, 0.0);
  if (s.qk_norm) {
    const Shape k_rows{n_tok * hkv, s.head_dim};
    d_k_lin = sc.d_attn.flat_slice(0, n_tok * hkv * s.head_dim).view(sc.d_k.shape);
    ops.rmsnorm_backward(sc.d_k.view(k_rows), act.k_pre.view(k_rows), k_norm_.weight->value,
                         act.k_rstd, d_k_lin.view(k_rows), k_norm_.weight->grad);
  }
  linear_backward_hooked(ops, ctx, k_, d_k_lin, act.h1, act, sc, sc.d_h, 1.0);
  linear_backward_hooked(ops, ctx, v_, sc.d_v, act.h1, act, sc, sc.d_h, 1.0);
  tp::copy_to_region_backward(ctx.tp, sc.d_h);
  norm_backward(ops, norm1_, sc.d_h, x, act.mean1, act.rstd1, sc.d_norm);
  ops.add(dy, sc.d_norm, 1.0);  // dy is now dx
}

}  // namespace tailor::model
