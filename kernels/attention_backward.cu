// Attention backward (see attention.cuh for the contract; docs/kernels.md for the algorithm).
//
// Three kernels, no atomics, every sum in an order fixed by the shape:
//  1. rowdot: D_i = dout_i . out_i (f32, [B, Hq, T] in the workspace), one warp per (token, head).
//  2. dkdv: one block per (key tile, kv head g, batch row). K^T and V^T of the tile stay in
//     shared memory; the block walks the query tiles from the tile's diagonal to the last one a
//     sliding window lets see the tile's last key (to the end without a window) and, in
//     each, the query heads of g's group in order. Per (query tile, head) it recomputes
//       P = exp(s * scale - lse_i)  (0 where masked),  dP = dout_i . v_j,  dS = P (dP - D_i)
//     with the same thread layout as the forward, puts P and dS in shared memory, then each
//     thread adds sum_i P_ij dout_i into its dV rows and sum_i dS_ij q_i into its dK rows (keys
//     ty * kBc/16 + i, head-dim columns tx + 16 j), queries in order. dK = scale * sum at the end.
//  3. dq: one block per (query tile, query head, batch row), keeping q, dout, lse and D of the
//     tile; walks the key tiles from its first row's window (0 without) to its diagonal,
//     recomputes dS as above and adds
//     sum_j dS_ij k_j in key order; dQ = scale * sum.
// With documents both kernels first ask whether a tile pair holds any visible (query, key) pair
// (__syncthreads_or) and skip it otherwise, as the forward does.
#include "kernels/attention.cuh"
#include "kernels/attention_common.cuh"
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"

