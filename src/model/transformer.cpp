#include "model/parallel_layers.h"
#include "model/tp_mappings.h"
#include "model/transformer.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/rng.h"
#include "model/inference_state.h"

namespace tailor::model {

using backend::Buffer;
using backend::Ops;
using backend::Tensor;

// Buffers of every saved activation and of the backward scratch, sized for one (B, T).
struct Transformer::Activations {
  std::int64_t batch = 0, seq = 0;
  std::vector<Buffer> storage;
  std::vector<Tensor> resid;               // L + 1 residual-stream states [N, D]
  std::vector<LayerActivations> layers;
  Tensor final_h, final_mean, final_rstd;  // [N, D], [N], [N]
  std::int64_t chunk = 0;                  // rows of the LM head computed at a time (C)
  Tensor logits;                           // [C, V_local]; becomes dlogits in backward
  // Whether `logits` holds every row's logits from the forward (one chunk covers all N and
  // nothing has overwritten them), so backward_rows need not recompute them.
  bool logits_kept = false;
  Tensor losses;                           // [N] per-token loss
  Tensor row_max, ce_stats;                // [C], [2 * C]: vocab-parallel cross-entropy
  std::vector<double> token_losses;        // [N] the losses on the host, in f64 (host_losses)
  Batch device_batch;                      // the last forward's batch on the device
  Tensor dx;                               // [N, D] gradient of the residual stream
  Tensor recompute_out;                    // [N, D] output of a recomputed layer (kFull)
  LayerScratch scratch;
  // The batch on the device (absent on the CPU, where the host batch is used as it is).
  Buffer ids, targets, positions, doc_ids;  // i32 [N]
  Buffer losses_host;                       // the losses read back from the device
  const Ops* ops = nullptr;  // allocates on the model's device

