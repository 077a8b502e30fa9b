// The decoder-only transformer: token (and learned position) embedding, N decoder layers, final
// norm, LM head and softmax cross-entropy, with an explicit backward pass (no general autograd).
//
// Canonical parameter names are Hugging Face LLaMA's (`model.embed_tokens.weight`,
// `model.layers.{i}.self_attn.q_proj.weight`, `model.norm.weight`, `lm_head.weight`); learned
// positions are `model.embed_positions.weight`. A tied head is the embedding itself: one
// parameter, one gradient. Embedding rows past the real vocabulary (padding to a multiple of 128)
// are zero, never indexed and masked out of the softmax, so they stay zero.
//
// Tensor parallelism: given a TP group of T ranks, this rank holds its Megatron shard (see
// decoder_layer.h): vocab-parallel embedding and LM head (rows [vocab_begin, vocab_begin + V/T)),
// the vocab-parallel cross-entropy (only a max, a sum and the target logit per token cross the
// group; full logits are never gathered), column/row-parallel attention and MLP.
//
// PEFT methods (src/peft) are attached at construction (attachment.h): they add their parameters
// at the sites the model enumerates and the adapters that compute with them; the base is frozen
// when a method asks. A method may also add a table of virtual-token input embeddings (prompt
// tuning): a batch id -1 - k is virtual token k, whose input embedding is row k of that table
// instead of a vocabulary row (learned positions are added as for any token). The table is
// replicated on every TP rank; its gradient is read off the residual-stream gradient, which is
// complete on every rank, so it needs no TP reduction.
//
// Inference (generation): extend() runs new tokens through the same layers, reading the keys and
// values of earlier tokens from a KvCache (kv_cache.h), and returns the last position's logits.
// It keeps its own scratch buffers (one set shared by all layers) apart from training's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backend/ops.h"
#include "comm/communicator.h"
#include "model/attachment.h"
#include "model/decoder_layer.h"
#include "model/kv_cache.h"
#include "model/model_spec.h"
#include "model/parameters.h"

namespace tailor::model {

// Which training step a micro-batch belongs to: it keys adapters' dropout masks, so that a
// resumed run draws the masks of an uninterrupted one. step < 0: not a training batch (evaluation,
// scoring), no dropout.
struct StepKey {
  std::uint64_t seed = 0;       // train.seed
  std::int64_t step = -1;       // optimizer step, 0-based
  std::int64_t first_row = 0;   // index of the batch's row 0 within the step's global batch
};

// One micro-batch: B rows of T tokens. All i32 [B*T], in host memory (the model uploads them to
// its device).
struct Batch {
  std::int64_t batch = 0;      // B
  std::int64_t seq = 0;        // T
  backend::Tensor ids;         // input token ids; -1 - k: virtual token k (virtual_tokens())
  backend::Tensor targets;     // next-token targets, backend::kIgnoreIndex where no loss
  backend::Tensor positions;   // position of each token within its document
  backend::Tensor doc_ids;     // document of each token within its row; may be absent
  StepKey step_key = {};       // training batches: their step (dropout)
};

class Transformer {
 public:
  // `tp`: the tensor-parallel group (nullptr: a single rank). Must outlive the model.
  // `attachments`: the PEFT methods to attach (attachment.h), offered every site in order; they
  // need not outlive the model (the adapters they return hold what they need).
  Transformer(const ModelSpec& spec, backend::Ops& ops, DType dtype,
              comm::Communicator* tp = nullptr,
              const std::vector<const Attachment*>& attachments = {});
  // Virtual token ids the model reads (-1 - k for k < virtual_tokens()): the rows of an attached
  // input table, 0 without one.
  [[nodiscard]] std::int64_t virtual_tokens() const noexcept {
    return virtual_table_ != nullptr ? virtual_table_->shape[0] : 0;
  }
  // The linear adapters of the linear whose weight or bias is `weight` (an export merges them).
  [[nodiscard]] std::vector<const LinearAdapter*> adapters_on(const Parameter& weight) const;
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  [[nodiscard]] const ModelSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] const TpLayout& tp_layout() const noexcept { return layout_; }
  [[nodiscard]] ParameterSet& params() noexcept { return params_; }
  [[nodiscard]] const ParameterSet& params() const noexcept { return params_; }

