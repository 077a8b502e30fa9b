// CudaOps: the neural-network ops (embedding, RMSNorm / LayerNorm, RoPE, attention, MLP
// activations, cross-entropy), each a checked dispatch to its launcher in kernels/.
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/attention_dims.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_ops_common.h"
#include "backend/cuda/cudnn_attention.h"
#include "core/logging.h"
#include "kernels/attention.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/embedding.cuh"
#include "kernels/gelu.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu.cuh"

namespace tailor::backend::cuda {
namespace {

using detail::as;

static_assert(kernels::kCeIgnoreIndex == kIgnoreIndex, "one ignore index for every backend");

using AttnDims = AttentionDims;

// The checks of CpuOps's attention: q [B, T, Hq, Dh], k and v [B, T, Hkv, Dh], Hq % Hkv == 0,
// out like q, lse f32 [B, Hq, T], doc_ids i32 [B, T] when present.
AttnDims check_attention(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& out, const Tensor& lse, const Tensor& doc_ids) {
  detail::check_storage(op, q);
  const AttnDims d = attention_dims(op, q, k, v, /*same_length=*/true);
  detail::check_dtype(op, k, q.dtype);
  detail::check_dtype(op, v, q.dtype);
  detail::check_like(op, q, out);
  detail::check_accum(op, lse, d.batch * d.hq * d.seq);
  if (detail::present(doc_ids)) {
    detail::check_dtype(op, doc_ids, DType::kI32);
    detail::check_numel(op, doc_ids, d.batch * d.seq);
  }
  return d;
}

#ifdef TAILOR_HAVE_CUDNN
SdpaShape sdpa_shape(const AttnDims& d) {
  SdpaShape s;
  s.batch = d.batch;
  s.seq = d.seq;
  s.heads = d.hq;
  s.kv_heads = d.hkv;
  s.head_dim = d.dh;
  return s;
}
#endif

kernels::AttentionShape attention_shape(const AttnDims& d) {
  kernels::AttentionShape s;
  s.batch = d.batch;
  s.seq = d.seq;
  s.heads = d.hq;
  s.kv_heads = d.hkv;
  s.head_dim = d.dh;
  return s;
}

// Rope's shape from x [N, H, Dh] (any layout of N * H * Dh elements with Dh last), positions [N]
// and inv_freq [Dh / 2], checked as CpuOps checks it.
kernels::RopeShape check_rope(std::string_view op, const Tensor& x, const Tensor& positions,
                              const Tensor& inv_freq) {
  detail::check_storage(op, x);
  detail::check_dtype(op, positions, DType::kI32);
  detail::check_dtype(op, inv_freq, DType::kF32);
  const std::int64_t n = positions.numel();
  const std::int64_t half = inv_freq.numel();
  const std::int64_t dh = 2 * half;
  TAILOR_ASSERT(half > 0 && x.cols() == dh && n > 0 && x.numel() % (n * dh) == 0,
                "{}: x {} does not match positions [{}] and inv_freq [{}]", op, x.shape.str(), n,
                half);
  kernels::RopeShape s;
  s.tokens = n;
  s.heads = x.numel() / (n * dh);
  s.head_dim = dh;
  return s;
}

// The checks shared by the cross-entropy phases (CpuOps's check_ce).
kernels::CrossEntropyShape check_ce(std::string_view op, const Tensor& logits,
                                    const Tensor& targets, std::int64_t vocab_begin,
                                    std::int64_t valid_cols, const Tensor& row_max) {
  detail::check_storage(op, logits);
  const std::int64_t n = detail::matrix_rows(logits);
  TAILOR_ASSERT(valid_cols >= 0 && valid_cols <= logits.cols(), "{}: valid_cols {} of {}", op,
                valid_cols, logits.cols());
  if (targets.data != nullptr) {
    detail::check_dtype(op, targets, DType::kI32);
    detail::check_numel(op, targets, n);
  }
  detail::check_accum(op, row_max, n);
  kernels::CrossEntropyShape s;
  s.rows = n;
  s.cols = logits.cols();
  s.valid_cols = valid_cols;
  s.vocab_begin = vocab_begin;
  return s;
}

}  // namespace

// ---- embedding --------------------------------------------------------------------------------

void CudaOps::embedding_forward(const Tensor& table, const Tensor& ids, std::int64_t vocab_begin,
                                const Tensor& out) {
  constexpr std::string_view kOp = "embedding_forward";
  detail::check_storage(kOp, table);
  detail::check_dtype(kOp, ids, DType::kI32);
  detail::check_dtype(kOp, out, table.dtype);
  const std::int64_t d = table.cols();
  const std::int64_t n = ids.numel();
  TAILOR_ASSERT(out.numel() == n * d && out.cols() == d, "{}: out {} for {} ids of a {} table", kOp,
                out.shape.str(), n, table.shape.str());
  if (context_->sync_mode())
    for (std::int32_t id : download_i32(ids)) TAILOR_ASSERT(id >= 0, "{}: negative id {}", kOp, id);
  kernels::EmbeddingShape s;
  s.tokens = n;
  s.rows = detail::matrix_rows(table);
  s.cols = d;
  s.vocab_begin = vocab_begin;
  detail::dispatch_storage(kOp, table, [&](auto tag) {
    using T = decltype(tag);
    kernels::embedding_forward(as<const T>(table), as<const std::int32_t>(ids), as<T>(out), s,
                               stream());
  });
  context_->check_launch();
}

void CudaOps::embedding_backward(const Tensor& dtable, const Tensor& ids, std::int64_t vocab_begin,
                                 const Tensor& dout) {
  constexpr std::string_view kOp = "embedding_backward";
  detail::check_dtype(kOp, dtable, DType::kF32);
  detail::check_dtype(kOp, ids, DType::kI32);
  detail::check_storage(kOp, dout);
  const std::int64_t d = dtable.cols();
  const std::int64_t n = ids.numel();
  TAILOR_ASSERT(dout.numel() == n * d && dout.cols() == d, "{}: dout {} for {} ids of a {} table",
                kOp, dout.shape.str(), n, dtable.shape.str());
  if (context_->sync_mode())
    for (std::int32_t id : download_i32(ids)) TAILOR_ASSERT(id >= 0, "{}: negative id {}", kOp, id);
  kernels::EmbeddingShape s;
  s.tokens = n;
  s.rows = detail::matrix_rows(dtable);
  s.cols = d;
  s.vocab_begin = vocab_begin;
  void* ws = context_->scratch(kernels::embedding_backward_workspace_bytes(s));
  detail::dispatch_storage(kOp, dout, [&](auto tag) {
    using T = decltype(tag);
    kernels::embedding_backward(as<const T>(dout), as<const std::int32_t>(ids), as<float>(dtable),
                                ws, s, stream());
  });
  context_->check_launch();
}

// ---- normalization ----------------------------------------------------------------------------

void CudaOps::rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                              const Tensor& rstd) {
  constexpr std::string_view kOp = "rmsnorm_forward";
  detail::check_storage(kOp, x);
  const std::int64_t d = x.cols();
  const std::int64_t n = d == 0 ? 0 : x.numel() / d;
  detail::check_dtype(kOp, w, x.dtype);
  detail::check_numel(kOp, w, d);
  detail::check_like(kOp, x, y);
  detail::check_accum(kOp, rstd, n);
  const kernels::RmsNormShape s{n, d};
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::rmsnorm_forward(as<const T>(x), as<const T>(w), as<T>(y), as<float>(rstd), s, eps,
                             stream());
  });
  context_->check_launch();
}