  Tensor make(DType dtype, Shape shape) {
    storage.push_back(ops->alloc(dtype, shape));
    return storage.back().tensor();
  }
};

Transformer::Transformer(const ModelSpec& spec, Ops& ops, DType dtype, comm::Communicator* tp,
                         const std::vector<const Attachment*>& attachments)
    : spec_(spec), ops_(&ops), dtype_(dtype), stat_dtype_(accum_dtype(dtype)),
      device_(ops.device()) {
  spec_.check();
  if (tp == nullptr) {
    own_tp_ = std::make_unique<comm::SelfCommunicator>();
    tp = own_tp_.get();
  }
  tp_ = tp;
  layout_ = make_tp_layout(spec_, tp_->size(), tp_->rank());
  const int t = layout_.size;
  const std::int64_t d = spec_.hidden_size;
  const std::int64_t vp = layout_.padded_vocab;
  // Vocab-parallel: this rank holds rows [vocab_begin, vocab_begin + V/T).
  const ShardSpec vocab_shard{Shape{vp, d}, t > 1 ? 0 : -1, layout_.vocab_begin, 1, GradSum::kNone};
  const ShardSpec replicated{Shape{}, -1, 0, t, GradSum::kNone};
  embed_tokens_ =
      &params_.add("model.embed_tokens.weight", Shape{layout_.vocab, d}, ParamRole::kVocabTable,
                   vocab_shard);
  if (spec_.position == PositionType::kLearned)
    embed_positions_ = &params_.add("model.embed_positions.weight",
                                    Shape{spec_.max_position_embeddings, d}, ParamRole::kWeight,
                                    replicated);
  layers_.reserve(static_cast<std::size_t>(spec_.num_layers));
  std::vector<std::size_t> layer_first_param;  // index in params_.all() of each layer's first
  for (int i = 0; i < spec_.num_layers; ++i) {
    layer_first_param.push_back(params_.all().size());
    layers_.emplace_back(spec_, layout_, i, params_, attachments);
  }
  final_norm_w_ = &params_.add("model.norm.weight", Shape{d}, ParamRole::kNormWeight, replicated);
  if (spec_.norm == NormType::kLayerNorm)
    final_norm_b_ = &params_.add("model.norm.bias", Shape{d}, ParamRole::kBias, replicated);
  lm_head_ = spec_.tie_embeddings
                 ? embed_tokens_
                 : &params_.add("lm_head.weight", Shape{layout_.vocab, d}, ParamRole::kVocabTable,
                                 vocab_shard);
  for (const Attachment* a : attachments) {
    Parameter* table = attach_owned(*a, params_, [&] { return a->attach_input(params_, {d, t}); });
    if (table == nullptr) continue;
    TAILOR_ASSERT(virtual_table_ == nullptr && table->shape == (Shape{table->shape[0], d}),
                  "virtual-token table {}: one [n, {}] table at most", table->name, d);
    virtual_table_ = table;
  }
  // A method that trains only its own parameters: everything of the base is frozen (no gradient,
  // no optimizer state).
  const bool freeze_base = std::any_of(attachments.begin(), attachments.end(),
                                       [](const Attachment* a) { return a->freezes_base(); });
  if (freeze_base)
    for (Parameter& p : params_.all())
      if (!is_method_param(p.role)) params_.freeze(p);
  // Every layer's adapters must fit one activation set (Recompute::kFull shares layer 0's).
  for (const DecoderLayer& layer : layers_)
    TAILOR_ASSERT(layer.adapter_saved_widths() == layers_.front().adapter_saved_widths() &&
                      layer.has_block_adapter() == layers_.front().has_block_adapter(),
                  "layers with different adapters");
  params_.allocate(dtype, ops);

  // Parameters are laid out in the order added (embeddings, layers, final norm, head, virtual
  // tokens) and backward finishes them in reverse, so after layer i everything from its first
  // trainable gradient on is final — unless a gradient is completed later (TP sums, the
  // virtual-token table, whose gradient comes from the embedding step).
  bool suffix_final = virtual_table_ == nullptr;
  for (const Parameter& p : params_.all())
    if (p.trainable && p.grad_sum != GradSum::kNone) suffix_final = false;
  if (suffix_final) {
    // The smallest trainable offset from each parameter on, in one pass from the end (a pass per
    // layer made building quadratic in the number of layers).
    const auto& all = params_.all();
    std::vector<std::int64_t> suffix_min(all.size() + 1, params_.trainable_numel());
    for (std::size_t k = all.size(); k-- > 0;)
      suffix_min[k] = all[k].trainable
                          ? std::min(suffix_min[k + 1], all[k].offset - params_.trainable_begin())
                          : suffix_min[k + 1];
    for (std::size_t first : layer_first_param) ready_offset_.push_back(suffix_min[first]);
  }
  for (std::size_t i = 0; i < layers_.size(); ++i)
    for (const Parameter* w : layers_[i].linear_parameters())
      if (w != nullptr) layer_of_linear_.emplace(w, i);

  if (t > 1) {
    // Collective over the TP group: every rank splits, even when it shares no KV head.
    kv_group_ = tp_->split(static_cast<int>(layout_.kv_head_begin), tp_->rank());
  }

  if (spec_.position == PositionType::kRope) {
    const auto upload = [&](std::vector<float> host) {
      Buffer buf = ops_->alloc(DType::kF32, Shape{static_cast<std::int64_t>(host.size())});
      ops_->copy(buf.tensor(), Tensor{host.data(), DType::kF32, buf.shape()});
      return buf;
    };
    inv_freq_ = upload(spec_.rope_inv_freq());
    if (spec_.rope_local_theta > 0.0) inv_freq_local_ = upload(spec_.rope_local_inv_freq());
    if (spec_.rope_type == "longrope") inv_freq_long_ = upload(spec_.rope_inv_freq(true));
  }
}

Transformer::~Transformer() = default;

void Transformer::init_parameters(std::uint64_t seed) { init_parameters_where(seed, false); }

void Transformer::init_method_parameters(std::uint64_t seed) { init_parameters_where(seed, true); }

void Transformer::init_parameters_where(std::uint64_t seed, bool methods_only) {
  // Every element is drawn from (seed, name, global index) alone, so blocks of a tensor fill in
  // parallel with the same values for any thread count (one thread takes minutes at 1B).
  ThreadPool pool(0);
  constexpr std::int64_t kBlock = 1 << 16;
  for (Parameter& p : params_.all()) {
    const std::string& n = p.name;
    if (methods_only && !is_method_param(p.role)) continue;
    switch (p.role) {
      case ParamRole::kNormWeight:
      case ParamRole::kAdapterScale:  // IA3's l = 1: training starts exactly at the base model
        ops_->fill(p.value, 1.0);
        continue;
      case ParamRole::kBias:
      case ParamRole::kAdapterBias:
      case ParamRole::kAdapterOut:  // LoRA B = 0: training starts exactly at the base model
        ops_->fill(p.value, 0.0);
        continue;
      case ParamRole::kWeight:
      case ParamRole::kVocabTable:
      case ParamRole::kAdapterWeight:
      case ParamRole::kLoraA:
        break;
    }
    // Element i of the shard takes the value of its global element: a TP shard equals the
    // slice of the unsharded tensor under the same seed. Drawn in f64, converted once.
    const CounterRng rng(seed, stream_id(n));
    Buffer host(DType::kF64, p.shape);
    double* h = host.ptr<double>();
    const std::int64_t gcols = p.global_shape.cols();
    if (p.role == ParamRole::kLoraA) {
      // Kaiming-uniform with a = sqrt(5), as PEFT: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      const double bound = 1.0 / std::sqrt(static_cast<double>(gcols));
      pool.parallel_for(p.shape.numel(), kBlock, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i)
          h[i] = bound * (2.0 * rng.uniform(static_cast<std::uint64_t>(p.global_index(i))) - 1.0);
      });
      ops_->copy(p.value, host.tensor());
      continue;
    }
    const bool vocab_rows = p.role == ParamRole::kVocabTable;
    pool.parallel_for(p.shape.numel(), kBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const std::int64_t g = p.global_index(i);
        // Padding rows of the vocabulary stay zero.
        h[i] = vocab_rows && g / gcols >= spec_.vocab_size
                   ? 0.0
                   : spec_.init_std * rng.normal(static_cast<std::uint64_t>(g));
      }
    });
    ops_->copy(p.value, host.tensor());
  }
}

