// Causal self-attention with grouped-query heads and optional document masks.
//
// q, out, dq: [B, T, Hq, Dh]; k, v, dk, dv: [B, T, Hkv, Dh]; lse: [B, Hq, T]; doc_ids: i32 [B, T].
// Query head h reads kv head h / (Hq / Hkv). Token i attends to j <= i (with doc_ids[j] ==
// doc_ids[i] when doc_ids is present, and j > i - window when window > 0: a sliding window).
// Both masks bound the visible keys of a query to one range [lo, i] (the document's first token
// or i - window + 1, whichever is later), so a window only moves lo and costs nothing.
//
// Work is split over (b, query head) pairs; each task owns its outputs, so nothing depends on
// the thread count:
//  - forward: one query at a time, the whole score row (the CPU runs short sequences), softmax
//    max-subtracted, lse = m + log(l) saved;
//  - backward (flash-attention style, keys outer): for each block of kKeyBlock keys, recompute
//    P = exp(S * scale - lse) and dS = P (dP - D_i), D_i = dout_i . out_i, for every query that
//    sees the block; dQ accumulates over key blocks in block order; dK and dV of the block are
//    column sums over queries in query order. With grouped heads every query head writes its own
//    dK / dV partial, then the partials of a kv head are added in head order.
// Every product-sum runs through weighted_rows() (attention_kernels.h), so the forward and
// backward passes form each score with the same operations (the recomputed P is the forward's).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/attention_dims.h"
#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"

