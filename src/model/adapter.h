// Adapters: what a PEFT method (src/peft) puts into a decoder layer, as the layer sees them. The
// layer knows two kinds and nothing method-specific:
//
//   a linear adapter beside a base linear y = x W^T:  y += delta(x), added before a row-parallel
//     all-reduce (on a row-parallel W it adds this rank's partial sum);
//   a block adapter on the residual stream after a sublayer (attention, MLP) whose output is p:
//     out = residual + a(p) instead of residual + p.
//
// A linear adapter may also act on the linear itself rather than beside it (LinearHooks): on its
// input, x' = in(x), which the base linear and every additive adapter then see (IA3 on a
// feed-forward linear: x' = x * l), and on its output, y = out(z) with z the linear's complete
// output, bias included and summed over the TP group (IA3: y = z * l; DoRA's rescaling). A linear
// is then computed as
//   x' = in(x);  z = x' W^T + b + sum_i delta_i(x');  y = out_k(...out_1(z))
// and its backward runs the other way: the output hooks (last first) turn dy into dz, the base and
// additive backward take dz to dx', the input hook dx' to dx. At most one input hook per linear.
//
// The layer makes one virtual call per adapter per forward or backward, never one per element.
// Adapters own no activation memory: each declares the widths of the [N, w] tensors it keeps from
// forward to backward (allocated per layer by the model, or one set for all layers under
// Recompute::kFull, which reruns each layer's forward before its backward) and of the scratch it
// uses inside one call (shared by every adapter of every layer: calls run one at a time).
//
// Where a method attaches is data (LinearSite, BlockSite): names, the base linear's shard of its
// global input and output, its replicas. The method derives its own tensor-parallel rule from it
// (LoRA: A replicated and B split for a column-parallel W, A split and B replicated for a
// row-parallel one, ARCHITECTURE.md); the layer applies none.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "model/layer_context.h"