void CudaOps::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                               const Tensor& rstd, const Tensor& dx, const Tensor& dw) {
  constexpr std::string_view kOp = "rmsnorm_backward";
  detail::check_storage(kOp, x);
  const std::int64_t d = x.cols();
  const std::int64_t n = d == 0 ? 0 : x.numel() / d;
  detail::check_like(kOp, x, dy);
  detail::check_like(kOp, x, dx);
  detail::check_dtype(kOp, w, x.dtype);
  detail::check_numel(kOp, w, d);
  detail::check_accum(kOp, rstd, n);
  const bool want_dw = detail::present(dw);
  if (want_dw) detail::check_accum(kOp, dw, d);
  TAILOR_ASSERT(!detail::overlaps(dx, x) && !detail::overlaps(dx, w),
                "{}: dx {} overlaps x or w (it may alias dy only)", kOp, dx.str());
  const kernels::RmsNormShape s{n, d};
  void* ws = want_dw ? context_->scratch(kernels::rmsnorm_backward_workspace_bytes(s)) : nullptr;
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::rmsnorm_backward(as<const T>(dy), as<const T>(x), as<const T>(w),
                              as<const float>(rstd), as<T>(dx), as<float>(dw), ws, s, stream());
  });
  context_->check_launch();
}

void CudaOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                                const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  constexpr std::string_view kOp = "layernorm_forward";
  detail::check_storage(kOp, x);
  const std::int64_t d = x.cols();
  const std::int64_t n = d == 0 ? 0 : x.numel() / d;
  detail::check_dtype(kOp, w, x.dtype);
  detail::check_numel(kOp, w, d);
  if (detail::present(b)) {
    detail::check_dtype(kOp, b, x.dtype);
    detail::check_numel(kOp, b, d);
  }
  detail::check_like(kOp, x, y);
  detail::check_accum(kOp, mean, n);
  detail::check_accum(kOp, rstd, n);
  const kernels::LayerNormShape s{n, d};
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::layernorm_forward(as<const T>(x), as<const T>(w), as<const T>(b), as<T>(y),
                               as<float>(mean), as<float>(rstd), s, eps, stream());
  });
  context_->check_launch();
}