void Transformer::token_embeddings(std::span<const std::int32_t> ids, const Tensor& rows) {
  const auto n = static_cast<std::int64_t>(ids.size());
  TAILOR_ASSERT(rows.shape == (Shape{n, spec_.hidden_size}), "token_embeddings: {} ids into {}", n,
                rows.str());
  Buffer host(DType::kI32, Shape{n});
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int32_t id = ids[static_cast<std::size_t>(k)];
    TAILOR_ASSERT(id >= 0 && id < spec_.vocab_size, "token id {} outside the vocabulary", id);
    host.ptr<std::int32_t>()[k] = id;
  }
  const Buffer ids_dev = ops_->alloc(DType::kI32, Shape{n});
  ops_->copy(ids_dev.tensor(), host.tensor());
  // Vocab-parallel lookup: each rank fills the rows of its ids, zeros elsewhere; sum over ranks.
  vocab_parallel_embedding(*ops_, tp_, *embed_tokens_, ids_dev.tensor(), layout_.vocab_begin, rows);
}

void Transformer::ensure_activations(std::int64_t batch, std::int64_t seq) {
  if (acts_ && acts_->batch == batch && acts_->seq == seq) return;
  acts_.reset();  // free the old set first: peak memory holds one set only
  auto a = std::make_unique<Activations>();
  a->batch = batch;
  a->seq = seq;
  a->ops = ops_;
  const std::int64_t n = batch * seq;
  const std::int64_t d = spec_.hidden_size;
  const std::int64_t f = layout_.ffn;
  const std::int64_t qd = layout_.q_dim(spec_.head_dim);
  const std::int64_t kvd = layout_.kv_dim(spec_.head_dim);
  const bool layer_norm = spec_.norm == NormType::kLayerNorm;
  const bool swiglu = spec_.gated_mlp();
  a->storage.reserve(static_cast<std::size_t>(spec_.num_layers) * 16 + 32);
  for (int i = 0; i <= spec_.num_layers; ++i) a->resid.push_back(a->make(dtype_, Shape{n, d}));
  if (recompute_ == Recompute::kFull) {
    // One set for every layer; each layer's forward is rerun from its input before its backward.
    const LayerActivations one =
        layers_.front().allocate_activations(a->storage, dtype_, *ops_, batch, seq);
    a->layers.assign(layers_.size(), one);
    a->recompute_out = a->make(dtype_, Shape{n, d});
  } else {
    LayerActivations shared;
    if (recompute_ == Recompute::kSelective) {
      shared.h1 = a->make(dtype_, Shape{n, d});
      shared.h2 = a->make(dtype_, Shape{n, d});
      shared.act = a->make(dtype_, Shape{n, f});
    }
    for (const DecoderLayer& layer : layers_)
      a->layers.push_back(layer.allocate_activations(
          a->storage, dtype_, *ops_, batch, seq,
          recompute_ == Recompute::kSelective ? &shared : nullptr));
  }
  a->final_h = a->make(dtype_, Shape{n, d});
  if (layer_norm) a->final_mean = a->make(stat_dtype_, Shape{n});
  a->final_rstd = a->make(stat_dtype_, Shape{n});
  a->chunk = std::min(n, loss_chunk_rows());
  a->logits = a->make(dtype_, Shape{a->chunk, layout_.vocab});
  a->losses = a->make(stat_dtype_, Shape{n});
  if (tensor_parallel()) {
    a->row_max = a->make(stat_dtype_, Shape{a->chunk});
    a->ce_stats = a->make(stat_dtype_, Shape{2 * a->chunk});
  }
  if (device_ != backend::Device::kCpu) {
    for (Buffer* buf : {&a->ids, &a->targets, &a->positions, &a->doc_ids})
      *buf = ops_->alloc(DType::kI32, Shape{n});
    a->losses_host = Buffer(stat_dtype_, Shape{n});
  }
  a->dx = a->make(dtype_, Shape{n, d});
  LayerScratch& s = a->scratch;
  s.d_h = a->make(dtype_, Shape{n, d});
  s.d_norm = a->make(dtype_, Shape{n, d});
  if (tensor_parallel()) s.partial = a->make(dtype_, Shape{n, d});
  s.d_attn = a->make(dtype_, Shape{n, qd});
  s.d_q = a->make(dtype_, Shape{n, qd});
  s.d_k = a->make(dtype_, Shape{n, kvd});
  s.d_v = a->make(dtype_, Shape{n, kvd});
  if (swiglu) s.d_gate = a->make(dtype_, Shape{n, f});
  s.d_up = a->make(dtype_, Shape{n, f});
  s.d_act = a->make(dtype_, Shape{n, f});
  if (layers_.front().has_block_adapter()) s.d_block = a->make(dtype_, Shape{n, d});
  if (spec_.sandwich_norms) s.sandwich = a->make(dtype_, Shape{n, d});
  s.adapter = adapter_scratch(a->storage, n);
  hook_scratch(a->storage, n, s);
  acts_ = std::move(a);
}