  // Hugging Face LLaMA initialization: weights ~ N(0, init_std), norm weights 1, biases 0. Each
  // element is drawn from a counter-based stream keyed by (seed, parameter name, element index),
  // so any shard of a tensor can draw its own slice of the same values.
  // The rule is the parameter's role (parameters.h), never its name.
  void init_parameters(std::uint64_t seed);
  // The same, for the PEFT methods' parameters only (after loading a pretrained base).
  void init_method_parameters(std::uint64_t seed);
  // rows [n, D] (on the model's device) = the input embeddings of token ids [n] (host, each in
  // [0, vocab_size)), e.g. to start virtual tokens from real ones. Collective over the TP group.
  void token_embeddings(std::span<const std::int32_t> ids, const backend::Tensor& rows);

  // Forward only. Returns the sum of the token losses over targets != kIgnoreIndex. When
  // `logits_out` is given ([B*T, local padded vocab], any float dtype, host or device memory)
  // this rank's logits are copied into it.
  double forward(const Batch& batch, const backend::Tensor* logits_out = nullptr);

  // Forward and backward of one micro-batch: parameter gradients += dscale * d(sum of token
  // losses)/d(parameter). Returns the sum of the token losses.
  // `grads_ready` (the last micro-batch of a step): called during backward, after each layer,
  // with an offset into the flat gradient from which every gradient is final, decreasing, then
  // with 0 at the end — so data-parallel buckets can be reduced while backward still runs. Not
  // called for models whose gradients are completed after backward (TP sums of shared KV heads
  // or replicated adapter factors: finish_gradients) or by the embeddings only (a virtual-token
  // table).
  double forward_backward(const Batch& batch, double dscale,
                          const std::function<void(std::int64_t)>& grads_ready = {});

  // ---- two-phase training step, for objectives that weigh rows by their losses --------------
  // (src/objective: preference objectives need each sequence's log-probability before they know
  // its gradient weight.)
  // Forward of a training micro-batch that keeps what backward needs. Returns the per-token
  // losses -log p(target) [B*T] in token order (0 where the target is ignored), in f64 on the
  // host; valid until the next forward.
  std::span<const double> forward_token_losses(const Batch& batch);
  // After forward_token_losses(batch): parameter gradients += sum over rows b of
  // row_weights[b] * d(sum of row b's token losses)/d(parameter). forward_backward(batch, s) is
  // this with every weight s, fused into one pass. `grads_ready` as for forward_backward.
  void backward_rows(const Batch& batch, std::span<const double> row_weights,
                     const std::function<void(std::int64_t)>& grads_ready = {});

  // false: forward passes skip every attached linear and block adapter, so the model computes
  // as its frozen base (a preference objective's reference log-probabilities under PEFT, with
  // no second copy). Forward only: backward needs them enabled. A virtual-token table is not
  // an adapter and stays.
  void set_adapters_enabled(bool enabled) noexcept { adapters_enabled_ = enabled; }
  [[nodiscard]] bool adapters_enabled() const noexcept { return adapters_enabled_; }

  // Tokens whose logits are computed at a time in training and scoring (0: auto, about
  // kHeadChunkElements logits per chunk): the [N, vocab] logits never exist whole, which matters
  // at 150-262k vocabularies. Chunking changes only the summation order of dW_head. Frees the
  // current activations.
  void set_loss_chunk_tokens(std::int64_t rows);
  [[nodiscard]] std::int64_t loss_chunk_rows() const noexcept;
  static constexpr std::int64_t kHeadChunkElements = std::int64_t{1} << 28;