namespace tailor::model {

// How a base linear is split over the TP group (Megatron).
enum class Parallel : std::uint8_t {
  kColumn,  // Y_r = X W_r^T: this rank's output rows; X replicated
  kRow,     // Y = sum_r X_r W_r^T: this rank's input columns; Y summed over the group afterwards
};

// A base linear W [out, in] an adapter may attach to, as this rank holds it.
struct LinearSite {
  std::string name;     // canonical name of the linear: "model.layers.3.self_attn.q_proj"
  std::string module;   // its module name, as PEFT's target_modules: "q_proj" ... "down_proj"
  int layer = 0;
  Parallel parallel = Parallel::kColumn;
  std::int64_t out = 0, out_begin = 0, out_global = 0;  // rows [out_begin, out_begin + out)
  std::int64_t in = 0, in_begin = 0, in_global = 0;     // input columns [in_begin, in_begin + in)
  int replicas = 1;     // TP ranks holding the same rows (a KV head shared by T / kv ranks)
  int tp_size = 1;
};

enum class Sublayer : std::uint8_t { kAttention, kMlp };

// The residual stream after a sublayer: p, residual and out are [N, D], complete on every rank.
struct BlockSite {
  std::string layer_prefix;  // "model.layers.3."
  int layer = 0;
  Sublayer sublayer = Sublayer::kAttention;
  std::int64_t hidden = 0;   // D
  int tp_size = 1;
};

// Memory an adapter asks for, for a micro-batch of N tokens: widths w of [N, w] tensors in the
// model's dtype.
struct AdapterBuffers {
  std::vector<std::int64_t> saved;    // kept from forward to backward, per layer
  std::vector<std::int64_t> scratch;  // used within one call only; 0: not needed this run
};

// The tensors of one adapter call.
struct AdapterTensors {
  std::span<const backend::Tensor> saved;    // [N, saved[i]]: this layer's, this adapter's
  std::span<const backend::Tensor> scratch;  // flat, >= N * scratch[i] elements each (absent
                                             // where that width is 0)
};

// Which parts of the linear an adapter takes part in (see the top of this file).
struct LinearHooks {
  bool input = false;     // input_forward / input_backward
  bool additive = true;   // forward / backward: y += delta(x')
  bool output = false;    // output_forward / output_backward
};

class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  [[nodiscard]] virtual AdapterBuffers buffers() const = 0;
  [[nodiscard]] virtual LinearHooks hooks() const { return {}; }
  // y [N, out] += delta(x), x [N, in] the base linear's input; keeps what backward needs.
  virtual void forward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                       const backend::Tensor& x, const backend::Tensor& y) const {
    (void)ops, (void)ctx, (void)t, (void)x, (void)y;
  }
  // After the base linear's backward, with dy [N, out] and the forward's x: the adapter's
  // parameter gradients += and, when dx [N, in] is present, dx += (d delta / dx)^T dy.
  virtual void backward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                        const backend::Tensor& dy, const backend::Tensor& x,
                        const backend::Tensor& dx) const {
    (void)ops, (void)ctx, (void)t, (void)dy, (void)x, (void)dx;
  }
  // Input hook: writes x' = in(x) [N, in] into t.saved[0] (an input adapter's first saved
  // tensor, of width `in`, is x': the layer reads it again in backward) and keeps what backward
  // needs.
  virtual void input_forward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                             const backend::Tensor& x) const {
    (void)ops, (void)ctx, (void)t, (void)x;
  }
  // dx [N, in] += (d in / dx)^T dxp, dxp [N, in] the gradient of x'; parameter gradients +=.
  virtual void input_backward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                              const backend::Tensor& x, const backend::Tensor& dxp,
                              const backend::Tensor& dx) const {
    (void)ops, (void)ctx, (void)t, (void)x, (void)dxp, (void)dx;
  }
  // Output hook, in place: y [N, out] = out(y), y the linear's complete output (this rank's
  // columns of a column-parallel W; the whole, all-reduced output of a row-parallel one), bias b
  // [out] included (absent when the linear has none); keeps what backward needs.
  virtual void output_forward(backend::Ops& ops, const LayerContext& ctx,
                              const AdapterTensors& t, const backend::Tensor& y,
                              const backend::Tensor& b) const {
    (void)ops, (void)ctx, (void)t, (void)y, (void)b;
  }
  // In place: dy [N, out] (the gradient of out(z)) becomes the gradient of z; parameter
  // gradients +=.
  virtual void output_backward(backend::Ops& ops, const LayerContext& ctx,
                               const AdapterTensors& t, const backend::Tensor& dy,
                               const backend::Tensor& b) const {
    (void)ops, (void)ctx, (void)t, (void)dy, (void)b;
  }
  // w [out, in] becomes the weight of the adapted linear (W + delta for an additive adapter,
  // W scaled for IA3): w is the whole base weight (TP = 1) in f32 on the model's device, for an
  // export that merges the adapter into the base. Adapters merge in attach order.
  virtual void merge_into(backend::Ops& ops, const backend::Tensor& w) const = 0;
  // The same for the linear's bias b [out] (only called when it has one); unchanged by default.
  virtual void merge_bias_into(backend::Ops& ops, const backend::Tensor& b) const {
    (void)ops, (void)b;
  }
};

class BlockAdapter {
 public:
  virtual ~BlockAdapter() = default;
  [[nodiscard]] virtual AdapterBuffers buffers() const = 0;
  // out [N, D] = residual + a(p), p [N, D] the sublayer's output (the layer keeps it).
  virtual void forward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                       const backend::Tensor& p, const backend::Tensor& residual,
                       const backend::Tensor& out) const = 0;
  // dp [N, D] = (da/dp)^T dy, dy [N, D] the gradient of out; parameter gradients +=.
  virtual void backward(backend::Ops& ops, const LayerContext& ctx, const AdapterTensors& t,
                        const backend::Tensor& dy, const backend::Tensor& p,
                        const backend::Tensor& dp) const = 0;
};

}  // namespace tailor::model