namespace tailor::kernels {
namespace {

using detail::from_float;
using detail::to_float;
using namespace detail::attn;  // NOLINT(google-build-using-namespace): the private tile helpers

template <typename T>
struct BackwardParams {
  const T* dout = nullptr;            // [B, T, Hq, Dh]
  const T* q = nullptr;               // [B, T, Hq, Dh]
  const T* k = nullptr;               // [B, T, Hkv, Dh]
  const T* v = nullptr;               // [B, T, Hkv, Dh]
  const float* lse = nullptr;         // [B, Hq, T]
  const float* dvec = nullptr;        // [B, Hq, T] D_i
  const std::int32_t* doc = nullptr;  // [B, T] or null
  T* dq = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  float scale = 1.0f;
  int window = 0;  // sliding window, 0: global
  int batch = 0, seq = 0, hq = 0, hkv = 0, dh = 0;
};

constexpr int kRowdotWarps = 8;
constexpr int kRowdotThreads = kRowdotWarps * detail::kWarp;

// dvec[(b * Hq + h) * T + t] = sum over d, lane-strided then a warp butterfly, of dout * out at
// token row (b * T + t) * Hq + h.
template <typename T>
__global__ void __launch_bounds__(kRowdotThreads)
    rowdot_kernel(const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ dvec,
                  std::int64_t rows, int seq, int hq, int dh) {
  const int lane = static_cast<int>(threadIdx.x) % detail::kWarp;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kRowdotWarps +
                           static_cast<int>(threadIdx.x) / detail::kWarp;
  if (row >= rows) return;  // whole warps leave together
  const T* a = dout + row * dh;
  const T* o = out + row * dh;
  float sum = 0.0f;
  for (int d = lane; d < dh; d += detail::kWarp) sum = fmaf(to_float(a[d]), to_float(o[d]), sum);
  sum = detail::warp_sum(sum);
  if (lane == 0) {
    const std::int64_t token = row / hq;  // b * T + t
    const std::int64_t h = row % hq;
    const std::int64_t b = token / seq;
    const std::int64_t t = token % seq;
    dvec[(b * hq + h) * seq + t] = sum;
  }
}

// Probabilities and score gradients of the thread's part of a [kBr x kBc] tile pair: rows
// r = ty * 4 + i of the query tile (q0, rows valid), keys k0 + tx + 16 j. qs, dos: [kBr][kLdq];
// kt, vt: [kDh][kLdk]; lse_s, d_s: [kBr]. Masked pairs give P = dS = 0.
template <int kDh>
__device__ __forceinline__ void tile_probs(float (&pr)[kRpt][Tile<kDh>::kCpt],
                                           float (&ds)[kRpt][Tile<kDh>::kCpt], const float* qs,
                                           const float* dos, const float* kt, const float* vt,
                                           const float* lse_s, const float* d_s,
                                           const std::int32_t* docq, const std::int32_t* dock,
                                           bool docs, int rows, int q0, int k0, int window,
                                           float scale, int dh, int ty, int tx) {
  using G = Tile<kDh>;
  tile_dot<G::kCpt, G::kLdq, G::kLdk>(pr, qs, kt, dh, ty, tx);
  tile_dot<G::kCpt, G::kLdq, G::kLdk>(ds, dos, vt, dh, ty, tx);
#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    const int r = ty * kRpt + i;
#pragma unroll
    for (int j = 0; j < G::kCpt; ++j) {
      const int c = tx + 16 * j;
      const bool vis =
          r < rows && in_window(k0 + c, q0 + r, window) && (!docs || docq[r] == dock[c]);
      const float pv = vis ? expf(pr[i][j] * scale - lse_s[r]) : 0.0f;
      ds[i][j] = vis ? pv * (ds[i][j] - d_s[r]) : 0.0f;
      pr[i][j] = pv;
    }
  }
}

template <int kDh>
constexpr std::size_t dkdv_smem_bytes() {
  using G = Tile<kDh>;
  return sizeof(float) * static_cast<std::size_t>(2 * kBr * G::kLdq + 2 * kDh * G::kLdk +
                                                  2 * kBr * G::kLdk + 2 * kBr) +
         sizeof(std::int32_t) * static_cast<std::size_t>(kBr + G::kBc);
}

template <int kDh>
constexpr std::size_t dq_smem_bytes() {
  using G = Tile<kDh>;
  return sizeof(float) * static_cast<std::size_t>(2 * kBr * G::kLdq + 2 * kDh * G::kLdk +
                                                  kBr * G::kLdk + 2 * kBr) +
         sizeof(std::int32_t) * static_cast<std::size_t>(kBr + G::kBc);
}

template <typename T, int kDh>
__global__ void __launch_bounds__(kThreads) dkdv_kernel(const BackwardParams<T> p) {
  using G = Tile<kDh>;
  constexpr int kBc = G::kBc;
  constexpr int kCpt = G::kCpt;  // keys per thread, in the score tile and in the accumulators
  constexpr int kDpt = G::kDpt;
  constexpr int kLdq = G::kLdq;
  constexpr int kLdk = G::kLdk;
  extern __shared__ float smem[];
  float* qs = smem;                                         // [kBr][kLdq]
  float* dos = qs + kBr * kLdq;                             // [kBr][kLdq]
  float* kt = dos + kBr * kLdq;                             // [kDh][kLdk]
  float* vt = kt + kDh * kLdk;                              // [kDh][kLdk]
  float* ps = vt + kDh * kLdk;                              // [kBr][kLdk]
  float* dss = ps + kBr * kLdk;                             // [kBr][kLdk]
  float* lse_s = dss + kBr * kLdk;                          // [kBr]
  float* d_s = lse_s + kBr;                                 // [kBr]
  auto* docq = reinterpret_cast<std::int32_t*>(d_s + kBr);  // [kBr]
  std::int32_t* dock = docq + kBr;                          // [kBc]

  const int tid = static_cast<int>(threadIdx.x);
  const int ty = tid / 16;
  const int tx = tid % 16;
  const int k0 = static_cast<int>(blockIdx.x) * kBc;
  const int g = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int group = p.hq / p.hkv;
  const int keys = min(kBc, p.seq - k0);
  const std::int64_t q_row = static_cast<std::int64_t>(p.hq) * p.dh;
  const std::int64_t kv_row = static_cast<std::int64_t>(p.hkv) * p.dh;
  const std::int64_t kv_base =
      (static_cast<std::int64_t>(b) * p.seq + k0) * kv_row + static_cast<std::int64_t>(g) * p.dh;
  const std::int32_t* docb =
      p.doc != nullptr ? p.doc + static_cast<std::int64_t>(b) * p.seq : nullptr;

  load_tile_transposed<kBc, kDh, kLdk>(kt, p.k + kv_base, kv_row, keys, p.dh);
  load_tile_transposed<kBc, kDh, kLdk>(vt, p.v + kv_base, kv_row, keys, p.dh);
  if (docb != nullptr)
    for (int c = tid; c < kBc; c += kThreads) dock[c] = c < keys ? docb[k0 + c] : 0;

  float adk[kCpt][kDpt];
  float adv[kCpt][kDpt];
#pragma unroll
  for (int i = 0; i < kCpt; ++i)
#pragma unroll
    for (int j = 0; j < kDpt; ++j) adk[i][j] = adv[i][j] = 0.0f;

  int n_qt = (p.seq + kBr - 1) / kBr;
  // With a window the tile's last key, k0 + keys - 1, is seen by queries up to
  // k0 + keys - 2 + window.
  if (p.window > 0)
    n_qt = static_cast<int>(min(static_cast<long long>(n_qt),
                                (static_cast<long long>(k0) + keys - 2 + p.window) / kBr + 1));
  for (int qt = k0 / kBr; qt < n_qt; ++qt) {
    const int q0 = qt * kBr;
    const int rows = min(kBr, p.seq - q0);
    if (docb != nullptr) {
      for (int r = tid; r < kBr; r += kThreads) docq[r] = r < rows ? docb[q0 + r] : 0;
      __syncthreads();
      if (!__syncthreads_or(any_visible<kCpt>(docq, dock, rows, q0, k0, p.window, ty, tx) ? 1 : 0))
        continue;
    }
    for (int hh = 0; hh < group; ++hh) {
      const int h = g * group + hh;
      const std::int64_t q_base =
          (static_cast<std::int64_t>(b) * p.seq + q0) * q_row + static_cast<std::int64_t>(h) * p.dh;
      const std::int64_t stat_base = (static_cast<std::int64_t>(b) * p.hq + h) * p.seq + q0;
      load_tile<kBr, kDh, kLdq>(qs, p.q + q_base, q_row, rows, p.dh);
      load_tile<kBr, kDh, kLdq>(dos, p.dout + q_base, q_row, rows, p.dh);
      for (int r = tid; r < kBr; r += kThreads) {
        lse_s[r] = r < rows ? p.lse[stat_base + r] : 0.0f;
        d_s[r] = r < rows ? p.dvec[stat_base + r] : 0.0f;
      }
      __syncthreads();

      float pr[kRpt][kCpt];
      float ds[kRpt][kCpt];
      tile_probs<kDh>(pr, ds, qs, dos, kt, vt, lse_s, d_s, docq, dock, docb != nullptr, rows, q0,
                      k0, p.window, p.scale, p.dh, ty, tx);
#pragma unroll
      for (int i = 0; i < kRpt; ++i)
#pragma unroll
        for (int j = 0; j < kCpt; ++j) {
          const int at = (ty * kRpt + i) * kLdk + tx + 16 * j;
          ps[at] = pr[i][j];
          dss[at] = ds[i][j];
        }
      __syncthreads();

      // This thread's keys ty * kCpt + i and head-dim columns tx + 16 j, queries in order.
      for (int r = 0; r < rows; ++r) {
        float pv[kCpt];
        float dsv[kCpt];
        float ov[kDpt];
        float qv[kDpt];
#pragma unroll
        for (int i = 0; i < kCpt; ++i) {
          pv[i] = ps[r * kLdk + ty * kCpt + i];
          dsv[i] = dss[r * kLdk + ty * kCpt + i];
        }
#pragma unroll
        for (int j = 0; j < kDpt; ++j) {
          ov[j] = dos[r * kLdq + tx + 16 * j];
          qv[j] = qs[r * kLdq + tx + 16 * j];
        }
#pragma unroll
        for (int i = 0; i < kCpt; ++i)
#pragma unroll
          for (int j = 0; j < kDpt; ++j) {
            adv[i][j] = fmaf(pv[i], ov[j], adv[i][j]);
            adk[i][j] = fmaf(dsv[i], qv[j], adk[i][j]);
          }
      }
      __syncthreads();  // before the next (tile, head) overwrites qs, dos, ps, dss, docq
    }
  }

#pragma unroll
  for (int i = 0; i < kCpt; ++i) {
    const int c = ty * kCpt + i;
    if (c >= keys) continue;
    T* dkr = p.dk + kv_base + c * kv_row;
    T* dvr = p.dv + kv_base + c * kv_row;
#pragma unroll
    for (int j = 0; j < kDpt; ++j) {
      const int d = tx + 16 * j;
      if (d < p.dh) {
        dkr[d] = from_float<T>(adk[i][j] * p.scale);
        dvr[d] = from_float<T>(adv[i][j]);
      }
    }
  }
}

template <typename T, int kDh>
__global__ void __launch_bounds__(kThreads) dq_kernel(const BackwardParams<T> p) {
  using G = Tile<kDh>;
  constexpr int kBc = G::kBc;
  constexpr int kCpt = G::kCpt;
  constexpr int kDpt = G::kDpt;
  constexpr int kLdq = G::kLdq;
  constexpr int kLdk = G::kLdk;
  extern __shared__ float smem[];
  float* qs = smem;                                         // [kBr][kLdq]
  float* dos = qs + kBr * kLdq;                             // [kBr][kLdq]
  float* kt = dos + kBr * kLdq;                             // [kDh][kLdk]
  float* vt = kt + kDh * kLdk;                              // [kDh][kLdk]
  float* dss = vt + kDh * kLdk;                             // [kBr][kLdk]
  float* lse_s = dss + kBr * kLdk;                          // [kBr]
  float* d_s = lse_s + kBr;                                 // [kBr]
  auto* docq = reinterpret_cast<std::int32_t*>(d_s + kBr);  // [kBr]
  std::int32_t* dock = docq + kBr;                          // [kBc]

  const int tid = static_cast<int>(threadIdx.x);
  const int ty = tid / 16;
  const int tx = tid % 16;
  const int qt = static_cast<int>(gridDim.x - 1 - blockIdx.x);
  const int h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int g = h / (p.hq / p.hkv);
  const int q0 = qt * kBr;
  const int rows = min(kBr, p.seq - q0);
  const std::int64_t q_row = static_cast<std::int64_t>(p.hq) * p.dh;
  const std::int64_t kv_row = static_cast<std::int64_t>(p.hkv) * p.dh;
  const std::int64_t q_base =
      (static_cast<std::int64_t>(b) * p.seq + q0) * q_row + static_cast<std::int64_t>(h) * p.dh;
  const std::int64_t kv_base =
      static_cast<std::int64_t>(b) * p.seq * kv_row + static_cast<std::int64_t>(g) * p.dh;
  const std::int64_t stat_base = (static_cast<std::int64_t>(b) * p.hq + h) * p.seq + q0;
  const std::int32_t* docb =
      p.doc != nullptr ? p.doc + static_cast<std::int64_t>(b) * p.seq : nullptr;

  load_tile<kBr, kDh, kLdq>(qs, p.q + q_base, q_row, rows, p.dh);
  load_tile<kBr, kDh, kLdq>(dos, p.dout + q_base, q_row, rows, p.dh);
  for (int r = tid; r < kBr; r += kThreads) {
    lse_s[r] = r < rows ? p.lse[stat_base + r] : 0.0f;
    d_s[r] = r < rows ? p.dvec[stat_base + r] : 0.0f;
    if (docb != nullptr) docq[r] = r < rows ? docb[q0 + r] : 0;
  }

  float acc[kRpt][kDpt];
#pragma unroll
  for (int i = 0; i < kRpt; ++i)
#pragma unroll
    for (int j = 0; j < kDpt; ++j) acc[i][j] = 0.0f;

  const int n_tiles = (q0 + rows - 1) / kBc + 1;
  for (int t = first_key_tile(q0, p.window, kBc); t < n_tiles; ++t) {
    const int k0 = t * kBc;
    const int keys = min(kBc, p.seq - k0);
    if (docb != nullptr) {
      for (int c = tid; c < kBc; c += kThreads) dock[c] = c < keys ? docb[k0 + c] : 0;
      __syncthreads();
      if (!__syncthreads_or(any_visible<kCpt>(docq, dock, rows, q0, k0, p.window, ty, tx) ? 1 : 0))
        continue;
    }
    load_tile_transposed<kBc, kDh, kLdk>(kt, p.k + kv_base + k0 * kv_row, kv_row, keys, p.dh);
    load_tile_transposed<kBc, kDh, kLdk>(vt, p.v + kv_base + k0 * kv_row, kv_row, keys, p.dh);
    __syncthreads();

    float pr[kRpt][kCpt];
    float ds[kRpt][kCpt];
    tile_probs<kDh>(pr, ds, qs, dos, kt, vt, lse_s, d_s, docq, dock, docb != nullptr, rows, q0, k0,
                    p.window, p.scale, p.dh, ty, tx);
#pragma unroll
    for (int i = 0; i < kRpt; ++i)
#pragma unroll
      for (int j = 0; j < kCpt; ++j) dss[(ty * kRpt + i) * kLdk + tx + 16 * j] = ds[i][j];
    __syncthreads();

    // This thread's rows ty * 4 + i and head-dim columns tx + 16 j, keys in order; k_j is read
    // from K^T (column c of row d: a pitch of kBc + 1 keeps the 16 lanes on distinct banks).
    for (int c = 0; c < keys; ++c) {
      float dsv[kRpt];
      float kv[kDpt];
#pragma unroll
      for (int i = 0; i < kRpt; ++i) dsv[i] = dss[(ty * kRpt + i) * kLdk + c];
#pragma unroll
      for (int j = 0; j < kDpt; ++j) kv[j] = kt[(tx + 16 * j) * kLdk + c];
#pragma unroll
      for (int i = 0; i < kRpt; ++i)
#pragma unroll
        for (int j = 0; j < kDpt; ++j) acc[i][j] = fmaf(dsv[i], kv[j], acc[i][j]);
    }
    __syncthreads();  // before the next tile overwrites kt, vt, dss, dock
  }

#pragma unroll
  for (int i = 0; i < kRpt; ++i) {
    const int r = ty * kRpt + i;
    if (r >= rows) continue;
    T* row = p.dq + q_base + r * q_row;
#pragma unroll
    for (int j = 0; j < kDpt; ++j) {
      const int d = tx + 16 * j;
      if (d < p.dh) row[d] = from_float<T>(acc[i][j] * p.scale);
    }
  }
}

template <typename T, int kDh>
void launch_bucket(const BackwardParams<T>& p, cudaStream_t stream) {
  constexpr std::size_t smem_kv = dkdv_smem_bytes<kDh>();
  constexpr std::size_t smem_q = dq_smem_bytes<kDh>();
  static_assert(smem_kv <= 227 * 1024 && smem_q <= 227 * 1024,
                "attention backward tiles exceed shared memory");
  constexpr int kBc = Tile<kDh>::kBc;
  TAILOR_CUDA_CHECK(cudaFuncSetAttribute(
      dkdv_kernel<T, kDh>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_kv)));
  TAILOR_CUDA_CHECK(cudaFuncSetAttribute(
      dq_kernel<T, kDh>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_q)));
  const dim3 grid_kv(static_cast<unsigned>((p.seq + kBc - 1) / kBc), static_cast<unsigned>(p.hkv),
                     static_cast<unsigned>(p.batch));
  dkdv_kernel<T, kDh><<<grid_kv, kThreads, smem_kv, stream>>>(p);
  TAILOR_CUDA_CHECK_LAUNCH();
  const dim3 grid_q(static_cast<unsigned>((p.seq + kBr - 1) / kBr), static_cast<unsigned>(p.hq),
                    static_cast<unsigned>(p.batch));
  dq_kernel<T, kDh><<<grid_q, kThreads, smem_q, stream>>>(p);
  TAILOR_CUDA_CHECK_LAUNCH();
}