std::vector<Tensor> Transformer::adapter_scratch(std::vector<Buffer>& storage,
                                                std::int64_t n) const {
  // Slot i serves every adapter of every layer (one call runs at a time): the widest request.
  std::vector<std::int64_t> widths;
  for (const DecoderLayer& layer : layers_) {
    const std::vector<std::int64_t>& w = layer.adapter_scratch_widths();
    if (widths.size() < w.size()) widths.resize(w.size(), 0);
    for (std::size_t i = 0; i < w.size(); ++i) widths[i] = std::max(widths[i], w[i]);
  }
  std::vector<Tensor> slots;
  for (const std::int64_t w : widths) {
    if (w == 0) {
      slots.emplace_back();
      continue;
    }
    storage.push_back(ops_->alloc(dtype_, Shape{n * w}));
    slots.push_back(storage.back().tensor());
  }
  return slots;
}

void Transformer::hook_scratch(std::vector<Buffer>& storage, std::int64_t n,
                               LayerScratch& s) const {
  std::array<std::int64_t, 2> widths{0, 0};
  for (const DecoderLayer& layer : layers_)
    for (std::size_t i = 0; i < 2; ++i)
      widths[i] = std::max(widths[i], layer.hook_scratch_widths()[i]);
  Tensor* slots[2] = {&s.hook_out, &s.hook_in};
  for (std::size_t i = 0; i < 2; ++i) {
    if (widths[i] == 0) continue;
    storage.push_back(ops_->alloc(dtype_, Shape{n * widths[i]}));
    *slots[i] = storage.back().tensor();
  }
}