void CudaOps::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                 const Tensor& dw, const Tensor& db) {
  constexpr std::string_view kOp = "layernorm_backward";
  detail::check_storage(kOp, x);
  const std::int64_t d = x.cols();
  const std::int64_t n = d == 0 ? 0 : x.numel() / d;
  detail::check_like(kOp, x, dy);
  detail::check_like(kOp, x, dx);
  detail::check_dtype(kOp, w, x.dtype);
  detail::check_numel(kOp, w, d);
  detail::check_accum(kOp, mean, n);
  detail::check_accum(kOp, rstd, n);
  const bool want_dw = detail::present(dw);
  const bool want_db = detail::present(db);
  if (want_dw) detail::check_accum(kOp, dw, d);
  if (want_db) detail::check_accum(kOp, db, d);
  TAILOR_ASSERT(!detail::overlaps(dx, x) && !detail::overlaps(dx, w),
                "{}: dx {} overlaps x or w (it may alias dy only)", kOp, dx.str());
  const kernels::LayerNormShape s{n, d};
  void* ws = want_dw || want_db
                 ? context_->scratch(kernels::layernorm_backward_workspace_bytes(s))
                 : nullptr;
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::layernorm_backward(as<const T>(dy), as<const T>(x), as<const T>(w),
                                as<const float>(mean), as<const float>(rstd), as<T>(dx),
                                as<float>(dw), as<float>(db), ws, s, stream());
  });
  context_->check_launch();
}

// ---- rotary position embedding ----------------------------------------------------------------

void CudaOps::rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  constexpr std::string_view kOp = "rope_forward";
  const kernels::RopeShape s = check_rope(kOp, x, positions, inv_freq);
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::rope_forward(as<T>(x), as<const std::int32_t>(positions), as<const float>(inv_freq),
                          s, stream());
  });
  context_->check_launch();
}

void CudaOps::rope_backward(const Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
  constexpr std::string_view kOp = "rope_backward";
  const kernels::RopeShape s = check_rope(kOp, dx, positions, inv_freq);
  detail::dispatch_storage(kOp, dx, [&](auto tag) {
    using T = decltype(tag);
    kernels::rope_backward(as<T>(dx), as<const std::int32_t>(positions),
                           as<const float>(inv_freq), s, stream());
  });
  context_->check_launch();
}

// ---- attention --------------------------------------------------------------------------------

namespace {

// The window as the kernels take it (an int): one at least as long as the keys is global
// attention, so a config's huge window never overflows the kernels' position arithmetic.
std::int64_t kernel_window(std::int64_t window, std::int64_t keys) {
  TAILOR_ASSERT(window >= 0, "attention window {} < 0", window);
  return window >= keys ? 0 : window;
}

}  // namespace

