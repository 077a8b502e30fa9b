// One decoder layer (pre-norm): attention block then MLP block, each with a residual connection.
//
//   h1 = norm1(x)                          x, h1: [N, D]        (N = B*T tokens)
//   q, k, v = h1 Wq^T, h1 Wk^T, h1 Wv^T    q: [N, Hq*Dh]  k, v: [N, Hkv*Dh]   (+ biases)
//   q, k = qnorm(q), knorm(k)              (q/k norm: RMSNorm of each head's [Dh] vector)
//   q, k = rope(q), rope(k)                (RoPE models)
//   a = attention(q, k, v)                 a: [N, Hq*Dh]  (causal, GQA, document masks)
//   x2 = x + a Wo^T                        [N, D]
//   h2 = norm2(x2)
//   m = silu(h2 Wg^T) * (h2 Wu^T)   or   gelu(h2 Wu^T)      m: [N, F]
//   y = x2 + m Wd^T
//
// Forward saves what backward needs in LayerActivations; backward takes dy and turns it into dx in
// place, accumulating (+=) parameter gradients. forward_cached() is the inference variant: the
// same computation, but the attention reads the keys and values of earlier tokens from a KV
// cache (kv_cache.h) instead of recomputing them.
//
// Tensor parallelism (Megatron): q/k/v and gate/up are column-parallel (this rank's heads and MLP
// columns), o and down row-parallel. The conjugate mappings, with X replicated on every rank:
//   column-parallel Y_r = X A_r:  forward identity,   backward dX = sum_r dY_r A_r^T (all-reduce)
//   row-parallel    Y = sum_r X_r B_r:  forward all-reduce,  backward dX_r = dY B_r^T (identity)
// so one all-reduce per block in each direction. Biases of row-parallel layers are added once,
// after the all-reduce; norms are replicated and their gradients agree on every rank, except the
// q/k norms': each rank normalizes only its own heads (no communication in forward), so their
// weight gradients are partial sums completed over the TP group after backward.
//
// PEFT methods (src/peft) attach adapters (adapter.h) while the layer is built (attachment.h):
// to each linear a list of linear adapters, each adding delta(x) to the linear's output before
// any all-reduce and/or transforming its input or its complete output; after each sublayer (attention, MLP) at most one block adapter on the residual
// stream. The layer calls them at fixed points of forward and backward and knows nothing of what
// they compute; it allocates what they declare.
#pragma once

#include <cstddef>
#include <cstdint>
#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "comm/communicator.h"
#include "model/adapter.h"
#include "model/attachment.h"
#include "model/layer_context.h"
#include "model/model_spec.h"
#include "model/parallel_layers.h"
#include "model/parameters.h"