std::vector<const LinearAdapter*> Transformer::adapters_on(const Parameter& weight) const {
  const auto it = layer_of_linear_.find(&weight);
  if (it == layer_of_linear_.end()) return {};
  return layers_[it->second].adapters_on(weight);
}

LayerContext Transformer::context(const Batch& b) const {
  LayerContext c;
  c.batch = b.batch;
  c.seq = b.seq;
  c.positions = b.positions;
  c.doc_ids = b.doc_ids;
  c.inv_freq = inv_freq(long_rope_);
  if (!inv_freq_local_.empty()) c.inv_freq_local = inv_freq_local_.tensor();
  c.tp = tp_;
  c.seed = b.step_key.seed;
  c.step = b.step_key.step;
  c.first_token = b.step_key.first_row * b.seq;
  c.adapters = adapters_enabled_;
  return c;
}

Batch Transformer::on_device(const Batch& b) {
  if (device_ == backend::Device::kCpu) return b;
  Activations& a = *acts_;
  Batch d = b;
  const auto upload = [&](const Buffer& dst, const Tensor& src) {
    ops_->copy(dst.tensor(), src);
    return dst.tensor();
  };
  d.ids = upload(a.ids, b.ids);
  d.targets = upload(a.targets, b.targets);
  d.positions = upload(a.positions, b.positions);
  if (b.doc_ids.data != nullptr) d.doc_ids = upload(a.doc_ids, b.doc_ids);
  return d;
}

void Transformer::embed(const Batch& host, const Batch& dev) {
  // scratch.d_h is free during the forward pass.
  embed_tokens(host.ids, dev.ids, dev.positions, acts_->resid[0], acts_->scratch.d_h);
}

void Transformer::embed_tokens(const Tensor& host_ids, const Tensor& ids, const Tensor& positions,
                               const Tensor& x0, const Tensor& tmp) {
  Tensor token_ids = ids;
  if (virtual_table_ != nullptr) {
    const std::int64_t n = ids.numel();
    const std::int64_t n_virtual = virtual_tokens();
    if (token_ids_.numel() != n) {
      token_ids_host_ = Buffer(DType::kI32, Shape{n});
      virtual_ids_host_ = Buffer(DType::kI32, Shape{n});
      token_ids_ = ops_->alloc(DType::kI32, Shape{n});
      virtual_ids_ = ops_->alloc(DType::kI32, Shape{n});
    }
    const std::int32_t* in = host_ids.ptr<std::int32_t>();
    std::int32_t* tok = token_ids_host_.ptr<std::int32_t>();
    std::int32_t* row = virtual_ids_host_.ptr<std::int32_t>();
    const auto outside_vocab = static_cast<std::int32_t>(layout_.padded_vocab);
    const auto outside_table = static_cast<std::int32_t>(n_virtual);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int32_t id = in[i];
      TAILOR_ASSERT(id >= -n_virtual, "id {}: virtual token {} of {}", id, -1 - id, n_virtual);
      tok[i] = id >= 0 ? id : outside_vocab;
      row[i] = id >= 0 ? outside_table : -1 - id;
    }
    ops_->copy(token_ids_.tensor(), token_ids_host_.tensor());
    ops_->copy(virtual_ids_.tensor(), virtual_ids_host_.tensor());
    token_ids = token_ids_.tensor();
  }
  // Vocab-parallel lookup: each rank fills the rows of its ids, zeros elsewhere; sum over ranks.
  vocab_parallel_embedding(*ops_, tp_, *embed_tokens_, token_ids, layout_.vocab_begin, x0);
  // Gemma: the token embeddings times sqrt(hidden) (virtual tokens and positions unscaled, as
  // peft's prompt joins the scaled inputs_embeds).
  if (spec_.embedding_multiplier != 1.0) ops_->scale(x0, spec_.embedding_multiplier);
  if (virtual_table_ != nullptr) {  // virtual tokens: their rows of the (replicated) table; 0 + v
    ops_->embedding_forward(virtual_table_->value, virtual_ids_.tensor(), 0, tmp);
    ops_->add(x0, tmp, 1.0);
  }
  if (embed_positions_ != nullptr) {
    ops_->embedding_forward(embed_positions_->value, positions, 0, tmp);
    ops_->add(x0, tmp, 1.0);
  }
}

