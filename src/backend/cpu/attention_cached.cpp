// Attention of new queries over a KV cache (generation): prefill (Tq = prompt length) and decode
// (Tq = 1) alike.
//
// q, out: [B, Tq, Hq, Dh]; k, v: [B, S, Hkv, Dh] (the cache); start: i32 [B]. Query t of row b
// attends to the keys j <= start[b] + t of row b (and j > start[b] + t - window when window > 0);
// query head h reads kv head h / (Hq / Hkv).
//
// Work is split over (b, query head) pairs as in attention.cpp, each task owning its outputs. A
// task transposes the keys its queries can see once, then runs each query through the same
// score and softmax loops as the training forward (attention_kernels.h), in the same order.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "backend/attention_dims.h"
#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {
namespace {

struct CachedDims {
  std::int64_t batch = 0, tq = 0, cap = 0, hq = 0, hkv = 0, dh = 0, group = 1;
  std::int64_t q_row = 0;   // Hq * Dh
  std::int64_t kv_row = 0;  // Hkv * Dh
};

CachedDims check_cached(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& start, const Tensor& out) {
  cpu::check_cpu(op, q);
  const AttentionDims g = attention_dims(op, q, k, v, /*same_length=*/false);
  CachedDims d;
  d.batch = g.batch;
  d.tq = g.seq;
  d.hq = g.hq;
  d.dh = g.dh;
  d.cap = g.keys;
  d.hkv = g.hkv;
  cpu::check_dtype(op, k, q.dtype);
  cpu::check_dtype(op, v, q.dtype);
  cpu::check_like(op, q, out);
  cpu::check_dtype(op, start, DType::kI32);
  cpu::check_numel(op, start, d.batch);
  const std::int32_t* s = start.ptr<std::int32_t>();
  for (std::int64_t b = 0; b < d.batch; ++b)
    TAILOR_ASSERT(s[b] >= 0 && s[b] + d.tq <= d.cap,
                  "{}: row {} starts at {} with {} queries, cache holds {}", op, b, s[b], d.tq,
                  d.cap);
  d.group = d.hq / d.hkv;
  d.q_row = d.hq * d.dh;
  d.kv_row = d.hkv * d.dh;
  return d;
}

template <typename T>
void cached_impl(ThreadPool& pool, const CachedDims& d, const Tensor& q, const Tensor& k,
                 const Tensor& v, const Tensor& start, T scale, std::int64_t window,
                 const Tensor& out) {
  const T* pq = q.ptr<T>();
  const T* pk = k.ptr<T>();
  const T* pv = v.ptr<T>();
  const std::int32_t* ps = start.ptr<std::int32_t>();
  T* po = out.ptr<T>();
  pool.run(d.batch * d.hq, [&](std::int64_t task) {
    const std::int64_t b = task / d.hq;
    const std::int64_t h = task % d.hq;
    const std::int64_t g = h / d.group;
    const std::int64_t keys = ps[b] + d.tq;  // keys visible to the row's last query
    T* kt = cpu::task_scratch<T>(static_cast<std::size_t>((d.dh + 1) * keys + d.dh));
    T* s = kt + d.dh * keys;  // [keys] one row of scores, then probabilities
    T* acc = s + keys;        // [Dh]
    const T* kb = pk + b * d.cap * d.kv_row + g * d.dh;
    const T* vb = pv + b * d.cap * d.kv_row + g * d.dh;
    cpu::transpose_head(kb, d.kv_row, keys, d.dh, keys, kt);
    for (std::int64_t t = 0; t < d.tq; ++t) {
      const std::int64_t hi = ps[b] + t + 1;
      const std::int64_t lo = window > 0 ? std::max<std::int64_t>(0, hi - window) : 0;
      const std::int64_t qoff = (b * d.tq + t) * d.q_row + h * d.dh;
      cpu::attention_scores(pq + qoff, kt, keys, d.dh, lo, hi, scale, s);
      (void)cpu::attention_softmax_values(s, lo, hi, vb, d.kv_row, d.dh, acc, po + qoff);
    }
  });
}

}  // namespace

void CpuOps::attention_cached(const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& start, double scale, std::int64_t window,
                              const Tensor& out) {
  constexpr std::string_view kOp = "attention_cached";
  const CachedDims d = check_cached(kOp, q, k, v, start, out);
  TAILOR_ASSERT(window >= 0, "{}: window {} < 0", kOp, window);
  cpu::dispatch_float(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    cached_impl<T>(pool_, d, q, k, v, start, static_cast<T>(scale), window, out);
  });
}

}  // namespace tailor::backend