void CudaOps::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& doc_ids, double scale, std::int64_t window,
                                const Tensor& out, const Tensor& lse) {
  constexpr std::string_view kOp = "attention_forward";
  const AttnDims d = check_attention(kOp, q, k, v, out, lse, doc_ids);
  // A sliding window runs on Tailor's kernels: cuDNN's windowed graph (CudnnAttention takes
  // one) is not taken by the ops until a GPU run has checked it.
  const std::int64_t w = kernel_window(window, d.seq);
  last_attention_cudnn_ =
      w == 0 && attention_fallback(d, doc_ids, {&q, &k, &v, &out, &lse}).empty();
#ifdef TAILOR_HAVE_CUDNN
  if (last_attention_cudnn_) {
    const SdpaShape c = sdpa_shape(d);
    void* ws = context_->scratch(sdpa().forward_workspace_bytes(c));
    sdpa().forward(c, q.data, k.data, v.data, static_cast<float>(scale), out.data, as<float>(lse),
                   ws);
    context_->check_launch();
    return;
  }
#endif
  kernels::AttentionShape s = attention_shape(d);
  s.window = w;
  detail::dispatch_storage(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    kernels::attention_forward(as<const T>(q), as<const T>(k), as<const T>(v),
                               as<const std::int32_t>(doc_ids), static_cast<float>(scale),
                               as<T>(out), as<float>(lse), s, stream());
  });
  context_->check_launch();
}

void CudaOps::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& out, const Tensor& lse,
                                 const Tensor& doc_ids, double scale, std::int64_t window,
                                 const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  constexpr std::string_view kOp = "attention_backward";
  const AttnDims d = check_attention(kOp, q, k, v, out, lse, doc_ids);
  detail::check_like(kOp, q, dout);
  detail::check_like(kOp, q, dq);
  detail::check_like(kOp, k, dk);
  detail::check_like(kOp, k, dv);
  for (const Tensor* g : {&dq, &dk, &dv})
    for (const Tensor* in : {&dout, &q, &k, &v, &out})
      TAILOR_ASSERT(!detail::overlaps(*g, *in), "{}: gradient {} overlaps input {}", kOp, g->str(),
                    in->str());
  const std::int64_t w = kernel_window(window, d.seq);  // windowed: Tailor's kernels
  last_attention_cudnn_ =
      w == 0 &&
      attention_fallback(d, doc_ids, {&dout, &q, &k, &v, &out, &lse, &dq, &dk, &dv}).empty();
#ifdef TAILOR_HAVE_CUDNN
  if (last_attention_cudnn_) {
    const SdpaShape c = sdpa_shape(d);
    void* cws = context_->scratch(sdpa().backward_workspace_bytes(c));
    sdpa().backward(c, dout.data, q.data, k.data, v.data, out.data, as<const float>(lse),
                    static_cast<float>(scale), dq.data, dk.data, dv.data, cws);
    context_->check_launch();
    return;
  }
#endif
  kernels::AttentionShape s = attention_shape(d);
  s.window = w;
  void* ws = context_->scratch(kernels::attention_backward_workspace_bytes(s));
  detail::dispatch_storage(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    kernels::attention_backward(as<const T>(dout), as<const T>(q), as<const T>(k), as<const T>(v),
                                as<const T>(out), as<const float>(lse),
                                as<const std::int32_t>(doc_ids), static_cast<float>(scale),
                                as<T>(dq), as<T>(dk), as<T>(dv), ws, s, stream());
  });
  context_->check_launch();
}

// ---- attention path: cuDNN's fused attention or Tailor's kernels ------------------------------

std::string CudaOps::cudnn_version() {
#ifdef TAILOR_HAVE_CUDNN
  return CudnnAttention::version();
#else
  return {};
#endif
}

#ifdef TAILOR_HAVE_CUDNN
CudnnAttention& CudaOps::sdpa() {
  TAILOR_ASSERT(sdpa_ != nullptr, "cuDNN attention used before it started");
  return *sdpa_;
}
#endif

