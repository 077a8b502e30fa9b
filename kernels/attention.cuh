// Causal flash attention with grouped-query heads and optional document masks, forward and
// backward, and attention of new queries over a KV cache (generation), as CpuOps::attention_*
// (src/backend/cpu/attention.cpp, attention_cached.cpp) define them:
//
//   s_ij = scale * (q_i . k_j)  for visible keys (j <= i, doc_ids[j] == doc_ids[i] when doc_ids
//          is given, and j > i - window when window > 0), -inf for the others
//   out_i = softmax_j(s_i) . v,   lse_i = max_j s_ij + log(sum_j exp(s_ij - max_j s_ij))
//
// Query head h reads kv head h / (Hq / Hkv). Storage is f32 (the tight tests' mode) or bf16 (raw
// bits in std::uint16_t, the training mode); arithmetic is f32 in both (scores, softmax
// statistics, every accumulation), and lse is f32.
//
// FlashAttention-2 style (docs/kernels.md): tiles of queries x keys in shared memory, online
// softmax, the T x T scores are never stored. Deterministic without atomics: the backward pass
// computes dK, dV per (batch, kv head, key tile), summing over query tiles and over the query
// heads of the group in a fixed order, and dQ per (batch, query head, query tile) in a second
// kernel; tile sizes depend on head_dim alone. head_dim may be 1 .. 256.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct AttentionShape {
  std::int64_t batch = 0;     // B
  std::int64_t seq = 0;       // T
  std::int64_t heads = 0;     // Hq
  std::int64_t kv_heads = 0;  // Hkv, Hq % Hkv == 0; query head h reads kv head h / (Hq / Hkv)
  std::int64_t head_dim = 0;  // Dh, 1 .. 256
  std::int64_t window = 0;    // sliding window: keys j > i - window only; 0: global attention
};

// q: [B, T, Hq, Dh]; k, v: [B, T, Hkv, Dh]; out: [B, T, Hq, Dh]; lse: f32 [B, Hq, T] (saved for
// backward). doc_ids: i32 [B, T] or nullptr. Causal; with doc_ids token i attends only to the
// j <= i with doc_ids[j] == doc_ids[i]; with shape.window > 0 only to j > i - window. out and
// lse are written.
void attention_forward(const float* q, const float* k, const float* v, const std::int32_t* doc_ids,
                       float scale, float* out, float* lse, AttentionShape shape,
                       cudaStream_t stream);
void attention_forward(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                       const std::int32_t* doc_ids, float scale, std::uint16_t* out, float* lse,
                       AttentionShape shape, cudaStream_t stream);

// Device workspace attention_backward needs: D_i = dout_i . out_i, f32 [B, Hq, T].
[[nodiscard]] std::size_t attention_backward_workspace_bytes(AttentionShape shape);

// dq: [B, T, Hq, Dh]; dk, dv: [B, T, Hkv, Dh], written (=, not accumulated). dout, out: [B, T,
// Hq, Dh] and lse: the forward's. The gradients must not alias the inputs.
void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, const std::int32_t* doc_ids,
                        float scale, float* dq, float* dk, float* dv, void* workspace,
                        AttentionShape shape, cudaStream_t stream);
void attention_backward(const std::uint16_t* dout, const std::uint16_t* q, const std::uint16_t* k,
                        const std::uint16_t* v, const std::uint16_t* out, const float* lse,
                        const std::int32_t* doc_ids, float scale, std::uint16_t* dq,
                        std::uint16_t* dk, std::uint16_t* dv, void* workspace, AttentionShape shape,
                        cudaStream_t stream);

struct AttentionCachedShape {
  std::int64_t batch = 0;     // B
  std::int64_t queries = 0;   // Tq new tokens per row
  std::int64_t capacity = 0;  // S: cache length per row
  std::int64_t heads = 0, kv_heads = 0, head_dim = 0;
  std::int64_t window = 0;  // as AttentionShape::window, over positions
};

// q: [B, Tq, Hq, Dh]; k, v: [B, S, Hkv, Dh] (the cache, the new tokens already written into it);
// start: i32 [B] in device memory, 0 <= start[b] and start[b] + Tq <= S (the caller's invariant:
// it is not checked on the host; a value outside is clamped into range, so no memory outside the
// cache is read). Query t of row b sits at position start[b] + t and attends to keys
// j <= start[b] + t (and j > start[b] + t - window when window > 0). out: [B, Tq, Hq, Dh].
// Inference only: no lse.
void attention_cached(const float* q, const float* k, const float* v, const std::int32_t* start,
                      float scale, float* out, AttentionCachedShape shape, cudaStream_t stream);
void attention_cached(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                      const std::int32_t* start, float scale, std::uint16_t* out,
                      AttentionCachedShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
