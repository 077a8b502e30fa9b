// Attention forward (see attention.cuh for the contract; docs/kernels.md for the algorithm).
//
// One block per (query tile of kBr = 64 rows, query head, batch row); tiles in reverse order, so
// the longest (last) query tiles start first. The block keeps its query tile in shared memory
// and walks the key tiles from the first one its first query's sliding window reaches (0 without
// a window) to the one holding its last query's position (causal block skipping: tiles above the
// diagonal, and below every query's window, are never touched; every tile in between holds a key
// some row sees, since the rows' windows overlap or touch). Per key tile: K^T and V into shared
// memory, the scores s = (q . k) * scale of the thread's 4 x kBc/16 part in registers, -inf where
// masked;
// online softmax per row in f32:
//   m' = max(m, rowmax(s)),  base = m' (0 while m' is -inf: a row that saw only masked keys)
//   p = exp(s - base),  alpha = exp(m - base),  l = l * alpha + rowsum(p),  acc = acc * alpha
// then P through shared memory and acc += P V. At the end out = acc * (1 / l) and
// lse = m + log(l). Row reductions are fixed butterflies over the half-warp that holds the row.
//
// With documents, each key tile is first checked for any visible (query, key) pair in the block
// (__syncthreads_or); tiles of other documents are skipped without loading K and V. Skipping a
// fully masked tile is exact: it would only multiply by alpha = 1 and add zeros.
//
// attention_cached.cu launches the same kernel with a per-row position offset start[b]: query
// row i sits at position start[b] + i and sees keys j <= start[b] + i of the cache.
#include "kernels/attention.cuh"
#include "kernels/attention_common.cuh"
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"

namespace tailor::kernels {
namespace detail::attn {
namespace {

template <int kDh>
constexpr std::size_t forward_smem_bytes() {
  using G = Tile<kDh>;
  return sizeof(float) * static_cast<std::size_t>(kBr * G::kLdq + kDh * G::kLdk + G::kBc * kDh +
                                                  kBr * G::kLdk) +
         sizeof(std::int32_t) * static_cast<std::size_t>(kBr + G::kBc);
}

template <typename T, int kDh>
__global__ void __launch_bounds__(kThreads) forward_kernel(const ForwardParams<T> p) {
  using G = Tile<kDh>;
  constexpr int kBc = G::kBc;
  constexpr int kCpt = G::kCpt;
  constexpr int kDpt = G::kDpt;
  constexpr int kLdq = G::kLdq;
  constexpr int kLdk = G::kLdk;
  extern __shared__ float smem[];
  float* qs = smem;                                               // [kBr][kLdq] query tile
  float* kt = qs + kBr * kLdq;                                    // [kDh][kLdk] K^T of the key tile
  float* vs = kt + kDh * kLdk;                                    // [kBc][kDh]  V of the key tile
  float* ps = vs + kBc * kDh;                                     // [kBr][kLdk] probabilities
  auto* docq = reinterpret_cast<std::int32_t*>(ps + kBr * kLdk);  // [kBr]
  std::int32_t* dock = docq + kBr;                                // [kBc]

  const int tid = static_cast<int>(threadIdx.x);
  const int ty = tid / 16;
  const int tx = tid % 16;
  const int qt = static_cast<int>(gridDim.x - 1 - blockIdx.x);
  const int h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int g = h / (p.hq / p.hkv);
  const int q0 = qt * kBr;
  const int rows = min(kBr, p.q_len - q0);  // valid query rows of the tile (> 0)
  int off = 0;                              // position of query 0 of this batch row
  if (p.start != nullptr) off = max(0, min(p.start[b], p.kv_cap - p.q_len));
  const int pos0 = off + q0;  // position of query row 0 of the tile
  const int kv_len = off + p.q_len;

  const std::int64_t q_row = static_cast<std::int64_t>(p.hq) * p.dh;
  const std::int64_t kv_row = static_cast<std::int64_t>(p.hkv) * p.dh;
  const std::int64_t q_base =
      (static_cast<std::int64_t>(b) * p.q_len + q0) * q_row + static_cast<std::int64_t>(h) * p.dh;
  const std::int64_t kv_base =
      static_cast<std::int64_t>(b) * p.kv_cap * kv_row + static_cast<std::int64_t>(g) * p.dh;
  const T* kb = p.k + kv_base;
  const T* vb = p.v + kv_base;
  const std::int32_t* docb =
      p.doc != nullptr ? p.doc + static_cast<std::int64_t>(b) * p.q_len : nullptr;

  load_tile<kBr, kDh, kLdq>(qs, p.q + q_base, q_row, rows, p.dh);
  if (docb != nullptr)
    for (int r = tid; r < kBr; r += kThreads) docq[r] = r < rows ? docb[q0 + r] : 0;

  float m[kRpt];
  float l[kRpt];
  float acc[kRpt][kDpt];
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kDpt; ++j) acc[i][j] = 0.0f;
  }