std::string CudaOps::cudnn_attention_unsupported(const AttentionDims& d, DType dtype,
                                                 bool build_plans) {
  std::string reason = cudnn_reason(d, dtype, build_plans);
  if (!reason.empty()) reported_fallbacks_.insert(reason);
  return reason;
}

std::string CudaOps::cudnn_reason(const AttentionDims& d, DType dtype, bool build_plans) {
  std::string reason;
#ifdef TAILOR_HAVE_CUDNN
  if (dtype != DType::kBF16) {
    reason = "f32 storage (cuDNN's fused attention runs bf16)";
  } else {
    const SdpaShape c = sdpa_shape(d);
    reason = sdpa_shape_rule(c, context_->properties().major);
    // The handle is created on first need; a cuDNN that cannot start (a library of another
    // major version, a driver it refuses) is a reason to fall back, asked once.
    if (!build_plans) return reason;
    if (reason.empty() && !sdpa_ && sdpa_error_.empty()) {
      try {
        sdpa_ = std::make_unique<CudnnAttention>(stream());
      } catch (const Error& e) {
        sdpa_error_ = e.what();
      }
    }
    if (reason.empty())
      reason = sdpa_ ? sdpa_->unsupported(c) : "cuDNN did not start: " + sdpa_error_;
  }
#else
  (void)d;
  (void)dtype;
  (void)build_plans;
  reason = "this build has no cuDNN (configured with TAILOR_CUDNN=OFF or cuDNN not found)";
#endif
  return reason;
}

std::string CudaOps::attention_fallback(const AttentionDims& d, const Tensor& doc_ids,
                                        std::initializer_list<const Tensor*> tensors) {
  if (attention_path_ == AttentionPath::kTailor) return "runtime.attention: tailor";
  std::string reason;
  if (detail::present(doc_ids)) {
    reason = "micro-batches whose rows pack several documents (document masks)";
  } else {
    reason = cudnn_reason(d, (*tensors.begin())->dtype, /*build_plans=*/true);
    if (reason.empty()) {
      for (const Tensor* t : tensors)
        if (reinterpret_cast<std::uintptr_t>(t->data) % 16 != 0) {
          reason = "a tensor not 16-byte aligned";
          break;
        }
    }
  }
  if (!reason.empty() && reported_fallbacks_.insert(reason).second)
    log::info("attention: tailor kernels for {}", reason);
  return reason;
}

void CudaOps::attention_cached(const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& start, double scale, std::int64_t window,
                               const Tensor& out) {
  constexpr std::string_view kOp = "attention_cached";
  detail::check_storage(kOp, q);
  const AttentionDims g = attention_dims(kOp, q, k, v, /*same_length=*/false);
  kernels::AttentionCachedShape s;
  s.batch = g.batch;
  s.queries = g.seq;
  s.heads = g.hq;
  s.head_dim = g.dh;
  s.capacity = g.keys;
  s.kv_heads = g.hkv;
  s.window = kernel_window(window, s.capacity);
  detail::check_dtype(kOp, k, q.dtype);
  detail::check_dtype(kOp, v, q.dtype);
  detail::check_like(kOp, q, out);
  detail::check_dtype(kOp, start, DType::kI32);
  detail::check_numel(kOp, start, s.batch);
  if (context_->sync_mode()) {
    const std::vector<std::int32_t> st = download_i32(start);
    for (std::int64_t b = 0; b < s.batch; ++b) {
      const std::int32_t at = st[static_cast<std::size_t>(b)];
      TAILOR_ASSERT(at >= 0 && at + s.queries <= s.capacity,
                    "{}: row {} starts at {} with {} queries, cache holds {}", kOp, b, at,
                    s.queries, s.capacity);
    }
  }
  detail::dispatch_storage(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    kernels::attention_cached(as<const T>(q), as<const T>(k), as<const T>(v),
                              as<const std::int32_t>(start), static_cast<float>(scale), as<T>(out),
                              s, stream());
  });
  context_->check_launch();
}

// ---- MLP activations --------------------------------------------------------------------------

