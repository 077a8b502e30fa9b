// cuDNN's fused flash attention (scaled dot-product attention, "SDPA") through cuDNN's backend
// graph API, as the tensor-core fast path of CudaOps::attention_forward / attention_backward.
// Compiled only when CMake found cuDNN 9 (TAILOR_HAVE_CUDNN); docs/gpu.md says when it runs.
//
// The operation graphs are the ones cuDNN's fused attention engine recognises (the lowering that
// cudnn-frontend's composite SDPA nodes use, written here against the backend API directly,
// since the GPU node has no frontend):
//   forward:  S = (Q K^T) * scale; causal mask (gen-index row >= col, binary select -inf);
//             optional left window (col + W > row); softmax with stats: M = max S,
//             E = exp(S - M), Z = sum E, Stats = M + log Z, P = E / Z; O = P V.
//   backward: softmax_sum = sum(dO * O); P = exp(mask(Q K^T * scale) - Stats); dV = P^T dO;
//             dS = P * (dO V^T - softmax_sum) * scale; dK = dS^T Q; dQ = dS K. Grouped-query heads:
//             dK and dV are formed per query head and summed over the group by a reduction.
//   The backward is the dP-workspace variant (no f32 dQ accumulator updated by atomics), and only
//   engines without cuDNN's NONDETERMINISTIC numerical note are accepted: run-to-run bitwise.
// Stats is the natural-log log-sum-exp of the scaled, masked scores, f32 [B, Hq, T]: the layout
// and meaning of the lse that Tailor's kernels save, so either backward can follow either forward.
//
// Tensors keep Tailor's layout (q, out: [B, T, Hq, Dh]; k, v: [B, T, Hkv, Dh], bf16), described to
// cuDNN as [B, H, T, Dh] with strides. Plans are built once per shape (batch, seq, heads, kv heads,
// head dim, window) and direction, and cached with their workspace size; a shape cuDNN refuses is
// cached as refused, with cuDNN's reason. Not thread-safe (one host thread drives a context).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include <cuda_runtime.h>

namespace tailor::backend::cuda {

struct SdpaShape {
  std::int64_t batch = 0;     // B
  std::int64_t seq = 0;       // T
  std::int64_t heads = 0;     // Hq
  std::int64_t kv_heads = 0;  // Hkv, Hq % Hkv == 0
  std::int64_t head_dim = 0;  // Dh
  // 0: causal only; W > 0: query i also sees only keys j > i - W (W keys including itself).
  std::int64_t window = 0;

  [[nodiscard]] auto tie() const { return std::tie(batch, seq, heads, kv_heads, head_dim, window); }
  bool operator<(const SdpaShape& o) const { return tie() < o.tie(); }
};

class CudnnAttention {
 public:
  // Creates the cuDNN handle on `stream`. RuntimeError when cuDNN cannot start (no library of a
  // matching major version, no device).
  explicit CudnnAttention(cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;
  CudnnAttention(CudnnAttention&&) = delete;
  CudnnAttention& operator=(CudnnAttention&&) = delete;

  // "cuDNN 9.19.0" (the library loaded at run time).
  [[nodiscard]] static std::string version();

  // Empty when cuDNN runs this shape forward and backward; otherwise why not (a shape rule of
  // ours, or cuDNN's own message when no engine accepts the graph). Builds and caches both plans.
  [[nodiscard]] std::string unsupported(const SdpaShape& s);

  // Device workspace each direction needs (a cached plan's; builds it if needed). 0 if refused.
  [[nodiscard]] std::size_t forward_workspace_bytes(const SdpaShape& s);
  [[nodiscard]] std::size_t backward_workspace_bytes(const SdpaShape& s);

  // bf16 storage (raw bits); `unsupported(s)` must be empty. All pointers 16-byte aligned;
  // workspace of forward/backward_workspace_bytes(s). Queued on the stream; out, lse written.
  void forward(const SdpaShape& s, const void* q, const void* k, const void* v, float scale,
               void* out, float* lse, void* workspace);
  // dq, dk, dv written (=). lse: the forward's (cuDNN's or Tailor's: the same quantity).
  void backward(const SdpaShape& s, const void* dout, const void* q, const void* k, const void* v,
                const void* out, const float* lse, float scale, void* dq, void* dk, void* dv,
                void* workspace);

  struct Plan;  // a finalized execution plan and the descriptors it uses (cudnn_attention.cpp)

 private:
  struct Entry {
    std::unique_ptr<Plan> forward, backward;
    std::string refused;  // empty: both plans built
  };
  Entry& entry(const SdpaShape& s);

  struct HandleDeleter {
    void operator()(void* h) const noexcept;
  };
  std::unique_ptr<void, HandleDeleter> handle_;
  cudaStream_t stream_ = nullptr;
  std::map<SdpaShape, Entry> cache_;
};

// Why cuDNN's fused attention cannot take this case before asking cuDNN (a rule of ours): empty
// when it may. bf16 only; head_dim a multiple of 8 up to 256 (16-byte rows); a GPU of compute
// capability 8.0 or newer (the fused engine's tensor-core kernels).
[[nodiscard]] std::string sdpa_shape_rule(const SdpaShape& s, int compute_capability_major);

}  // namespace tailor::backend::cuda
