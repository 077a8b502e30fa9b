// One decoder layer (pre-norm): attention block then MLP block, each with a residual connection.
//
//   h1 = norm1(x)                          x, h1: [N, D]        (N = B*T tokens)
//   q, k, v = h1 Wq^T, h1 Wk^T, h1 Wv^T    q: [N, Hq*Dh]  k, v: [N, Hkv*Dh]   (+ biases)
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
// after the all-reduce; norms are replicated and their gradients agree on every rank.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "comm/communicator.h"
#include "model/lora.h"
#include "model/model_spec.h"
#include "model/parameters.h"

namespace tailor::model {

// Per-call inputs shared by all layers of one micro-batch.
struct LayerContext {
  std::int64_t batch = 0;            // B
  std::int64_t seq = 0;              // T
  backend::Tensor positions;         // i32 [B*T]
  backend::Tensor doc_ids;           // i32 [B*T] or absent
  backend::Tensor inv_freq;          // f32 [Dh/2] (RoPE)
  comm::Communicator* tp = nullptr;  // tensor-parallel group
  // Training batches (step >= 0): the key of LoRA dropout masks; token n of this micro-batch is
  // token first_token + n of the step's global batch.
  std::uint64_t seed = 0;
  std::int64_t step = -1;
  std::int64_t first_token = 0;
};

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
  backend::Tensor attn, lse;         // [N, Hq*Dh], [B, Hq, T]
  backend::Tensor x_mid;             // [N, D]
  backend::Tensor h2, mean2, rstd2;
  backend::Tensor gate, up, act;     // [N, F] (gate unused for GELU; up is the pre-activation)
  backend::Tensor lora_u[7];         // [N, r] x A^T per adapted linear (q, k, v, o, gate, up, down)
  // Bottleneck adapters (attention, MLP): the sublayer output p [N, D], down(p) [N, m], gelu.
  backend::Tensor adapter_in[2], adapter_pre[2], adapter_act[2];
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
  backend::Tensor lora_du;           // [N, r] gradient of x A^T (LoRA)
  backend::Tensor lora_x;            // [N * max(D, Hq*Dh, F)] LoRA dropout: dropout(x), gradient
  backend::Tensor adapter_dp;        // [N, D] gradient of an adapter's input
  backend::Tensor adapter_d1, adapter_d2;  // [N, m]
};

class DecoderLayer {
 public:
  // Registers this layer's parameters (canonical names) in `params`; with `lora`, the base
  // parameters are frozen and LoRA factors added to the targeted linears.
  // `bottleneck` > 0 adds Houlsby adapters of that width after the attention and MLP blocks.
  DecoderLayer(const ModelSpec& spec, const TpLayout& tp, int index, ParameterSet& params,
               const LoraSpec* lora = nullptr, std::int64_t bottleneck = 0);

  // Module index (into LayerActivations::lora_u) of each linear, in the order q k v o gate up down.
  static constexpr int kNumLinears = 7;

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
  struct Linear {
    Parameter* weight = nullptr;
    Parameter* bias = nullptr;     // may be null
    Parameter* lora_a = nullptr;   // [r, in] (LoRA; null when not adapted)
    Parameter* lora_b = nullptr;   // [out, r]
    int index = 0;                 // module index for saved activations
    std::string name;              // canonical name of the linear (keys its dropout stream)
    std::int64_t in_begin = 0;     // global column of the input's column 0 (row-parallel shard)
    std::int64_t in_global = 0;    // the input's global width
  };
  struct Norm {
    Parameter* weight = nullptr;
    Parameter* bias = nullptr;     // LayerNorm only
  };
  // Houlsby bottleneck adapter: a(p) = p + up(gelu(down(p))), replicated over TP ranks.
  struct Adapter {
    Parameter* down_w = nullptr;   // [m, D]
    Parameter* down_b = nullptr;   // [m]
    Parameter* up_w = nullptr;     // [D, m], zero-initialised: the adapter starts as identity
    Parameter* up_b = nullptr;     // [D]
  };
  Adapter make_adapter(ParameterSet& params, const std::string& name, std::int64_t width);
  // out = residual + p + up(gelu(down(p))), saving what backward needs (slot 0 attn, 1 MLP).
  void adapter_forward(backend::Ops& ops, const Adapter& a, int slot, const LayerActivations& act,
                       const backend::Tensor& residual, const backend::Tensor& out) const;
  // dp = dy + d(adapter branch)/dp; parameter gradients +=.
  void adapter_backward(backend::Ops& ops, const Adapter& a, int slot, const LayerActivations& act,
                        const LayerScratch& scratch, const backend::Tensor& dy) const;