namespace {

// The gated activations' kernels by name, for one checked launch path (gated_forward/backward).
struct SwigluKernels {
  template <typename T>
  static void forward(const T* g, const T* u, T* o, kernels::SwigluShape s, cudaStream_t st) {
    kernels::swiglu_forward(g, u, o, s, st);
  }
  template <typename T>
  static void backward(const T* dy, const T* g, const T* u, T* dg, T* du, kernels::SwigluShape s,
                       cudaStream_t st) {
    kernels::swiglu_backward(dy, g, u, dg, du, s, st);
  }
};
struct GegluKernels {
  template <typename T>
  static void forward(const T* g, const T* u, T* o, kernels::SwigluShape s, cudaStream_t st) {
    kernels::geglu_forward(g, u, o, s, st);
  }
  template <typename T>
  static void backward(const T* dy, const T* g, const T* u, T* dg, T* du, kernels::SwigluShape s,
                       cudaStream_t st) {
    kernels::geglu_backward(dy, g, u, dg, du, s, st);
  }
};

template <class K>
void gated_forward(std::string_view op, const Tensor& gate, const Tensor& up, const Tensor& out,
                   cudaStream_t stream) {
  detail::check_storage(op, gate);
  detail::check_like(op, gate, up);
  detail::check_like(op, gate, out);
  const kernels::SwigluShape s{gate.numel()};
  detail::dispatch_storage(op, gate, [&](auto tag) {
    using T = decltype(tag);
    K::forward(as<const T>(gate), as<const T>(up), as<T>(out), s, stream);
  });
}

template <class K>
void gated_backward(std::string_view op, const Tensor& dout, const Tensor& gate, const Tensor& up,
                    const Tensor& dgate, const Tensor& dup, cudaStream_t stream) {
  detail::check_storage(op, gate);
  for (const Tensor* t : {&dout, &up, &dgate, &dup}) detail::check_like(op, gate, *t);
  const kernels::SwigluShape s{gate.numel()};
  detail::dispatch_storage(op, gate, [&](auto tag) {
    using T = decltype(tag);
    K::backward(as<const T>(dout), as<const T>(gate), as<const T>(up), as<T>(dgate), as<T>(dup),
                s, stream);
  });
}

}  // namespace

void CudaOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  gated_forward<SwigluKernels>("swiglu_forward", gate, up, out, stream());
  context_->check_launch();
}

void CudaOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                              const Tensor& dgate, const Tensor& dup) {
  gated_backward<SwigluKernels>("swiglu_backward", dout, gate, up, dgate, dup, stream());
  context_->check_launch();
}

void CudaOps::geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  gated_forward<GegluKernels>("geglu_forward", gate, up, out, stream());
  context_->check_launch();
}

void CudaOps::geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                             const Tensor& dgate, const Tensor& dup) {
  gated_backward<GegluKernels>("geglu_backward", dout, gate, up, dgate, dup, stream());
  context_->check_launch();
}

void CudaOps::gelu_forward(const Tensor& x, const Tensor& out) {
  constexpr std::string_view kOp = "gelu_forward";
  detail::check_storage(kOp, x);
  detail::check_like(kOp, x, out);
  const kernels::GeluShape s{x.numel()};
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::gelu_forward(as<const T>(x), as<T>(out), s, stream());
  });
  context_->check_launch();
}

void CudaOps::gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) {
  constexpr std::string_view kOp = "gelu_backward";
  detail::check_storage(kOp, x);
  detail::check_like(kOp, x, dout);
  detail::check_like(kOp, x, dx);
  const kernels::GeluShape s{x.numel()};
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::gelu_backward(as<const T>(dout), as<const T>(x), as<T>(dx), s, stream());
  });
  context_->check_launch();
}

// ---- softmax cross-entropy --------------------------------------------------------------------

