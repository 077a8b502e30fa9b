// Transformer inference with a KV cache: extend() and its scratch buffers.
//
// The layers run forward_cached(), the training forward with the attention reading the cache, so
// every family and every attached adapter (LoRA unmerged, bottleneck adapters) go through the
// very code that training uses. Only the rows whose logits are asked for (each row's last real token) pass through the
// final norm and the LM head: a [B, D] x [D, V] product instead of [B*T, D] x [D, V].
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "model/inference_state.h"
#include "model/transformer.h"

namespace tailor::model {

using backend::Buffer;
using backend::Tensor;

KvCache Transformer::make_kv_cache(std::int64_t batch, std::int64_t capacity) const {
  if (tensor_parallel())
    throw_user_error("generation",
                     "tensor-parallel generation is not supported (this model is split over {} "
                     "ranks); generate on one rank (parallel.tensor: 1)",
                     layout_.size);
  return KvCache(spec_, layout_, dtype_, *ops_, batch, capacity);
}

void Transformer::ensure_inference_state(std::int64_t batch, std::int64_t seq) {
  if (infer_ && infer_->batch == batch && infer_->seq == seq) return;
  infer_.reset();  // free the old set first
  auto st = std::make_unique<InferenceState>();
  st->batch = batch;
  st->seq = seq;
  st->ops = ops_;
  const std::int64_t n = batch * seq;
  const std::int64_t d = spec_.hidden_size;
  for (Tensor& r : st->resid) r = st->make(dtype_, Shape{n, d});
  if (embed_positions_ != nullptr || virtual_table_ != nullptr)
    st->embed_tmp = st->make(dtype_, Shape{n, d});
  st->act = layers_.front().allocate_activations(st->storage, dtype_, *ops_, batch, seq);
  st->scratch.adapter = adapter_scratch(st->storage, n);
  hook_scratch(st->storage, n, st->scratch);
  if (spec_.sandwich_norms) st->scratch.sandwich = st->make(dtype_, Shape{n, d});
  st->last_x = st->make(dtype_, Shape{batch, d});
  st->last_h = st->make(dtype_, Shape{batch, d});
  if (spec_.norm == NormType::kLayerNorm) st->last_mean = st->make(stat_dtype_, Shape{batch});
  st->last_rstd = st->make(stat_dtype_, Shape{batch});
  st->logits = st->make(dtype_, Shape{batch, layout_.vocab});
  if (device_ != backend::Device::kCpu || dtype_ != stat_dtype_)
    st->logits_host = Buffer(stat_dtype_, Shape{batch, layout_.vocab});
  st->positions_host = Buffer(DType::kI32, Shape{n});
  st->start_host_i32 = Buffer(DType::kI32, Shape{batch});
  st->positions = ops_->alloc(DType::kI32, Shape{n});
  if (device_ != backend::Device::kCpu) st->ids = ops_->alloc(DType::kI32, Shape{n});
  st->start = ops_->alloc(DType::kI32, Shape{batch});
  st->start_host.assign(static_cast<std::size_t>(batch), 0);
  infer_ = std::move(st);
}

namespace {

void check_extend(const ModelSpec& spec, std::int64_t virtual_tokens, const KvCache& cache,
                  const Tensor& ids, std::span<const std::int64_t> counts) {
  const std::int64_t b = cache.batch();
  TAILOR_ASSERT(ids.dtype == DType::kI32 && ids.numel() > 0 && ids.numel() % b == 0,
                "extend: ids {} for {} rows", ids.str(), b);
  TAILOR_ASSERT(static_cast<std::int64_t>(counts.size()) == b, "extend: {} counts for {} rows",
                counts.size(), b);
  const std::int64_t t = ids.numel() / b;
  const std::int32_t* p = ids.ptr<std::int32_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i)
    TAILOR_ASSERT(p[i] >= -virtual_tokens && p[i] < spec.vocab_size,
                  "extend: token id {} outside [{}, {})", p[i], -virtual_tokens, spec.vocab_size);
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t c = counts[static_cast<std::size_t>(r)];
    const std::int64_t len = cache.length(r);
    TAILOR_ASSERT(c >= 0 && c <= t, "extend: row {} has {} real tokens of {}", r, c, t);
    TAILOR_ASSERT(len + t <= cache.capacity(), "extend: row {} holds {}, {} more exceed {}", r, len,
                  t, cache.capacity());
    TAILOR_ASSERT(
        spec.position != PositionType::kLearned || len + c <= spec.max_position_embeddings,
        "extend: row {} reaches position {} > max_position_embeddings {}", r, len + c,
        spec.max_position_embeddings);
  }
}

}  // namespace