namespace tailor::model {

// One layer's slice of a KV cache during inference (Transformer::extend).
struct LayerCache {
  backend::Tensor k, v;                      // [B, S, Hkv, Dh] keys and values of the row's tokens
  backend::Tensor start;                     // i32 [B]: cache index (= position) of each row's
                                             // first new token
  std::span<const std::int64_t> start_host;  // the same values, on the host
};

// Saved activations of one layer for one micro-batch (views into buffers owned by the model).
struct LayerActivations {
  backend::Tensor h1, mean1, rstd1;  // [N, D], [N], [N]
  backend::Tensor q, k, v;           // after RoPE
  backend::Tensor q_pre, k_pre;      // q/k norm: its inputs [N, Hq*Dh], [N, Hkv*Dh]
  backend::Tensor q_rstd, k_rstd;    // q/k norm: [N*Hq], [N*Hkv]
  backend::Tensor attn, lse;         // [N, Hq*Dh], [B, Hq, T]
  backend::Tensor x_mid;             // [N, D]
  backend::Tensor h2, mean2, rstd2;
  backend::Tensor gate, up, act;     // [N, F] (gate unused for GELU; up is the pre-activation)
  // Sandwich norms (ModelSpec::sandwich_norms): the attention and MLP outputs before their
  // post-norms, [N, D], and those norms' statistics [N].
  backend::Tensor o_out, rstd_pa, m_out, rstd_pf;
  backend::Tensor block_in[2];       // [N, D] attention / MLP output p under a block adapter
  std::vector<backend::Tensor> adapter;  // the adapters' saved tensors, [N, w] each, in the
                                         // layer's attach order (DecoderLayer::adapter_saved_widths)
};

// Activation recomputation (train.recompute): what backward recomputes instead of keeping.
//   kNone: every layer keeps all of its LayerActivations.
//   kSelective: the norm outputs h1, h2 and the MLP activation act are one buffer set shared by all
//     layers; backward recomputes them from the kept inputs (x, x_mid, gate/up): elementwise work.
//   kFull: one LayerActivations serves all layers; backward reruns the layer's forward from its
//     input x (kept by the model as the residual stream) before its backward.
// The recomputation runs the same ops on the same inputs, so results are bit-identical.
enum class Recompute : std::uint8_t { kNone, kSelective, kFull };

// Scratch space for backward, shared by all layers.
struct LayerScratch {
  backend::Tensor d_h;               // [N, D]
  backend::Tensor d_attn, d_q;       // [N, Hq*Dh]
  backend::Tensor d_k, d_v;          // [N, Hkv*Dh]
  backend::Tensor d_gate, d_up, d_act;  // [N, F]
  backend::Tensor d_norm;            // [N, D]
  backend::Tensor partial;           // [N, D] row-parallel partial sums (TP > 1)
  backend::Tensor d_block;           // [N, D] gradient of a sublayer output under a block adapter
  backend::Tensor sandwich;          // [N, D] sandwich norms: a post-norm's output in forward, the
                                     // gradient of its input in backward (also in inference)
  backend::Tensor hook_out, hook_in; // flat [N * w]: a row-parallel output z, or a dz, around
                                     // output hooks; dx' under an input hook (hook_scratch_widths)
  std::vector<backend::Tensor> adapter;  // the adapters' scratch slots, flat [N * w], w the widest
                                         // request of any adapter (absent where 0)
};

class DecoderLayer {
 public:
  // Registers this layer's parameters (canonical names) in `params`, then offers each of
  // `attachments` this layer's sites in order — the block sites after attention and MLP, then the
  // linears q k v o gate up down — where it adds its parameters and adapters.
  DecoderLayer(const ModelSpec& spec, const TpLayout& tp, int index, ParameterSet& params,
               std::span<const Attachment* const> attachments = {});

  // What the attached adapters asked for (adapter.h): the width of each saved tensor, in attach
  // order, and of each scratch slot (the widest request).
  [[nodiscard]] const std::vector<std::int64_t>& adapter_saved_widths() const noexcept {
    return saved_widths_;
  }
  [[nodiscard]] const std::vector<std::int64_t>& adapter_scratch_widths() const noexcept {
    return scratch_widths_;
  }
  // Widths of LayerScratch::hook_out and hook_in (0: not needed): the layer's own buffers
  // around a linear whose adapters transform its output or its input.
  [[nodiscard]] const std::array<std::int64_t, 2>& hook_scratch_widths() const noexcept {
    return hook_widths_;
  }
  [[nodiscard]] bool has_block_adapter() const noexcept {
    return blocks_[0].adapter != nullptr || blocks_[1].adapter != nullptr;
  }
  // The linear adapters attached to the linear whose weight (or bias) is `weight` (empty when
  // none, or when it is not this layer's).
  [[nodiscard]] std::vector<const LinearAdapter*> adapters_on(const Parameter& weight) const;
  // The weights and biases of this layer's seven linears (q k v o gate up down; nullptr where
  // there is none).
  [[nodiscard]] std::array<const Parameter*, 14> linear_parameters() const noexcept {
    return {q_.weight, k_.weight, v_.weight, o_.weight, gate_.weight, up_.weight, down_.weight,
            q_.bias,   k_.bias,   v_.bias,   o_.bias,   gate_.bias,   up_.bias,   down_.bias};
  }

  // Buffers (appended to `storage`, which owns them) for this layer's activations of B rows of
  // T tokens. With `shared_norm_act`, h1, h2 and act are that set's instead (Recompute::kSelective).
  [[nodiscard]] LayerActivations allocate_activations(
      std::vector<backend::Buffer>& storage, DType dtype, const backend::Ops& ops,
      std::int64_t batch, std::int64_t seq,
      const LayerActivations* shared_norm_act = nullptr) const;