void Transformer::final_norm(const Tensor& x, const Tensor& y, const Tensor& mean,
                             const Tensor& rstd) {
  if (spec_.norm == NormType::kRmsNorm) {
    ops_->rmsnorm_forward(x, final_norm_w_->value, spec_.norm_eps, y, rstd);
  } else {
    ops_->layernorm_forward(x, final_norm_w_->value, final_norm_b_->value, spec_.norm_eps, y, mean,
                            rstd);
  }
}

namespace {

void check_batch(const Batch& b, const ModelSpec& spec) {
  const std::int64_t n = b.batch * b.seq;
  TAILOR_ASSERT(b.batch > 0 && b.seq > 0, "empty batch");
  TAILOR_ASSERT(b.ids.numel() == n && b.targets.numel() == n && b.positions.numel() == n,
                "batch tensors must hold B*T = {} tokens", n);
  TAILOR_ASSERT(b.doc_ids.data == nullptr || b.doc_ids.numel() == n, "doc_ids must hold B*T");
  TAILOR_ASSERT(spec.position != PositionType::kLearned || b.seq <= spec.max_position_embeddings,
                "sequence length {} > max_position_embeddings {}", b.seq,
                spec.max_position_embeddings);
}

}  // namespace

Tensor Transformer::inv_freq(bool long_context) const {
  return long_context ? inv_freq_long_.tensor() : inv_freq_.tensor();
}

bool Transformer::long_rope(const Tensor& host_positions) const {
  if (spec_.rope_type != "longrope") return false;
  const std::int32_t* p = host_positions.ptr<std::int32_t>();
  const std::int32_t max = host_positions.numel() == 0 ? 0 : *std::max_element(p, p + host_positions.numel());
  return spec_.rope_long_context(max);
}

Batch Transformer::run_forward(const Batch& host) {
  check_batch(host, spec_);
  // longrope: the frequency set of this micro-batch's positions, kept for its backward.
  long_rope_ = long_rope(host.positions);
  ensure_activations(host.batch, host.seq);
  Activations& a = *acts_;
  const Batch b = on_device(host);
  const LayerContext ctx = context(b);
  embed(host, b);
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i].forward(*ops_, ctx, a.resid[i], a.resid[i + 1], a.layers[i], a.scratch);
  final_norm(a.resid.back(), a.final_h, a.final_mean, a.final_rstd);
  a.logits_kept = false;
  a.device_batch = b;
  return b;
}

std::int64_t Transformer::loss_chunk_rows() const noexcept {
  if (loss_chunk_tokens_ > 0) return loss_chunk_tokens_;
  // Auto: about kHeadChunkElements logits at a time, from the global padded vocabulary so that
  // every tensor-parallel layout chunks the same rows.
  return std::max<std::int64_t>(1, kHeadChunkElements / layout_.padded_vocab);
}

void Transformer::set_loss_chunk_tokens(std::int64_t rows) {
  TAILOR_ASSERT(rows >= 0, "loss chunk of {} rows", rows);
  if (rows == loss_chunk_tokens_) return;
  loss_chunk_tokens_ = rows;
  acts_.reset();
}