namespace tailor::backend {
namespace {

constexpr std::int64_t kKeyBlock = 64;  // keys per block of the backward pass

using cpu::task_scratch;
using cpu::transpose_head;
using cpu::weighted_rows;

struct AttnDims : AttentionDims {
  std::int64_t group = 1;
  std::int64_t q_row = 0;   // Hq * Dh: stride between tokens in q / out
  std::int64_t kv_row = 0;  // Hkv * Dh: stride between tokens in k / v
};

AttnDims check_attention(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& out, const Tensor& lse, const Tensor& doc_ids) {
  cpu::check_cpu(op, q);
  AttnDims d;
  static_cast<AttentionDims&>(d) = attention_dims(op, q, k, v, /*same_length=*/true);
  cpu::check_dtype(op, k, q.dtype);
  cpu::check_dtype(op, v, q.dtype);
  cpu::check_like(op, q, out);
  cpu::check_dtype(op, lse, q.dtype);
  cpu::check_numel(op, lse, d.batch * d.hq * d.seq);
  if (cpu::present(doc_ids)) {
    cpu::check_dtype(op, doc_ids, DType::kI32);
    cpu::check_numel(op, doc_ids, d.batch * d.seq);
  }
  d.group = d.hq / d.hkv;
  d.q_row = d.hq * d.dh;
  d.kv_row = d.hkv * d.dh;
  return d;
}

// Visible keys of every query: lo[b*T + i] = first j <= i with doc[j] == doc[i] (0 without
// documents), raised to i - window + 1 by a sliding window, and whether every key in [lo, i] is
// in that document (packed documents are contiguous, so masking inside the range is the rare
// case).
struct Windows {
  std::vector<std::int64_t> lo;
  std::vector<std::uint8_t> contiguous;
};

Windows doc_windows(const AttnDims& d, const Tensor& doc_ids, std::int64_t window) {
  const auto total = static_cast<std::size_t>(d.batch * d.seq);
  Windows w{std::vector<std::int64_t>(total, 0), std::vector<std::uint8_t>(total, 1)};
  // The first key a sliding window lets query i see.
  const auto slide = [window](std::int64_t i) -> std::int64_t {
    return window > 0 ? std::max<std::int64_t>(0, i - window + 1) : 0;
  };
  if (!cpu::present(doc_ids)) {
    for (std::int64_t b = 0; b < d.batch; ++b)
      for (std::int64_t i = 0; i < d.seq; ++i)
        w.lo[static_cast<std::size_t>(b * d.seq + i)] = slide(i);
    return w;
  }
  const std::int32_t* doc = doc_ids.ptr<std::int32_t>();
  std::unordered_map<std::int32_t, std::int64_t> first;
  for (std::int64_t b = 0; b < d.batch; ++b) {
    first.clear();
    std::int64_t run_start = 0;
    for (std::int64_t i = 0; i < d.seq; ++i) {
      const std::int64_t at = b * d.seq + i;
      if (i > 0 && doc[at] != doc[at - 1]) run_start = i;
      const std::int64_t lo = std::max(first.try_emplace(doc[at], i).first->second, slide(i));
      w.lo[static_cast<std::size_t>(at)] = lo;
      w.contiguous[static_cast<std::size_t>(at)] = lo >= run_start ? 1 : 0;
    }
  }
  return w;
}

template <typename T>
void forward_impl(ThreadPool& pool, const AttnDims& d, const Windows& win, const Tensor& q,
                  const Tensor& k, const Tensor& v, const Tensor& doc_ids, T scale,
                  const Tensor& out, const Tensor& lse) {
  const T* pq = q.ptr<T>();
  const T* pk = k.ptr<T>();
  const T* pv = v.ptr<T>();
  T* po = out.ptr<T>();
  T* pl = lse.ptr<T>();
  const std::int32_t* doc = cpu::present(doc_ids) ? doc_ids.ptr<std::int32_t>() : nullptr;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  pool.run(d.batch * d.hq, [&](std::int64_t task) {
    const std::int64_t b = task / d.hq;
    const std::int64_t h = task % d.hq;
    const std::int64_t g = h / d.group;
    T* kt = task_scratch<T>(static_cast<std::size_t>((d.dh + 1) * d.seq + d.dh));  // [Dh, T] K^T
    T* s = kt + d.dh * d.seq;  // [T] one row of scores, then probabilities
    T* acc = s + d.seq;        // [Dh] output accumulator
    const T* kb = pk + b * d.seq * d.kv_row + g * d.dh;
    const T* vb = pv + b * d.seq * d.kv_row + g * d.dh;
    transpose_head(kb, d.kv_row, d.seq, d.dh, d.seq, kt);
    const std::int32_t* doc_b = doc != nullptr ? doc + b * d.seq : nullptr;
    for (std::int64_t i = 0; i < d.seq; ++i) {
      const auto wi = static_cast<std::size_t>(b * d.seq + i);
      const std::int64_t lo = win.lo[wi];
      const std::int64_t hi = i + 1;
      const std::int64_t qoff = (b * d.seq + i) * d.q_row + h * d.dh;
      cpu::attention_scores(pq + qoff, kt, d.seq, d.dh, lo, hi, scale, s);
      if (doc_b != nullptr && !win.contiguous[wi]) {
        for (std::int64_t j = lo; j < hi; ++j)
          if (doc_b[j] != doc_b[i]) s[j] = kNegInf;
      }
      pl[(b * d.hq + h) * d.seq + i] =
          cpu::attention_softmax_values(s, lo, hi, vb, d.kv_row, d.dh, acc, po + qoff);
    }
  });
}

template <typename T>
void backward_impl(ThreadPool& pool, const AttnDims& d, const Windows& win, const Tensor& dout,
                   const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& lse, const Tensor& doc_ids, T scale, const Tensor& dq,
                   const Tensor& dk, const Tensor& dv) {
  const T* pdo = dout.ptr<T>();
  const T* pq = q.ptr<T>();
  const T* pk = k.ptr<T>();
  const T* pv = v.ptr<T>();
  const T* po = out.ptr<T>();
  const T* pl = lse.ptr<T>();
  T* pdq = dq.ptr<T>();
  T* pdk = dk.ptr<T>();
  T* pdv = dv.ptr<T>();
  const std::int32_t* doc = cpu::present(doc_ids) ? doc_ids.ptr<std::int32_t>() : nullptr;
  // With groups, each query head writes its dK / dV share here: [B, Hq, T, Dh] each.
  const bool partials = d.group > 1;
  const std::int64_t part_size = partials ? d.batch * d.hq * d.seq * d.dh : 0;
  // Uninitialized: every task overwrites its own rows before accumulating into them.
  const auto part = std::make_unique_for_overwrite<T[]>(static_cast<std::size_t>(2 * part_size));
  const std::int64_t nt = d.seq;
  pool.run(d.batch * d.hq, [&](std::int64_t task) {
    const std::int64_t b = task / d.hq;
    const std::int64_t h = task % d.hq;
    const std::int64_t g = h / d.group;
    T* kt = task_scratch<T>(static_cast<std::size_t>(3 * d.dh * nt + 2 * kKeyBlock * nt + 3 * nt));
    // kt: [Dh, T] K^T
    T* vt = kt + d.dh * nt;            // [Dh, T] V^T
    T* pt = vt + d.dh * nt;            // [kKeyBlock, T] P^T of the key block
    T* dst = pt + kKeyBlock * nt;      // [kKeyBlock, T] dS^T of the key block
    T* dq_acc = dst + kKeyBlock * nt;  // [T, Dh] dQ / scale
    T* s = dq_acc + d.dh * nt;         // [T] one row of S, then P
    T* dp = s + nt;                    // [T] one row of dP, then dS
    T* di = dp + nt;                   // [T] D_i = dout_i . out_i
    const T* kb = pk + b * nt * d.kv_row + g * d.dh;
    const T* vb = pv + b * nt * d.kv_row + g * d.dh;
    const T* qb = pq + b * nt * d.q_row + h * d.dh;
    const T* dob = pdo + b * nt * d.q_row + h * d.dh;
    const T* ob = po + b * nt * d.q_row + h * d.dh;
    const T* lseb = pl + (b * d.hq + h) * nt;
    transpose_head(kb, d.kv_row, d.seq, d.dh, d.seq, kt);
    transpose_head(vb, d.kv_row, d.seq, d.dh, d.seq, vt);
    for (std::int64_t i = 0; i < nt; ++i)
      di[i] = cpu::lane_dot<T>(dob + i * d.q_row, ob + i * d.q_row, d.dh);
    std::fill(dq_acc, dq_acc + d.dh * nt, T(0));
    T* dkb = nullptr;
    T* dvb = nullptr;
    std::int64_t kv_stride = 0;
    if (partials) {
      dkb = part.get() + (b * d.hq + h) * nt * d.dh;
      dvb = dkb + part_size;
      kv_stride = d.dh;
    } else {
      dkb = pdk + b * nt * d.kv_row + g * d.dh;
      dvb = pdv + b * nt * d.kv_row + g * d.dh;
      kv_stride = d.kv_row;
    }
    const std::int32_t* doc_b = doc != nullptr ? doc + b * nt : nullptr;
    for (std::int64_t j0 = 0; j0 < nt; j0 += kKeyBlock) {
      const std::int64_t j1 = std::min(nt, j0 + kKeyBlock);
      const std::int64_t nj = j1 - j0;
      // Column i of pt / dst is written for queries j0 <= i <= last; later queries do not see
      // the block (all-zero columns are filled in only when a later query does).
      std::int64_t last = j0 - 1;
      for (std::int64_t i = j0; i < nt; ++i) {
        const auto wi = static_cast<std::size_t>(b * nt + i);
        const std::int64_t lo = std::max(win.lo[wi], j0);
        const std::int64_t hi = std::min(i + 1, j1);
        if (lo >= hi) continue;
        for (std::int64_t z = last + 1; z < i; ++z)
          for (std::int64_t jj = 0; jj < nj; ++jj) pt[jj * nt + z] = dst[jj * nt + z] = T(0);
        last = i;
        weighted_rows<false>(qb + i * d.q_row, kt, nt, 0, d.dh, lo, hi, s);
        weighted_rows<false>(dob + i * d.q_row, vt, nt, 0, d.dh, lo, hi, dp);
        const T lse_i = lseb[i];
        const T d_i = di[i];
        for (std::int64_t j = lo; j < hi; ++j) {
          const T p = cpu::fast_exp(s[j] * scale - lse_i);
          s[j] = p;
          dp[j] = p * (dp[j] - d_i);
        }
        if (doc_b != nullptr && !win.contiguous[wi]) {
          for (std::int64_t j = lo; j < hi; ++j)
            if (doc_b[j] != doc_b[i]) s[j] = dp[j] = T(0);
        }
        weighted_rows<true>(dp, kb, d.kv_row, lo, hi, 0, d.dh, dq_acc + i * d.dh);
        for (std::int64_t j = j0; j < j1; ++j) {
          const bool in = j >= lo && j < hi;
          pt[(j - j0) * nt + i] = in ? s[j] : T(0);
          dst[(j - j0) * nt + i] = in ? dp[j] : T(0);
        }
      }
      // dV_j = sum_i P_ij dout_i, dK_j = scale sum_i dS_ij q_i over queries j <= i <= last.
      for (std::int64_t j = j0; j < j1; ++j) {
        T* dvj = dvb + j * kv_stride;
        T* dkj = dkb + j * kv_stride;
        const std::int64_t r1 = std::max(j, last + 1);
        weighted_rows<false>(pt + (j - j0) * nt, dob, d.q_row, j, r1, 0, d.dh, dvj);
        weighted_rows<false>(dst + (j - j0) * nt, qb, d.q_row, j, r1, 0, d.dh, dkj);
        for (std::int64_t c = 0; c < d.dh; ++c) dkj[c] *= scale;
      }
    }
    T* dqb = pdq + b * nt * d.q_row + h * d.dh;
    for (std::int64_t i = 0; i < nt; ++i)
      for (std::int64_t c = 0; c < d.dh; ++c) dqb[i * d.q_row + c] = dq_acc[i * d.dh + c] * scale;
  });
  if (!partials) return;
  // dk[b, t, g] = sum over the group's query heads, in head order, of their partials.
  pool.parallel_for(
      d.batch * nt, cpu::rows_per_block(d.kv_row), [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          const std::int64_t b = r / nt;
          const std::int64_t t = r % nt;
          for (std::int64_t g = 0; g < d.hkv; ++g) {
            T* dkr = pdk + r * d.kv_row + g * d.dh;
            T* dvr = pdv + r * d.kv_row + g * d.dh;
            const T* src0 = part.get() + ((b * d.hq + g * d.group) * nt + t) * d.dh;
            std::memcpy(dkr, src0, static_cast<std::size_t>(d.dh) * sizeof(T));
            std::memcpy(dvr, src0 + part_size, static_cast<std::size_t>(d.dh) * sizeof(T));
            for (std::int64_t m = 1; m < d.group; ++m) {
              const T* src = src0 + m * nt * d.dh;
              for (std::int64_t c = 0; c < d.dh; ++c) {
                dkr[c] += src[c];
                dvr[c] += src[c + part_size];
              }
            }
          }
        }
      });
}

}  // namespace

