// The Ops interface: every numerical operation the model, optimizer and trainer need.
//
// Implemented twice: cpu (f32 and f64, OpenBLAS GEMM, the reference) and cuda (bf16 storage, f32
// accumulation). Every CUDA op is tested against the CPU one.
//
// Conventions, for every op:
//  - Tensors are contiguous row-major. "[N, D]" means any tensor whose rows() == N, cols() == D.
//  - Floating-point tensors of one call share one dtype (f32 or f64 on the CPU); ids, positions and
//    targets are i32. With 16-bit storage (bf16 on CUDA) the exceptions are the accumulators, which
//    are accum_dtype (f32): statistics (rstd, mean, lse, losses, row_max, stats), parameter
//    gradients (dw, db, dtable, dbias, the c of a weight-gradient gemm, the y of add) and
//    optimizer state. Every op computes in f32 or better and rounds once on store.
//  - Every tensor of a call lives on the backend's device(), except copy's, which also moves
//    data between host memory and the device. Host code never dereferences device memory.
//  - Activation gradients are written (`=`); parameter gradients are accumulated (`+=`) so that
//    micro-batches of one optimizer step add up into the same buffer. Each signature says which.
//  - Reductions are computed in fixed blocks and summed in block order: results do not depend on
//    the number of threads (ARCHITECTURE.md, Determinism).
//  - An optional tensor is "absent" when its data pointer is null.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "backend/tensor.h"

namespace tailor::backend {

// Target value of tokens that carry no loss (prompt tokens, padding), as Hugging Face uses.
inline constexpr std::int32_t kIgnoreIndex = -100;

struct AdamWHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: p <- p * (1 - lr * weight_decay)
  std::int64_t step = 1;      // 1-based step count, for bias correction
};

// Where the random numbers of a dropout mask come from (see Ops::dropout).
struct DropoutKey {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  std::int64_t row0 = 0;       // global row of the tensor's row 0
  std::int64_t row_width = 0;  // columns of the global tensor
  std::int64_t col0 = 0;       // global column of the tensor's column 0
};

// Timestamps in the order of a backend's queued work (profiling_ops.h): CUDA events on the
// stream. record(i) (re)records marker i; seconds(a, b) is read after Ops::synchronize().
class EventTimer {
 public:
  virtual ~EventTimer() = default;
  virtual void record(std::size_t i) = 0;
  [[nodiscard]] virtual double seconds(std::size_t from, std::size_t to) = 0;
};

class Ops {
 public:
  virtual ~Ops() = default;
  [[nodiscard]] virtual Device device() const noexcept = 0;
  // Human-readable description (backend, BLAS library and its thread count).
  [[nodiscard]] virtual std::string describe() const = 0;
  // The memory of this backend's device, owned by the backend (null on the CPU, whose buffers
  // are host memory). Every device Buffer comes from here and must not outlive the backend.
  [[nodiscard]] virtual DeviceMemory* device_memory() const noexcept { return nullptr; }
  // A zero-filled buffer on this backend's device.
  [[nodiscard]] Buffer alloc(DType dtype, Shape shape) const {
    DeviceMemory* memory = device_memory();
    return memory != nullptr ? Buffer(dtype, shape, *memory) : Buffer(dtype, shape);
  }
  // Waits until all queued work has finished (a no-op where ops run synchronously).
  virtual void synchronize() {}
  // Timestamps in the order of this backend's work (TAILOR_PROFILE=1); null where ops run
  // synchronously on the host, whose clock then serves.
  [[nodiscard]] virtual std::unique_ptr<EventTimer> make_event_timer() { return nullptr; }