void Transformer::head_loss(const Batch& b, bool with_grad, double dscale,
                            std::span<const double> row_weights, const Tensor* logits_out) {
  Activations& a = *acts_;
  const std::int64_t n = b.batch * b.seq;
  const bool one_chunk = a.chunk >= n;
  for (std::int64_t r0 = 0; r0 < n; r0 += a.chunk) {
    const std::int64_t rows = std::min(a.chunk, n - r0);
    const Tensor h = a.final_h.row_slice(r0, r0 + rows);
    const Tensor logits = a.logits.row_slice(0, rows);  // [rows, V_local]
    if (!a.logits_kept) ops_->gemm(h, false, lm_head_->value, true, logits, 1.0, 0.0);  // h W^T
    if (logits_out != nullptr) ops_->copy(logits_out->row_slice(r0, r0 + rows), logits);
    if (row_weights.empty()) {
      loss_of_rows(b, r0, rows, logits, with_grad, dscale);
    } else {  // each row's part of the chunk with its own weight (the loss is row-local)
      for (std::int64_t t0 = r0; t0 < r0 + rows;) {
        const std::int64_t row = t0 / b.seq;
        const std::int64_t t1 = std::min(r0 + rows, (row + 1) * b.seq);
        loss_of_rows(b, t0, t1 - t0, logits.row_slice(t0 - r0, t1 - r0), with_grad,
                     row_weights[static_cast<std::size_t>(row)]);
        t0 = t1;
      }
    }
    if (!with_grad) continue;
    // LM head (vocab-parallel) backward of this chunk: dW_head += dlogits^T h, dh = dlogits W.
    if (lm_head_->grad.data != nullptr)  // frozen under PEFT
      ops_->gemm(logits, true, h, false, lm_head_->grad, 1.0, 1.0);
    ops_->gemm(logits, false, lm_head_->value, false, a.scratch.d_h.row_slice(r0, r0 + rows),
               1.0, 0.0);
  }
  // The logits of a forward in one chunk stay for backward_rows until a gradient overwrites them.
  a.logits_kept = one_chunk && !with_grad;
}

void Transformer::loss_of_rows(const Batch& b, std::int64_t first, std::int64_t count,
                               const Tensor& logits, bool with_grad, double dscale) {
  Activations& a = *acts_;
  const Tensor targets = b.targets.flat_slice(first, first + count);
  const Tensor losses = a.losses.flat_slice(first, first + count);
  const Tensor dlogits = with_grad ? logits : Tensor{};
  if (!tensor_parallel()) {
    ops_->cross_entropy(logits, targets, spec_.vocab_size, losses, dlogits, dscale);
    return;
  }
  const std::int64_t valid = layout_.valid_vocab(spec_.vocab_size);
  const Tensor row_max = a.row_max.flat_slice(0, count);
  const Tensor ce_stats = a.ce_stats.flat_slice(0, 2 * count).view(Shape{2, count});
  ops_->ce_local_max(logits, valid, row_max);
  tp::vocab_max(tp_, row_max);
  ops_->ce_local_sums(logits, targets, layout_.vocab_begin, valid, row_max, ce_stats);
  tp::vocab_sum(tp_, ce_stats);
  ops_->ce_finish(logits, targets, layout_.vocab_begin, valid, row_max, ce_stats, losses,
                  dlogits, dscale);
}

const std::vector<double>& Transformer::host_losses() {
  Activations& a = *acts_;
  Tensor l = a.losses;
  if (l.device != backend::Device::kCpu) {
    ops_->copy(a.losses_host.tensor(), l);
    l = a.losses_host.tensor();
  }
  a.token_losses.resize(static_cast<std::size_t>(l.numel()));
  if (l.dtype == DType::kF64) {
    const double* p = l.ptr<double>();
    std::copy(p, p + l.numel(), a.token_losses.begin());
  } else {
    const float* p = l.ptr<float>();
    std::transform(p, p + l.numel(), a.token_losses.begin(),
                   [](float x) { return static_cast<double>(x); });
  }
  return a.token_losses;
}

double Transformer::sum_losses() {
  // Serial sum in f64 in token order: deterministic, and N is small next to the GEMMs.
  double total = 0.0;
  for (const double x : host_losses()) total += x;
  return total;
}

double Transformer::forward(const Batch& host, const Tensor* logits_out) {
  const Batch b = run_forward(host);
  head_loss(b, /*with_grad=*/false, 0.0, {}, logits_out);
  return sum_losses();
}

double Transformer::forward_backward(const Batch& host, double dscale,
                                     const std::function<void(std::int64_t)>& grads_ready) {
  const Batch b = run_forward(host);
  // Fused loss and its gradient, chunk by chunk: each chunk's logits are overwritten by
  // dscale * (softmax - onehot) and taken through the LM head's backward at once.
  head_loss(b, /*with_grad=*/true, dscale, {}, nullptr);
  const double total = sum_losses();
  backward_from_head(b, grads_ready);
  return total;
}

std::span<const double> Transformer::forward_token_losses(const Batch& host) {
  const Batch b = run_forward(host);
  head_loss(b, /*with_grad=*/false, 0.0, {}, nullptr);
  return host_losses();
}