// Row r's new tokens sit at cache.length(r), +1, ...; padding repeats the last real position (a
// learned position table may end there; padding's outputs are never used).
void Transformer::InferenceState::set_positions(const KvCache& cache,
                                                std::span<const std::int64_t> counts) {
  std::int32_t* pos = positions_host.ptr<std::int32_t>();
  std::int32_t* first = start_host_i32.ptr<std::int32_t>();
  for (std::int64_t r = 0; r < batch; ++r) {
    const std::int64_t len = cache.length(r);
    start_host[static_cast<std::size_t>(r)] = len;
    first[r] = static_cast<std::int32_t>(len);
    const std::int64_t last = counts[static_cast<std::size_t>(r)] - 1;
    for (std::int64_t i = 0; i < seq; ++i)
      pos[r * seq + i] =
          static_cast<std::int32_t>(std::max<std::int64_t>(len + std::min(i, last), 0));
  }
}

Tensor Transformer::extend(KvCache& cache, const Tensor& ids,
                           std::span<const std::int64_t> counts) {
  TAILOR_ASSERT(!tensor_parallel(), "extend: tensor-parallel generation");
  TAILOR_ASSERT(cache.layers() == spec_.num_layers, "extend: cache of {} layers for {}",
                cache.layers(), spec_.num_layers);
  check_extend(spec_, virtual_tokens(), cache, ids, counts);
  const std::int64_t b = cache.batch();
  const std::int64_t t = ids.numel() / b;
  ensure_inference_state(b, t);
  InferenceState& st = *infer_;

  st.set_positions(cache, counts);
  ops_->copy(st.positions.tensor(), st.positions_host.tensor());
  ops_->copy(st.start.tensor(), st.start_host_i32.tensor());
  Tensor dev_ids = ids;
  if (!st.ids.empty()) {
    dev_ids = st.ids.view(ids.shape);
    ops_->copy(dev_ids, ids);
  }
  embed_tokens(ids, dev_ids, st.positions.tensor(), st.resid[0], st.embed_tmp);
  LayerContext ctx;
  ctx.batch = b;
  ctx.seq = t;
  ctx.positions = st.positions.tensor();
  ctx.inv_freq = inv_freq(long_rope(st.positions_host.tensor()));
  if (!inv_freq_local_.empty()) ctx.inv_freq_local = inv_freq_local_.tensor();
  ctx.tp = tp_;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const int l = static_cast<int>(i);
    const LayerCache lc{cache.keys(l), cache.values(l), st.start.tensor(), st.start_host};
    layers_[i].forward_cached(*ops_, ctx, st.resid[i % 2], st.resid[(i + 1) % 2], st.act,
                              st.scratch, lc);
  }
  const Tensor& xl = st.resid[layers_.size() % 2];
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t last =
        r * t + std::max<std::int64_t>(counts[static_cast<std::size_t>(r)] - 1, 0);
    ops_->copy(st.last_x.row_slice(r, r + 1), xl.row_slice(last, last + 1));
  }
  final_norm(st.last_x, st.last_h, st.last_mean, st.last_rstd);
  ops_->gemm(st.last_h, false, lm_head_->value, true, st.logits, 1.0, 0.0);  // [B, V]
  cache.advance(counts);
  if (st.logits_host.empty()) return st.logits;
  ops_->copy(st.logits_host.tensor(), st.logits);
  return st.logits_host.tensor();
}

}  // namespace tailor::model