void CudaOps::cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t valid_vocab,
                            const Tensor& losses, const Tensor& dlogits, double dscale) {
  constexpr std::string_view kOp = "cross_entropy";
  detail::check_storage(kOp, logits);
  const std::int64_t n = detail::matrix_rows(logits);
  const std::int64_t vocab = logits.cols();
  TAILOR_ASSERT(valid_vocab > 0 && valid_vocab <= vocab, "{}: valid_vocab {} of {} columns", kOp,
                valid_vocab, vocab);
  detail::check_dtype(kOp, targets, DType::kI32);
  detail::check_numel(kOp, targets, n);
  detail::check_accum(kOp, losses, n);
  const bool want_grad = detail::present(dlogits);
  if (want_grad) detail::check_like(kOp, logits, dlogits);
  if (context_->sync_mode()) {
    const std::vector<std::int32_t> t = download_i32(targets);
    for (std::int64_t r = 0; r < n; ++r) {
      const std::int32_t tr = t[static_cast<std::size_t>(r)];
      TAILOR_ASSERT(tr == kIgnoreIndex || (tr >= 0 && tr < valid_vocab),
                    "{}: target {} of row {} is outside [0, {})", kOp, tr, r, valid_vocab);
    }
  }
  kernels::CrossEntropyShape s;
  s.rows = n;
  s.cols = vocab;
  s.valid_cols = valid_vocab;
  s.vocab_begin = 0;
  // One shard, no all-reduce between the phases: the three phases are the plain cross-entropy.
  detail::Carver size(nullptr);
  (void)size.take<float>(static_cast<std::size_t>(n) * sizeof(float));
  (void)size.take<float>(static_cast<std::size_t>(2 * n) * sizeof(float));
  detail::Carver carve(context_->scratch(size.total()));
  auto* row_max = carve.take<float>(static_cast<std::size_t>(n) * sizeof(float));
  auto* stats = carve.take<float>(static_cast<std::size_t>(2 * n) * sizeof(float));
  const auto* tgt = as<const std::int32_t>(targets);
  detail::dispatch_storage(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    const T* x = as<const T>(logits);
    kernels::ce_local_max(x, row_max, s, stream());
    kernels::ce_local_sums(x, tgt, row_max, stats, s, stream());
    kernels::ce_finish(x, tgt, row_max, stats, as<float>(losses), as<T>(dlogits), dscale, s,
                       stream());
  });
  context_->check_launch();
}

void CudaOps::ce_local_max(const Tensor& logits, std::int64_t valid_cols, const Tensor& row_max) {
  constexpr std::string_view kOp = "ce_local_max";
  const kernels::CrossEntropyShape s = check_ce(kOp, logits, Tensor{}, 0, valid_cols, row_max);
  detail::dispatch_storage(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    kernels::ce_local_max(as<const T>(logits), as<float>(row_max), s, stream());
  });
  context_->check_launch();
}

void CudaOps::ce_local_sums(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                            std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats) {
  constexpr std::string_view kOp = "ce_local_sums";
  TAILOR_ASSERT(detail::present(targets), "{}: targets are required", kOp);
  const kernels::CrossEntropyShape s =
      check_ce(kOp, logits, targets, vocab_begin, valid_cols, row_max);
  detail::check_accum(kOp, stats, 2 * s.rows);
  detail::dispatch_storage(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    kernels::ce_local_sums(as<const T>(logits), as<const std::int32_t>(targets),
                           as<const float>(row_max), as<float>(stats), s, stream());
  });
  context_->check_launch();
}

void CudaOps::ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                        std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats,
                        const Tensor& losses, const Tensor& dlogits, double dscale) {
  constexpr std::string_view kOp = "ce_finish";
  TAILOR_ASSERT(detail::present(targets), "{}: targets are required", kOp);
  const kernels::CrossEntropyShape s =
      check_ce(kOp, logits, targets, vocab_begin, valid_cols, row_max);
  detail::check_accum(kOp, stats, 2 * s.rows);
  detail::check_accum(kOp, losses, s.rows);
  if (detail::present(dlogits)) detail::check_like(kOp, logits, dlogits);
  detail::dispatch_storage(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    kernels::ce_finish(as<const T>(logits), as<const std::int32_t>(targets),
                       as<const float>(row_max), as<const float>(stats), as<float>(losses),
                       as<T>(dlogits), dscale, s, stream());
  });
  context_->check_launch();
}

}  // namespace tailor::backend::cuda