  const int n_tiles = (pos0 + rows - 1) / kBc + 1;  // up to the tile of the last query's position
  for (int t = first_key_tile(pos0, p.window, kBc); t < n_tiles; ++t) {
    const int k0 = t * kBc;
    const int keys = min(kBc, kv_len - k0);  // keys of the tile inside the row (> 0)
    if (docb != nullptr) {
      for (int c = tid; c < kBc; c += kThreads) dock[c] = c < keys ? docb[k0 + c] : 0;
      __syncthreads();
      const bool any = any_visible<kCpt>(docq, dock, rows, pos0, k0, p.window, ty, tx);
      if (!__syncthreads_or(any ? 1 : 0)) continue;
    }
    load_tile_transposed<kBc, kDh, kLdk>(kt, kb + k0 * kv_row, kv_row, keys, p.dh);
    load_tile<kBc, kDh, kDh>(vs, vb + k0 * kv_row, kv_row, keys, p.dh);
    __syncthreads();

    float s[kRpt][kCpt];
    tile_dot<kCpt, kLdq, kLdk>(s, qs, kt, p.dh, ty, tx);
#pragma unroll
    for (int i = 0; i < kRpt; ++i) {
      const int r = ty * kRpt + i;
      float mt = -INFINITY;
#pragma unroll
      for (int j = 0; j < kCpt; ++j) {
        const int c = tx + 16 * j;
        const bool vis = r < rows && in_window(k0 + c, pos0 + r, p.window) &&
                         (docb == nullptr || docq[r] == dock[c]);
        s[i][j] = vis ? s[i][j] * p.scale : -INFINITY;
        mt = fmaxf(mt, s[i][j]);
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
      const float m_new = fmaxf(m[i], mt);
      const float base = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = expf(m[i] - base);
      float rs = 0.0f;
#pragma unroll
      for (int j = 0; j < kCpt; ++j) {
        const float pv = expf(s[i][j] - base);
        ps[r * kLdk + tx + 16 * j] = pv;
        rs += pv;
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) rs += __shfl_xor_sync(0xffffffffu, rs, o);
      l[i] = l[i] * alpha + rs;
      m[i] = m_new;
#pragma unroll
      for (int j = 0; j < kDpt; ++j) acc[i][j] *= alpha;
    }
    __syncthreads();

    for (int c = 0; c < keys; ++c) {
      float pv[kRpt];
      float vv[kDpt];
#pragma unroll
      for (int i = 0; i < kRpt; ++i) pv[i] = ps[(ty * kRpt + i) * kLdk + c];
#pragma unroll
      for (int j = 0; j < kDpt; ++j) vv[j] = vs[c * kDh + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < kRpt; ++i)
#pragma unroll
        for (int j = 0; j < kDpt; ++j) acc[i][j] = fmaf(pv[i], vv[j], acc[i][j]);
    }
    __syncthreads();  // before the next tile overwrites kt, vs, ps, dock
  }

#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    const int r = ty * kRpt + i;
    if (r >= rows) continue;
    const float inv_l = 1.0f / l[i];
    T* orow = p.out + q_base + r * q_row;
#pragma unroll
    for (int j = 0; j < kDpt; ++j) {
      const int d = tx + 16 * j;
      if (d < p.dh) orow[d] = from_float<T>(acc[i][j] * inv_l);
    }
    if (p.lse != nullptr && tx == 0)
      p.lse[(static_cast<std::int64_t>(b) * p.hq + h) * p.q_len + q0 + r] = m[i] + logf(l[i]);
  }
}

template <typename T, int kDh>
void launch_bucket(const ForwardParams<T>& p, cudaStream_t stream) {
  constexpr std::size_t smem = forward_smem_bytes<kDh>();
  static_assert(smem <= 227 * 1024, "attention forward tile exceeds shared memory");
  TAILOR_CUDA_CHECK(cudaFuncSetAttribute(
      forward_kernel<T, kDh>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((p.q_len + kBr - 1) / kBr), static_cast<unsigned>(p.hq),
                  static_cast<unsigned>(p.batch));
  forward_kernel<T, kDh><<<grid, kThreads, smem, stream>>>(p);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void launch_forward(const ForwardParams<T>& p, cudaStream_t stream) {
  if (p.dh <= 64) {
    launch_bucket<T, 64>(p, stream);
  } else if (p.dh <= 128) {
    launch_bucket<T, 128>(p, stream);
  } else {
    launch_bucket<T, 256>(p, stream);
  }
}

template void launch_forward<float>(const ForwardParams<float>&, cudaStream_t);
template void launch_forward<std::uint16_t>(const ForwardParams<std::uint16_t>&, cudaStream_t);

}  // namespace detail::attn

namespace {

void check_shape(const char* op, const AttentionShape& s) {
  TAILOR_ASSERT(s.batch >= 0 && s.seq >= 0 && s.batch <= 65535 && s.seq <= 0x7fffffff &&
                    s.heads > 0 && s.heads <= 65535 && s.kv_heads > 0 &&
                    s.heads % s.kv_heads == 0 && s.head_dim >= 1 && s.head_dim <= 256 &&
                    s.batch * s.seq <= 0x7fffffff && s.window >= 0 && s.window <= 0x7fffffff,
                "{}: bad shape B {} T {} Hq {} Hkv {} Dh {} window {}", op, s.batch, s.seq,
                s.heads, s.kv_heads, s.head_dim, s.window);
}

template <typename T>
void forward(const T* q, const T* k, const T* v, const std::int32_t* doc_ids, float scale, T* out,
             float* lse, AttentionShape s, cudaStream_t stream) {
  check_shape("attention_forward", s);
  if (s.batch == 0 || s.seq == 0) return;
  TAILOR_ASSERT(q != nullptr && k != nullptr && v != nullptr && out != nullptr && lse != nullptr,
                "attention_forward: null tensor");
  detail::attn::ForwardParams<T> p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.doc = doc_ids;
  p.out = out;
  p.lse = lse;
  p.scale = scale;
  p.window = static_cast<int>(s.window);
  p.batch = static_cast<int>(s.batch);
  p.q_len = static_cast<int>(s.seq);
  p.kv_cap = static_cast<int>(s.seq);
  p.hq = static_cast<int>(s.heads);
  p.hkv = static_cast<int>(s.kv_heads);
  p.dh = static_cast<int>(s.head_dim);
  detail::attn::launch_forward(p, stream);
}

}  // namespace

void attention_forward(const float* q, const float* k, const float* v, const std::int32_t* doc_ids,
                       float scale, float* out, float* lse, AttentionShape shape,
                       cudaStream_t stream) {
  forward(q, k, v, doc_ids, scale, out, lse, shape, stream);
}
void attention_forward(const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                       const std::int32_t* doc_ids, float scale, std::uint16_t* out, float* lse,
                       AttentionShape shape, cudaStream_t stream) {
  forward(q, k, v, doc_ids, scale, out, lse, shape, stream);
}

}  // namespace tailor::kernels
