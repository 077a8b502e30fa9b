// Attention of new queries over a KV cache (see attention.cuh for the contract).
//
// The training forward kernel (attention_forward.cu) with a per-row position offset: query row i
// of batch row b sits at position start[b] + i and sees the cache keys j <= start[b] + i (within
// the sliding window, when there is one), so a block walks the key tiles from its first query's
// window to its last query's position and masks inside the edge tiles. No
// documents, no lse. Decode (Tq = 1) runs one block per (row, head) with one live query row of
// the 64 (a split-K "flash decoding" kernel would use the GPU better; not yet here).
#include "kernels/attention.cuh"
#include "kernels/attention_common.cuh"
#include "kernels/cuda_check.cuh"

namespace tailor::kernels {
namespace {

template <typename T>
void cached(const T* q, const T* k, const T* v, const std::int32_t* start, float scale, T* out,
            AttentionCachedShape s, cudaStream_t stream) {
  TAILOR_ASSERT(s.batch >= 0 && s.batch <= 65535 && s.queries >= 0 && s.capacity >= 0 &&
                    s.queries <= s.capacity && s.capacity <= 0x7fffffff &&
                    s.batch * s.capacity <= 0x7fffffff && s.heads > 0 && s.heads <= 65535 &&
                    s.kv_heads > 0 && s.heads % s.kv_heads == 0 && s.head_dim >= 1 &&
                    s.head_dim <= 256 && s.window >= 0 && s.window <= 0x7fffffff,
                "attention_cached: bad shape B {} Tq {} S {} Hq {} Hkv {} Dh {} window {}",
                s.batch, s.queries, s.capacity, s.heads, s.kv_heads, s.head_dim, s.window);
  if (s.batch == 0 || s.queries == 0) return;
  TAILOR_ASSERT(q != nullptr && k != nullptr && v != nullptr && start != nullptr && out != nullptr,
                "attention_cached: null tensor");
  detail::attn::ForwardParams<T> p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.start = start;
  p.out = out;
  p.scale = scale;
  p.window = static_cast<int>(s.window);
  p.batch = static_cast<int>(s.batch);
  p.q_len = static_cast<int>(s.queries);
  p.kv_cap = static_cast<int>(s.capacity);
  p.hq = static_cast<int>(s.heads);
  p.hkv = static_cast<int>(s.kv_heads);
  p.dh = static_cast<int>(s.head_dim);
  detail::attn::launch_forward(p, stream);
}

}  // namespace

void attention_cached(const float* q, const float* k, const float* v, const std::int32_t* start,
                      float scale, float* out, AttentionCachedShape shape, cudaStream_t stream) {
  cached(q, k, v, start, scale, out, shape, stream);
}
void attention_cached(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                      const std::int32_t* start, float scale, std::uint16_t* out,
                      AttentionCachedShape shape, cudaStream_t stream) {
  cached(q, k, v, start, scale, out, shape, stream);
}

}  // namespace tailor::kernels