  // ---- dense linear algebra ----------------------------------------------------------------
  // c = alpha * op(a) @ op(b) + beta * c, where op(x) = x^T when trans_x.
  // a: [M, K] ([K, M] if trans_a), b: [K, N] ([N, K] if trans_b), c: [M, N] (2-D views via rows/cols).
  virtual void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
                    double alpha, double beta) = 0;

  // ---- elementwise and reductions ----------------------------------------------------------
  virtual void fill(const Tensor& x, double value) = 0;
  // dst = src, same numel; converts between f32, f64 and bf16. dst and src may be on different
  // devices (host memory and this backend's device); such a copy is complete when it returns.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  // y += alpha * x (same shape).
  virtual void add(const Tensor& y, const Tensor& x, double alpha) = 0;
  // x *= alpha.
  virtual void scale(const Tensor& x, double alpha) = 0;
  // sum of x^2 accumulated in f64.
  [[nodiscard]] virtual double sum_squares(const Tensor& x) = 0;
  // sum over i of weights[i] * sum_squares(xs[i]) (the local part of a global gradient norm).
  // This default adds tensor by tensor in order; a device backend batches the reductions and
  // returns to the host once.
  [[nodiscard]] virtual double weighted_sum_squares(std::span<const Tensor> xs,
                                                    std::span<const double> weights) {
    TAILOR_ASSERT(xs.size() == weights.size(), "{} tensors, {} weights", xs.size(), weights.size());
    double total = 0.0;
    for (std::size_t i = 0; i < xs.size(); ++i) total += weights[i] * sum_squares(xs[i]);
    return total;
  }
  // y[N, D] += bias[D] broadcast over rows.
  virtual void add_bias(const Tensor& y, const Tensor& bias) = 0;
  // dbias[D] += column sums of dy[N, D].
  virtual void bias_backward(const Tensor& dbias, const Tensor& dy) = 0;
  // y[N, D] = y * s[D] broadcast over rows, in place (IA3's scaling; s in y's dtype).
  virtual void scale_columns(const Tensor& y, const Tensor& s) = 0;
  // ds[D] += column sums of dy[N, D] * x[N, D] (ds: accum_dtype).
  virtual void scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) = 0;

  // ---- embedding ---------------------------------------------------------------------------
  // table[V, D] holds the rows [vocab_begin, vocab_begin + V) of the full embedding (a
  // vocab-parallel shard; vocab_begin = 0 for the whole table). ids: i32 [N], each >= 0.
  // out[N, D] = table[ids[n] - vocab_begin, :] for ids in the shard, 0 for the others.
  virtual void embedding_forward(const Tensor& table, const Tensor& ids, std::int64_t vocab_begin,
                                 const Tensor& out) = 0;
  // dtable[V, D] += scatter of dout[N, D] by the ids in the shard (no atomics, fixed order).
  virtual void embedding_backward(const Tensor& dtable, const Tensor& ids,
                                  std::int64_t vocab_begin, const Tensor& dout) = 0;

  // ---- normalization -----------------------------------------------------------------------
  // y = x * rstd * w, rstd[N] = 1 / sqrt(mean(x^2) + eps). x, y: [N, D], w: [D].
  virtual void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                               const Tensor& rstd) = 0;
  // dx = ; dw +=
  virtual void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& rstd, const Tensor& dx, const Tensor& dw) = 0;
  // y = (x - mean) * rstd * w + b; mean[N], rstd[N] = 1 / sqrt(var + eps) (biased variance).
  virtual void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                                 const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
  // dx = ; dw += ; db +=
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                  const Tensor& dw, const Tensor& db) = 0;

  // ---- rotary position embedding (Hugging Face "rotate_half" pairing) ----------------------
  // x: [N, H, Dh], rotated in place. For i < Dh/2 the pair (x[i], x[i + Dh/2]) turns by angle
  // positions[n] * inv_freq[i]. positions: i32 [N]; inv_freq: f32 [Dh/2] (scaling variants such
  // as Llama-3's are folded into inv_freq by the caller). The angle is formed in f32 as HF does.
  virtual void rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) = 0;
  // dx: [N, H, Dh], rotated back in place (the transpose of the forward rotation).
  virtual void rope_backward(const Tensor& dx, const Tensor& positions, const Tensor& inv_freq) = 0;

  // ---- causal self-attention with grouped-query heads --------------------------------------
  // q: [B, T, Hq, Dh], k, v: [B, T, Hkv, Dh], Hq % Hkv == 0; query head h reads kv head
  // h / (Hq / Hkv). Token i attends to tokens j <= i of the same row, and, when doc_ids (i32
  // [B, T]) is present, only those with doc_ids[j] == doc_ids[i] (packed documents). window > 0
  // (sliding-window attention) also drops the keys j <= i - window: a token sees itself and the
  // window - 1 tokens before it, as transformers' sliding_window_overlay (kv > q - window);
  // window 0 is global attention.
  // out: [B, T, Hq, Dh]; lse: [B, Hq, T] log-sum-exp of the scaled scores, saved for backward.
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& doc_ids, double scale, std::int64_t window,
                                 const Tensor& out, const Tensor& lse) = 0;
  // dq, dk, dv = (written, not accumulated).
  virtual void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  const Tensor& doc_ids, double scale, std::int64_t window,
                                  const Tensor& dq, const Tensor& dk, const Tensor& dv) = 0;

  // ---- attention over a KV cache (generation) ----------------------------------------------
  // New queries against the keys and values of every token a row has seen. q: [B, Tq, Hq, Dh];
  // k, v: [B, S, Hkv, Dh] the cache, the new tokens' keys and values already written into it;
  // start: i32 [B]. Query t of row b sits at position start[b] + t (< S) and attends to the keys
  // j <= start[b] + t of its row, causally, with the same GQA rule as attention_forward; with
  // window > 0 only the keys j > start[b] + t - window (the training forward's rule).
  // out: [B, Tq, Hq, Dh]. Inference only: no log-sum-exp is saved.
  virtual void attention_cached(const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& start, double scale, std::int64_t window,
                                const Tensor& out) = 0;

  // ---- MLP activations ---------------------------------------------------------------------
  // out = silu(gate) * up, all [N, F].
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  // dgate = ; dup =
  virtual void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                               const Tensor& dgate, const Tensor& dup) = 0;
  // out = gelu(gate) * up, all [N, F], gelu the tanh approximation below (Gemma's GeGLU,
  // gelu_pytorch_tanh).
  virtual void geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  // dgate = dout * up * gelu'(gate); dup = dout * gelu(gate)
  virtual void geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                              const Tensor& dgate, const Tensor& dup) = 0;
  // out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (GPT-2's "gelu_new").
  virtual void gelu_forward(const Tensor& x, const Tensor& out) = 0;
  // dx =
  virtual void gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) = 0;

  // ---- dropout with counter-based masks ----------------------------------------------------
  // dst[N, C] = src * keep / (1 - p), keep = CounterRng(key.seed, key.stream).uniform(i) >= p,
  // where element (n, c) draws number i = (key.row0 + n) * key.row_width + key.col0 + c: its
  // index in a global [*, row_width] tensor of which src is rows [row0, row0 + N) and columns
  // [col0, col0 + C). So a shard, any thread count and every backend draw the same mask. The
  // mask is linear: the backward of dropout is dropout with the same key. dst may alias src;
  // 0 <= p < 1.
  virtual void dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) = 0;

  // ---- softmax cross-entropy ---------------------------------------------------------------
  // logits: [N, V]; only columns [0, valid_vocab) are real (the rest is padding, treated as -inf).
  // targets: i32 [N], kIgnoreIndex rows carry no loss.
  // losses[N] (same dtype as logits) = logsumexp(logits[n, :valid]) - logits[n, t], 0 if ignored.
  // When dlogits is present ([N, V], may alias logits): dlogits = dscale * (softmax - onehot) on
  // real columns, 0 on padding columns and on ignored rows.
  virtual void cross_entropy(const Tensor& logits, const Tensor& targets,
                             std::int64_t valid_vocab, const Tensor& losses,
                             const Tensor& dlogits, double dscale) = 0;

  // ---- vocab-parallel softmax cross-entropy (Megatron), in three phases ------------------
  // logits [N, Vl] hold global columns [vocab_begin, vocab_begin + Vl), of which the first
  // valid_cols are real. Between phases the caller all-reduces over the tensor-parallel group.
  // Phase 1: row_max[N] = max over the real local columns (-inf when there are none); then
  //          all-reduce MAX.
  virtual void ce_local_max(const Tensor& logits, std::int64_t valid_cols,
                            const Tensor& row_max) = 0;
  // Phase 2: stats [2, N]: stats[0][n] = sum of exp(x - row_max[n]) over the real local columns;
  //          stats[1][n] = the target's logit when this shard holds the target column, else 0;
  //          then all-reduce SUM.
  virtual void ce_local_sums(const Tensor& logits, const Tensor& targets,
                             std::int64_t vocab_begin, std::int64_t valid_cols,
                             const Tensor& row_max, const Tensor& stats) = 0;
  // Phase 3: losses[n] = log(stats[0][n]) + row_max[n] - stats[1][n] (0 on ignored rows); when
  //          dlogits is present (may alias logits): dscale * (exp(x - row_max) / stats[0][n] -
  //          onehot) on real columns, 0 on padding columns and ignored rows.
  virtual void ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                         std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats,
                         const Tensor& losses, const Tensor& dlogits, double dscale) = 0;

  // ---- optimizer ---------------------------------------------------------------------------
  // AdamW as torch.optim.AdamW computes it (decoupled decay first, then the bias-corrected
  // update). param, grad, m, v: same shape and dtype; on CUDA m and v may instead both be bf16
  // (optimizer.moments: bf16), widened to f32 for the update and rounded once on store.
  virtual void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                            const Tensor& v, const AdamWHyper& hyper) = 0;
  // The same update of f32 master weights, then weights = master rounded to weights' dtype (bf16
  // model weights). This default is the two ops; a backend may fuse them (one pass over memory).
  virtual void adamw_update_master(const Tensor& master, const Tensor& grad, const Tensor& m,
                                   const Tensor& v, const AdamWHyper& hyper,
                                   const Tensor& weights) {
    adamw_update(master, grad, m, v, hyper);
    copy(weights, master);
  }
};

}  // namespace tailor::backend