void CpuOps::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& doc_ids, double scale, std::int64_t window,
                               const Tensor& out, const Tensor& lse) {
  constexpr std::string_view kOp = "attention_forward";
  const AttnDims d = check_attention(kOp, q, k, v, out, lse, doc_ids);
  TAILOR_ASSERT(window >= 0, "{}: window {} < 0", kOp, window);
  const Windows win = doc_windows(d, doc_ids, window);
  cpu::dispatch_float(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    forward_impl<T>(pool_, d, win, q, k, v, doc_ids, static_cast<T>(scale), out, lse);
  });
}

void CpuOps::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                const Tensor& doc_ids, double scale, std::int64_t window,
                                const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  constexpr std::string_view kOp = "attention_backward";
  const AttnDims d = check_attention(kOp, q, k, v, out, lse, doc_ids);
  cpu::check_like(kOp, q, dout);
  cpu::check_like(kOp, q, dq);
  cpu::check_like(kOp, k, dk);
  cpu::check_like(kOp, v, dv);
  TAILOR_ASSERT(window >= 0, "{}: window {} < 0", kOp, window);
  const Windows win = doc_windows(d, doc_ids, window);
  cpu::dispatch_float(kOp, q, [&](auto tag) {
    using T = decltype(tag);
    backward_impl<T>(pool_, d, win, dout, q, k, v, out, lse, doc_ids, static_cast<T>(scale), dq, dk,
                     dv);
  });
}

}  // namespace tailor::backend