  // Before backward under recomputation: restores what `mode` did not keep in `act` (kFull: the
  // whole forward of input x, its output written to y_scratch [N, D]).
  void recompute(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                 const LayerActivations& act, const LayerScratch& scratch, Recompute mode,
                 const backend::Tensor& y_scratch) const;

  // x: [N, D] input; y: [N, D] output (distinct buffers).
  // `scratch.partial` is used for the row-parallel sums.
  void forward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
               const backend::Tensor& y, const LayerActivations& act,
               const LayerScratch& scratch) const;
  // Inference. x: [N, D] the new tokens, B rows of T (ctx.positions: their positions); y: [N, D].
  // Their keys and values are written into `cache` at indices start[b] + t, then each attends to
  // indices <= its own of its row. `act` and `scratch` are scratch space (one set may serve every
  // layer): nothing is kept for backward.
  void forward_cached(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                      const backend::Tensor& y, const LayerActivations& act,
                      const LayerScratch& scratch, const LayerCache& cache) const;
  // x: the forward input; dy: [N, D] gradient of the output, replaced by the gradient of x.
  void backward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                const LayerActivations& act, const LayerScratch& scratch,
                const backend::Tensor& dy) const;

 private:
  // An attached adapter and where its saved tensors start in LayerActivations::adapter.
  template <class Adapter>
  struct Attached {
    std::unique_ptr<Adapter> adapter;
    std::size_t saved = 0, n_saved = 0;
    LinearHooks hooks;  // linear adapters: what adapter->hooks() said at attach time
  };
  // A tensor-parallel linear (parallel_layers.h) and the adapters attached to it.
  struct Linear : ParallelLinear {
    std::vector<Attached<LinearAdapter>> adapters;
    int input_hook = -1;        // index in adapters of the one with an input hook
    bool output_hooks = false;  // some adapter has an output hook
  };
  struct Norm {
    Parameter* weight = nullptr;
    Parameter* bias = nullptr;     // LayerNorm only
  };

  // Column-parallel: rows [out_begin, out_begin + out) of a [out_global, in] weight (the layer's
  // index and TP layout filled in).
  Linear make_column(ParameterSet& params, const std::string& name, std::int64_t out,
                     std::int64_t out_begin, std::int64_t out_global, std::int64_t in, bool bias,
                     int replicas);
  // Row-parallel: columns [in_begin, in_begin + in) of an [out, in_global] weight.
  Linear make_row(ParameterSet& params, const std::string& name, std::int64_t out,
                  std::int64_t in, std::int64_t in_begin, std::int64_t in_global, bool bias);
  Norm make_norm(ParameterSet& params, const std::string& name);
  // A q/k norm weight [head_dim], replicated; each rank's gradient covers its own heads only, so
  // it is summed over the TP group (GradSum::kTensorParallel).
  Norm make_head_norm(ParameterSet& params, const std::string& name);
  // Offers `a` every site of this layer; records what its adapters need.
  void attach(ParameterSet& params, const Attachment& a);
  template <class Adapter>
  void reserve_buffers(Attached<Adapter>& attached);
  template <class Adapter>
  [[nodiscard]] AdapterTensors tensors(const Attached<Adapter>& a, const LayerActivations& act,
                                       const LayerScratch& scratch) const;

  // The input the base linear `l` sees: x, or x' that its input hook wrote (adapter.h).
  [[nodiscard]] backend::Tensor linear_input(const Linear& l, const backend::Tensor& x,
                                             const LayerActivations& act) const;
  // Runs l's input hook on x, if any; returns the base linear's input.
  [[nodiscard]] backend::Tensor adapters_forward(backend::Ops& ops, const LayerContext& ctx,
                                                 const Linear& l, const backend::Tensor& x,
                                                 const LayerActivations& act,
                                                 const LayerScratch& scratch) const;
  // y += every additive adapter's delta beside linear `l` (x: the base linear's input).
  void adapters_add(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                    const backend::Tensor& x, const LayerActivations& act,
                    const LayerScratch& scratch, const backend::Tensor& y) const;
  // y = l's output hooks applied to its complete output y, in attach order.
  void adapters_output(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                       const LayerActivations& act, const LayerScratch& scratch,
                       const backend::Tensor& y) const;
  // A column-parallel linear with its adapters: y = out(in(x) W^T + b + sum delta(in(x))).
  void column_forward(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                      const backend::Tensor& x, const LayerActivations& act,
                      const LayerScratch& scratch, const backend::Tensor& y) const;
  // The backward of a linear with its adapters (dy: its output's gradient, left unchanged; x:
  // the forward's input): parameter gradients +=, dx (= when dx_beta is 0, += when 1).
  void linear_backward_hooked(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                              const backend::Tensor& dy, const backend::Tensor& x,
                              const LayerActivations& act, const LayerScratch& scratch,
                              const backend::Tensor& dx, double dx_beta) const;
  // y = x (+)= partial sums of a row-parallel projection over the TP group, + bias.
  void row_parallel_forward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& in,
                            const Linear& l, const backend::Tensor& residual,
                            const backend::Tensor& y, const LayerScratch& scratch,
                            const LayerActivations& act) const;
  // The sublayer output (row-parallel projection `l` of `in`) joins the residual stream into y,
  // through block adapter `slot` (0 attention, 1 MLP) when one is attached.
  void sublayer_output(backend::Ops& ops, const LayerContext& ctx, int slot,
                       const backend::Tensor& in, const Linear& l,
                       const backend::Tensor& residual, const backend::Tensor& y,
                       const LayerActivations& act, const LayerScratch& scratch) const;

  // The two halves of forward around the attention itself: norm1, q/k/v (+ adapters), RoPE; then
  // the o projection, the MLP block and their adapters, from act.attn to y.
  void project_qkv(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                   const LayerActivations& act, const LayerScratch& scratch) const;
  void finish_forward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                      const backend::Tensor& y, const LayerActivations& act,
                      const LayerScratch& scratch) const;

  // A sublayer's output joined to the residual: y = residual + p, or under sandwich norms
  // y = residual + post_norm(p) with p kept in `kept` and the norm's statistics in `rstd`.
  void join_residual(backend::Ops& ops, const LayerContext& ctx, int slot,
                     const backend::Tensor& in, const Linear& l, const Norm& post,
                     const backend::Tensor& residual, const backend::Tensor& y,
                     const backend::Tensor& kept, const backend::Tensor& rstd,
                     const LayerActivations& act, const LayerScratch& scratch) const;
  // The gated or plain MLP activation of act.gate / act.up into act.act, and its backward.
  void mlp_activation(backend::Ops& ops, const LayerActivations& act) const;
  // The RoPE frequencies of this layer: the local ones on a sliding layer of a family with a
  // local RoPE base (Gemma 3), else the model's.
  [[nodiscard]] const backend::Tensor& rope_freq(const LayerContext& ctx) const;

  void norm_forward(backend::Ops& ops, const Norm& n, const backend::Tensor& x,
                    const backend::Tensor& y, const backend::Tensor& mean,
                    const backend::Tensor& rstd) const;
  void norm_backward(backend::Ops& ops, const Norm& n, const backend::Tensor& dy,
                     const backend::Tensor& x, const backend::Tensor& mean,
                     const backend::Tensor& rstd, const backend::Tensor& dx) const;

  const ModelSpec* spec_;
  TpLayout tp_;
  int index_ = 0;
  Attached<BlockAdapter> blocks_[2];  // after attention, after the MLP
  std::vector<std::int64_t> saved_widths_, scratch_widths_;
  std::array<std::int64_t, 2> hook_widths_{0, 0};  // LayerScratch::hook_out, hook_in
  Norm norm1_, norm2_;               // norm2_: pre_feedforward_layernorm under sandwich norms
  Norm q_norm_, k_norm_;             // q/k norm only
  Norm post_attn_norm_, post_ff_norm_;  // sandwich norms only
  Linear q_, k_, v_, o_;
  Linear gate_, up_, down_;
};

// y = x W^T (+ b)
void linear_forward(backend::Ops& ops, const backend::Tensor& x, const Parameter& w,
                    const Parameter* b, const backend::Tensor& y);
// dx (= when dx_beta is 0, += when 1) = dy W; dW += dy^T x; db += colsum(dy). dx may be absent.
void linear_backward(backend::Ops& ops, const backend::Tensor& dy, const backend::Tensor& x,
                     Parameter& w, Parameter* b, const backend::Tensor& dx, double dx_beta);

}  // namespace tailor::model