  // Activation recomputation for training (decoder_layer.h); frees the current activations.
  void set_recompute(Recompute mode);
  [[nodiscard]] Recompute recompute() const noexcept { return recompute_; }
  // Bytes of the training activations and backward scratch currently allocated (0 before the
  // first forward).
  [[nodiscard]] std::int64_t activation_bytes() const;

  // After the last micro-batch of a step: sums the partial gradients of KV heads that several TP
  // ranks share. A no-op without such heads.
  void finish_gradients();

  // ---- inference with a KV cache (generation) ---------------------------------------------
  // A cache for `batch` rows of up to `capacity` tokens each. Generation runs on one rank: a
  // model split over TP > 1 ranks is refused (UserError).
  [[nodiscard]] KvCache make_kv_cache(std::int64_t batch, std::int64_t capacity) const;

  // Runs T new tokens per row through the model and appends them to `cache` (B = cache.batch()).
  // ids: i32 [B*T], ids in [0, spec().vocab_size) or virtual tokens -1 - k (virtual_tokens())
  // (a generation prefills them first, at positions 0..n-1); row b's first counts[b] tokens
  // (0 <= counts[b]
  // <= T) are real, the rest padding. Token t of row b sits at position cache.length(b) + t
  // (which must stay below max_position_embeddings with learned positions) and attends to every
  // earlier token of its row. Row b then holds counts[b] more tokens (the padding's keys and
  // values lie past its length and are overwritten later). The cache needs room for T more
  // tokens in every row.
  // Returns the logits of each row's last real token: [B, padded vocab] in host memory, in
  // accum_dtype of the model's dtype
  // (columns >= spec().vocab_size are vocabulary padding: ignore them; a row with counts[b] = 0
  // is idle and its logits are meaningless), valid until the next call.
  // Prefill is extend() on an empty cache; decoding is extend() with T = 1.
  [[nodiscard]] backend::Tensor extend(KvCache& cache, const backend::Tensor& ids,
                                       std::span<const std::int64_t> counts);

 private:
  struct Activations;
  struct InferenceState;
  void ensure_inference_state(std::int64_t batch, std::int64_t seq);
  void init_parameters_where(std::uint64_t seed, bool methods_only);
  // x0 [N, D] = token embedding of ids (+ learned position embedding, using tmp [N, D]).
  // host_ids: the same ids on the host (read for the virtual tokens' split).
  void embed_tokens(const backend::Tensor& host_ids, const backend::Tensor& ids,
                    const backend::Tensor& positions, const backend::Tensor& x0,
                    const backend::Tensor& tmp);
  // The final RMSNorm / LayerNorm of x [N, D] into y (mean only for LayerNorm).
  void final_norm(const backend::Tensor& x, const backend::Tensor& y, const backend::Tensor& mean,
                  const backend::Tensor& rstd);
  void ensure_activations(std::int64_t batch, std::int64_t seq);
  // The adapters' scratch slots for N = n tokens (LayerScratch::adapter), appended to `storage`.
  [[nodiscard]] std::vector<backend::Tensor> adapter_scratch(std::vector<backend::Buffer>& storage,
                                                             std::int64_t n) const;
  // The layers' own scratch around hooked linears (LayerScratch::hook_out, hook_in) for n tokens.
  void hook_scratch(std::vector<backend::Buffer>& storage, std::int64_t n,
                    LayerScratch& scratch) const;
  // The batch's tensors on the model's device (the host batch itself on the CPU).
  [[nodiscard]] Batch on_device(const Batch& host);
  void embed(const Batch& host, const Batch& dev);
  // Up to the final norm; returns the batch on the device.
  Batch run_forward(const Batch& host);
  // The LM head and the token losses, loss_chunk_rows() tokens at a time, so [N, vocab] logits
  // never exist whole: per chunk, logits = h W_head^T (copied into `logits_out` rows when given),
  // the losses, and with `with_grad` the gradient w * d(loss)/d(logits) taken at once through
  // the head (dW_head +=, and dh into scratch.d_h rows), w = `dscale`, or row b's
  // `row_weights[b]` when given.
  void head_loss(const Batch& batch, bool with_grad, double dscale,
                 std::span<const double> row_weights, const backend::Tensor* logits_out);
  // Losses (and, with `with_grad`, their gradient in place of `logits`) of `count` tokens from
  // token `first` whose logits are `logits` [count, V_local].
  void loss_of_rows(const Batch& batch, std::int64_t first, std::int64_t count,
                    const backend::Tensor& logits, bool with_grad, double dscale);
  // The current per-token losses, on the host in f64 (valid until the next forward).
  const std::vector<double>& host_losses();
  // Backward from dh (head_loss's) to every parameter gradient below the LM head.
  void backward_from_head(const Batch& batch,
                          const std::function<void(std::int64_t)>& grads_ready);
  [[nodiscard]] double sum_losses();
  [[nodiscard]] bool tensor_parallel() const noexcept { return layout_.size > 1; }
  LayerContext context(const Batch& batch) const;

