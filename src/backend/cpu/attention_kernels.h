// Inner loops shared by the CPU attention ops (attention.cpp: training, causal over one sequence;
// attention_cached.cpp: generation, new queries over a KV cache). Private to src/backend/cpu.
//
// Both ops form a query's scores and its softmax-weighted sum of values with these same
// functions, so a query goes through the same loops whichever op runs it.
//
// Every product-sum runs through weighted_rows(): register blocks of outputs, the sum over inputs
// in input order, so it vectorizes without reassociation and never depends on the thread count.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/fast_math.h"

namespace tailor::backend::cpu {

// Outputs per register block of weighted_rows: 128 bytes of accumulators.
template <typename T>
inline constexpr std::int64_t kOutBlock = 128 / static_cast<std::int64_t>(sizeof(T));

// out[o] (=, or += with Accumulate), o in [o0, o1): sum over r in [r0, r1), in order, of
// x[r] * m[r * stride + o]. x is indexed by r, out by o.
template <bool Accumulate, typename T>
inline void weighted_rows(const T* x, const T* m, std::int64_t stride, std::int64_t r0,
                          std::int64_t r1, std::int64_t o0, std::int64_t o1, T* out) {
  constexpr std::int64_t kB = kOutBlock<T>;
  std::int64_t o = o0;
  for (; o + kB <= o1; o += kB) {
    T acc[kB] = {};
    for (std::int64_t r = r0; r < r1; ++r) {
      const T xr = x[r];
      const T* row = m + r * stride + o;
      for (std::int64_t k = 0; k < kB; ++k) acc[k] += xr * row[k];
    }
    for (std::int64_t k = 0; k < kB; ++k) {
      if constexpr (Accumulate) {
        out[o + k] += acc[k];
      } else {
        out[o + k] = acc[k];
      }
    }
  }
  if (o == o1) return;
  const std::int64_t w = o1 - o;
  T acc[kB] = {};
  for (std::int64_t r = r0; r < r1; ++r) {
    const T xr = x[r];
    const T* row = m + r * stride + o;
    for (std::int64_t k = 0; k < w; ++k) acc[k] += xr * row[k];
  }
  for (std::int64_t k = 0; k < w; ++k) {
    if constexpr (Accumulate) {
      out[o + k] += acc[k];
    } else {
      out[o + k] = acc[k];
    }
  }
}

// Per-thread scratch of a task, reused across tasks and calls (no allocation, no page faults in
// the hot loop). Contents are undefined on entry: the tasks write before they read.
template <typename T>
T* task_scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// dst[c * ld + t] = src[t * stride + c] for t < rows, c < dh: one head of K or V (token rows
// `stride` apart) transposed to [Dh, ld].
template <typename T>
void transpose_head(const T* src, std::int64_t stride, std::int64_t rows, std::int64_t dh,
                    std::int64_t ld, T* dst) {
  for (std::int64_t t = 0; t < rows; ++t) {
    const T* row = src + t * stride;
    for (std::int64_t c = 0; c < dh; ++c) dst[c * ld + t] = row[c];
  }
}

// s[j] = scale * (q . k_j) for keys j in [lo, hi), from K^T of the head (kt: [Dh, ld]).
template <typename T>
inline void attention_scores(const T* q, const T* kt, std::int64_t ld, std::int64_t dh,
                             std::int64_t lo, std::int64_t hi, T scale, T* s) {
  weighted_rows<false>(q, kt, ld, 0, dh, lo, hi, s);
  for (std::int64_t j = lo; j < hi; ++j) s[j] *= scale;
}

// out[Dh] = softmax(s[lo, hi)) . v[lo, hi) with value rows `v_stride` apart; s is overwritten by
// exp(s - max). Returns the log-sum-exp of s. acc: [Dh] scratch. Masked keys hold -inf in s.
template <typename T>
inline T attention_softmax_values(T* s, std::int64_t lo, std::int64_t hi, const T* v,
                                  std::int64_t v_stride, std::int64_t dh, T* acc, T* out) {
  const T mx = lane_max(s + lo, hi - lo);
  for (std::int64_t j = lo; j < hi; ++j) s[j] = fast_exp(s[j] - mx);
  const T l = lane_sum<T>(s + lo, hi - lo);
  weighted_rows<false>(s, v, v_stride, lo, hi, 0, dh, acc);
  const T inv_l = T(1) / l;
  for (std::int64_t c = 0; c < dh; ++c) out[c] = acc[c] * inv_l;
  return mx + std::log(l);
}

}  // namespace tailor::backend::cpu