void check_shape(const AttentionShape& s) {
  TAILOR_ASSERT(s.batch >= 0 && s.seq >= 0 && s.batch <= 65535 && s.seq <= 0x7fffffff &&
                    s.heads > 0 && s.heads <= 65535 && s.kv_heads > 0 &&
                    s.heads % s.kv_heads == 0 && s.head_dim >= 1 && s.head_dim <= 256 &&
                    s.batch * s.seq <= 0x7fffffff && s.window >= 0 && s.window <= 0x7fffffff,
                "attention_backward: bad shape B {} T {} Hq {} Hkv {} Dh {} window {}", s.batch,
                s.seq, s.heads, s.kv_heads, s.head_dim, s.window);
}

template <typename T>
void backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse,
              const std::int32_t* doc_ids, float scale, T* dq, T* dk, T* dv, void* workspace,
              AttentionShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.batch == 0 || s.seq == 0) return;
  TAILOR_ASSERT(dout != nullptr && q != nullptr && k != nullptr && v != nullptr && out != nullptr &&
                    lse != nullptr && dq != nullptr && dk != nullptr && dv != nullptr,
                "attention_backward: null tensor");
  TAILOR_ASSERT(workspace != nullptr, "attention_backward: needs a workspace");
  auto* dvec = static_cast<float*>(workspace);

  const std::int64_t rows = s.batch * s.seq * s.heads;
  const auto blocks = static_cast<unsigned>((rows + kRowdotWarps - 1) / kRowdotWarps);
  rowdot_kernel<T><<<blocks, kRowdotThreads, 0, stream>>>(
      dout, out, dvec, rows, static_cast<int>(s.seq), static_cast<int>(s.heads),
      static_cast<int>(s.head_dim));
  TAILOR_CUDA_CHECK_LAUNCH();

  BackwardParams<T> p;
  p.dout = dout;
  p.q = q;
  p.k = k;
  p.v = v;
  p.lse = lse;
  p.dvec = dvec;
  p.doc = doc_ids;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.scale = scale;
  p.window = static_cast<int>(s.window);
  p.batch = static_cast<int>(s.batch);
  p.seq = static_cast<int>(s.seq);
  p.hq = static_cast<int>(s.heads);
  p.hkv = static_cast<int>(s.kv_heads);
  p.dh = static_cast<int>(s.head_dim);
  if (p.dh <= 64) {
    launch_bucket<T, 64>(p, stream);
  } else if (p.dh <= 128) {
    launch_bucket<T, 128>(p, stream);
  } else {
    launch_bucket<T, 256>(p, stream);
  }
}

}  // namespace

std::size_t attention_backward_workspace_bytes(AttentionShape shape) {
  check_shape(shape);
  return detail::align_up(static_cast<std::size_t>(shape.batch * shape.heads * shape.seq) *
                          sizeof(float));
}

void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, const std::int32_t* doc_ids,
                        float scale, float* dq, float* dk, float* dv, void* workspace,
                        AttentionShape shape, cudaStream_t stream) {
  backward(dout, q, k, v, out, lse, doc_ids, scale, dq, dk, dv, workspace, shape, stream);
}
void attention_backward(const std::uint16_t* dout, const std::uint16_t* q, const std::uint16_t* k,
                        const std::uint16_t* v, const std::uint16_t* out, const float* lse,
                        const std::int32_t* doc_ids, float scale, std::uint16_t* dq,
                        std::uint16_t* dk, std::uint16_t* dv, void* workspace, AttentionShape shape,
                        cudaStream_t stream) {
  backward(dout, q, k, v, out, lse, doc_ids, scale, dq, dk, dv, workspace, shape, stream);
}

}  // namespace tailor::kernels