void Transformer::backward_rows(const Batch& host, std::span<const double> row_weights,
                                const std::function<void(std::int64_t)>& grads_ready) {
  TAILOR_ASSERT(acts_ && acts_->batch == host.batch && acts_->seq == host.seq &&
                    static_cast<std::int64_t>(row_weights.size()) == host.batch,
                "backward_rows: {} weights for a batch of {} after a forward of {}",
                row_weights.size(), host.batch, acts_ ? acts_->batch : 0);
  TAILOR_ASSERT(adapters_enabled_, "backward_rows with the adapters disabled");
  // The batch is on the device since the forward (no second upload).
  const Batch& b = acts_->device_batch;
  // The loss gradient of each row with its own weight, through the LM head (with one chunk the
  // forward's logits are reused; otherwise each chunk's logits are computed again). The same
  // chunks and GEMMs as forward_backward, so equal weights give its result bit for bit.
  head_loss(b, /*with_grad=*/true, 0.0, row_weights, nullptr);
  backward_from_head(b, grads_ready);
}

void Transformer::backward_from_head(const Batch& b,
                                      const std::function<void(std::int64_t)>& grads_ready) {
  const bool announce = grads_ready && !ready_offset_.empty();
  Activations& a = *acts_;
  // dh = sum over ranks of dlogits W_head (head_loss left this rank's part in scratch.d_h).
  const Tensor dh = a.scratch.d_h;
  tp::copy_to_region_backward(tp_, dh);  // the LM head is column-parallel over the vocabulary
  const Tensor& xl = a.resid.back();
  if (spec_.norm == NormType::kRmsNorm) {
    ops_->rmsnorm_backward(dh, xl, final_norm_w_->value, a.final_rstd, a.dx, final_norm_w_->grad);
  } else {
    ops_->layernorm_backward(dh, xl, final_norm_w_->value, a.final_mean, a.final_rstd, a.dx,
                             final_norm_w_->grad, final_norm_b_->grad);
  }

  const LayerContext ctx = context(b);
  for (std::size_t i = layers_.size(); i-- > 0;) {
    if (recompute_ != Recompute::kNone)
      layers_[i].recompute(*ops_, ctx, a.resid[i], a.layers[i], a.scratch, recompute_,
                           a.recompute_out);
    layers_[i].backward(*ops_, ctx, a.resid[i], a.layers[i], a.scratch, a.dx);
    if (announce) grads_ready(ready_offset_[i]);
  }

  if (embed_positions_ != nullptr && embed_positions_->grad.data != nullptr)
    ops_->embedding_backward(embed_positions_->grad, b.positions, 0, a.dx);
  if (virtual_table_ != nullptr)  // the virtual tokens' rows of dx, from the ids of embed() above
    ops_->embedding_backward(virtual_table_->grad, virtual_ids_.tensor(), 0, a.dx);
  if (embed_tokens_->grad.data != nullptr) {
    if (spec_.embedding_multiplier != 1.0) ops_->scale(a.dx, spec_.embedding_multiplier);
    ops_->embedding_backward(embed_tokens_->grad, b.ids, layout_.vocab_begin, a.dx);
  }
  if (announce) grads_ready(0);
}

void Transformer::set_recompute(Recompute mode) {
  if (mode == recompute_) return;
  recompute_ = mode;
  acts_.reset();
}

std::int64_t Transformer::activation_bytes() const {
  if (!acts_) return 0;
  std::int64_t total = 0;
  for (const Buffer& b : acts_->storage) total += static_cast<std::int64_t>(b.tensor().bytes());
  return total;
}

void Transformer::finish_gradients() {
  if (!tensor_parallel()) return;
  for (Parameter& p : params_.all()) {
    if (p.grad.data == nullptr) continue;
    if (p.grad_sum == GradSum::kTensorParallel) tp::sum_partial_gradient(tp_, p.grad);
    if (p.grad_sum == GradSum::kKvReplicas) tp::sum_partial_gradient(kv_group_.get(), p.grad);
  }
}

std::int64_t count_loss_targets(const Tensor& targets) {
  const std::int32_t* t = targets.ptr<std::int32_t>();
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < targets.numel(); ++i) n += t[i] != backend::kIgnoreIndex;
  return n;
}

}  // namespace tailor::model