  // Column-parallel: rows [out_begin, out_begin + out) of a [out_global, in] weight.
  Linear make_column(ParameterSet& params, const std::string& name, std::int64_t out,
                     std::int64_t out_begin, std::int64_t out_global, std::int64_t in, bool bias,
                     int replicas);
  // Row-parallel: columns [in_begin, in_begin + in) of an [out, in_global] weight.
  Linear make_row(ParameterSet& params, const std::string& name, std::int64_t out,
                  std::int64_t in, std::int64_t in_begin, std::int64_t in_global, bool bias);
  Norm make_norm(ParameterSet& params, const std::string& name);
  // Adds LoRA factors to `l` when the spec targets `module`. A/B shard specs per the TP rules.
  void add_lora(ParameterSet& params, Linear& l, const std::string& name, std::string_view module,
                bool row_parallel, std::int64_t out, std::int64_t out_begin, std::int64_t out_global,
                std::int64_t in, std::int64_t in_begin, std::int64_t in_global, int replicas);
  // y += s (x A^T) B^T, saving u = x A^T (x: dropout(x) on training batches with dropout).
  void lora_forward(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                    const backend::Tensor& x, const LayerActivations& act,
                    const LayerScratch& scratch, const backend::Tensor& y) const;
  // dB += s dy^T u; du = s dy B; dA += du^T x; dx += du A (through the same dropout mask).
  void lora_backward(backend::Ops& ops, const LayerContext& ctx, const Linear& l,
                     const backend::Tensor& dy, const backend::Tensor& x,
                     const LayerActivations& act, const LayerScratch& scratch,
                     const backend::Tensor& dx) const;
  // Whether this batch drops LoRA inputs, and the mask key of linear `l` for an input x [N, in].
  [[nodiscard]] bool lora_dropout_on(const LayerContext& ctx) const;
  [[nodiscard]] backend::DropoutKey lora_dropout_key(const LayerContext& ctx,
                                                     const Linear& l) const;
  // y = x (+)= partial sums of a row-parallel projection over the TP group, + bias.
  void row_parallel_forward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& in,
                            const Linear& l, const backend::Tensor& residual,
                            const backend::Tensor& y, const LayerScratch& scratch,
                            const LayerActivations& act) const;

  // The two halves of forward around the attention itself: norm1, q/k/v (+ LoRA), RoPE; then
  // the o projection, the MLP block and their adapters, from act.attn to y.
  void project_qkv(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                   const LayerActivations& act, const LayerScratch& scratch) const;
  void finish_forward(backend::Ops& ops, const LayerContext& ctx, const backend::Tensor& x,
                      const backend::Tensor& y, const LayerActivations& act,
                      const LayerScratch& scratch) const;

  void norm_forward(backend::Ops& ops, const Norm& n, const backend::Tensor& x,
                    const backend::Tensor& y, const backend::Tensor& mean,
                    const backend::Tensor& rstd) const;
  void norm_backward(backend::Ops& ops, const Norm& n, const backend::Tensor& dy,
                     const backend::Tensor& x, const backend::Tensor& mean,
                     const backend::Tensor& rstd, const backend::Tensor& dx) const;

  const ModelSpec* spec_;
  TpLayout tp_;
  const LoraSpec* lora_ = nullptr;
  std::int64_t bottleneck_ = 0;
  Adapter adapters_[2];
  Norm norm1_, norm2_;
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