  ModelSpec spec_;
  backend::Ops* ops_;
  DType dtype_;
  DType stat_dtype_;                      // norm statistics and losses: accum_dtype(dtype_)
  backend::Device device_;
  std::unique_ptr<comm::Communicator> own_tp_;  // when no group was given
  comm::Communicator* tp_;
  TpLayout layout_;
  std::unique_ptr<comm::Communicator> kv_group_;  // ranks sharing this rank's KV head
  ParameterSet params_;
  std::vector<DecoderLayer> layers_;
  std::unordered_map<const Parameter*, std::size_t> layer_of_linear_;  // adapters_on in O(1)
  // ready_offset_[i]: gradients at flat offsets >= this are final once layer i's backward is done
  // (empty when grads_ready cannot be honoured, see forward_backward).
  std::vector<std::int64_t> ready_offset_;
  Parameter* embed_tokens_ = nullptr;
  Parameter* embed_positions_ = nullptr;  // learned positions only
  Parameter* final_norm_w_ = nullptr;
  Parameter* final_norm_b_ = nullptr;     // LayerNorm only
  Parameter* lm_head_ = nullptr;          // == embed_tokens_ when tied
  Parameter* virtual_table_ = nullptr;    // [n, D] virtual tokens' input embeddings (a method's)
  // With a virtual-token table: the batch ids split into vocabulary ids (a virtual token ->
  // padded_vocab, which no shard holds) and table rows (a real token -> n, past the table), i32
  // [N]. Written by embed_tokens(); the training backward reads the rows of the forward just run.
  backend::Buffer token_ids_, virtual_ids_;             // on the device
  backend::Buffer token_ids_host_, virtual_ids_host_;  // the same, computed on the host
  backend::Buffer inv_freq_;              // f32 [Dh/2]
  backend::Buffer inv_freq_long_;         // f32 [Dh/2]: longrope's long factors
  backend::Buffer inv_freq_local_;        // f32 [Dh/2]: the sliding layers' base (Gemma 3)
  bool long_rope_ = false;                // the last forward's positions passed longrope's length
  // RoPE frequencies: longrope's long set when `long_context`, else the one set.
  [[nodiscard]] backend::Tensor inv_freq(bool long_context) const;
  // Whether positions (i32, on the host) reach past longrope's original length, as transformers
  // switches per forward on max(position_ids) + 1.
  [[nodiscard]] bool long_rope(const backend::Tensor& host_positions) const;
  std::unique_ptr<Activations> acts_;
  Recompute recompute_ = Recompute::kNone;
  bool adapters_enabled_ = true;

  std::int64_t loss_chunk_tokens_ = 0;    // set_loss_chunk_tokens
  std::unique_ptr<InferenceState> infer_;
};

// Number of targets that carry loss (!= kIgnoreIndex) in a host i32 tensor.
[[nodiscard]] std::int64_t count_loss_targets(const backend::Tensor& targets);

}  // namespace tailor::model
