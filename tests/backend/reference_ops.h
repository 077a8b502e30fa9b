// Naive reference implementations of the ops, in double, written as plainly as possible (full
// loops, full score matrices, no blocking) so that they are easy to check by eye. The CPU
// backend's forward passes are tested against these; its backward passes against finite
// differences of its own (reference-checked) forward passes.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace tailor::backend::test::ref {

using Vec = std::vector<double>;
using I64 = std::int64_t;

inline double at(const Vec& v, I64 i) { return v[static_cast<std::size_t>(i)]; }
inline double& at(Vec& v, I64 i) { return v[static_cast<std::size_t>(i)]; }

// c[M, N] = alpha * op(a) op(b) + beta * c.
inline void gemm(const Vec& a, bool ta, const Vec& b, bool tb, Vec& c, I64 m, I64 n, I64 k,
                 double alpha, double beta) {
  for (I64 i = 0; i < m; ++i)
    for (I64 j = 0; j < n; ++j) {
      double s = 0;
      for (I64 p = 0; p < k; ++p) {
        const double av = ta ? at(a, p * m + i) : at(a, i * k + p);
        const double bv = tb ? at(b, j * k + p) : at(b, p * n + j);
        s += av * bv;
      }
      at(c, i * n + j) = alpha * s + beta * at(c, i * n + j);
    }
}

inline void rmsnorm(const Vec& x, const Vec& w, I64 n, I64 d, double eps, Vec& y, Vec& rstd) {
  for (I64 r = 0; r < n; ++r) {
    double ss = 0;
    for (I64 j = 0; j < d; ++j) ss += at(x, r * d + j) * at(x, r * d + j);
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    at(rstd, r) = rs;
    for (I64 j = 0; j < d; ++j) at(y, r * d + j) = at(x, r * d + j) * rs * at(w, j);
  }
}

inline void layernorm(const Vec& x, const Vec& w, const Vec* b, I64 n, I64 d, double eps, Vec& y,
                      Vec& mean, Vec& rstd) {
  for (I64 r = 0; r < n; ++r) {
    double s = 0;
    for (I64 j = 0; j < d; ++j) s += at(x, r * d + j);
    const double mu = s / static_cast<double>(d);
    double var = 0;
    for (I64 j = 0; j < d; ++j) var += (at(x, r * d + j) - mu) * (at(x, r * d + j) - mu);
    var /= static_cast<double>(d);
    const double rs = 1.0 / std::sqrt(var + eps);
    at(mean, r) = mu;
    at(rstd, r) = rs;
    for (I64 j = 0; j < d; ++j)
      at(y, r * d + j) = (at(x, r * d + j) - mu) * rs * at(w, j) + (b ? at(*b, j) : 0.0);
  }
}

// x[N, H, Dh] rotated by angle float(pos) * inv_freq (formed in float, as the op specifies).
inline void rope(Vec& x, const std::vector<std::int32_t>& pos, const std::vector<float>& inv_freq,
                 I64 n, I64 h, I64 dh, double sign) {
  const I64 half = dh / 2;
  for (I64 r = 0; r < n; ++r)
    for (I64 hh = 0; hh < h; ++hh)
      for (I64 i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[static_cast<std::size_t>(r)]) *
                            inv_freq[static_cast<std::size_t>(i)];
        const double c = std::cos(static_cast<double>(angle));
        const double s = sign * std::sin(static_cast<double>(angle));
        const I64 base = (r * h + hh) * dh;
        const double x1 = at(x, base + i);
        const double x2 = at(x, base + i + half);
        at(x, base + i) = x1 * c - x2 * s;
        at(x, base + i + half) = x2 * c + x1 * s;
      }
}

// Causal GQA attention with an optional document mask (empty doc = none) and an optional
// sliding window (window > 0: key j is visible from query i only when i - j < window).
inline void attention(const Vec& q, const Vec& k, const Vec& v,
                      const std::vector<std::int32_t>& doc, I64 batch, I64 t, I64 hq, I64 hkv,
                      I64 dh, double scale, Vec& out, Vec& lse, I64 window = 0) {
  const I64 group = hq / hkv;
  for (I64 b = 0; b < batch; ++b)
    for (I64 h = 0; h < hq; ++h) {
      const I64 g = h / group;
      for (I64 i = 0; i < t; ++i) {
        Vec s(static_cast<std::size_t>(t), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (I64 j = 0; j <= i; ++j) {
          if (!doc.empty() &&
              doc[static_cast<std::size_t>(b * t + j)] != doc[static_cast<std::size_t>(b * t + i)])
            continue;
          if (window > 0 && i - j >= window) continue;
          double dotp = 0;
          for (I64 c = 0; c < dh; ++c)
            dotp +=
                at(q, ((b * t + i) * hq + h) * dh + c) * at(k, ((b * t + j) * hkv + g) * dh + c);
          at(s, j) = dotp * scale;
          mx = std::max(mx, at(s, j));
        }
        double l = 0;
        for (I64 j = 0; j <= i; ++j) l += std::exp(at(s, j) - mx);
        for (I64 c = 0; c < dh; ++c) {
          double o = 0;
          for (I64 j = 0; j <= i; ++j)
            o += std::exp(at(s, j) - mx) / l * at(v, ((b * t + j) * hkv + g) * dh + c);
          at(out, ((b * t + i) * hq + h) * dh + c) = o;
        }
        at(lse, (b * hq + h) * t + i) = mx + std::log(l);
      }
    }
}

// Attention of new queries q [B, Tq, Hq, Dh] over a cache k, v [B, S, Hkv, Dh]: query t of row
// b attends to the keys j <= start[b] + t of its row (and, with window > 0, only to those less
// than window positions back).
inline void attention_cached(const Vec& q, const Vec& k, const Vec& v,
                             const std::vector<std::int32_t>& start, I64 batch, I64 tq, I64 cap,
                             I64 hq, I64 hkv, I64 dh, double scale, Vec& out, I64 window = 0) {
  const I64 group = hq / hkv;
  for (I64 b = 0; b < batch; ++b)
    for (I64 h = 0; h < hq; ++h)
      for (I64 t = 0; t < tq; ++t) {
        const I64 keys = start[static_cast<std::size_t>(b)] + t + 1;
        const I64 lo = window > 0 ? std::max<I64>(0, keys - window) : 0;
        Vec s(static_cast<std::size_t>(keys));
        double mx = -std::numeric_limits<double>::infinity();
        for (I64 j = lo; j < keys; ++j) {
          double dotp = 0;
          for (I64 c = 0; c < dh; ++c)
            dotp += at(q, ((b * tq + t) * hq + h) * dh + c) *
                    at(k, ((b * cap + j) * hkv + h / group) * dh + c);
          at(s, j) = dotp * scale;
          mx = std::max(mx, at(s, j));
        }
        double l = 0;
        for (I64 j = lo; j < keys; ++j) l += std::exp(at(s, j) - mx);
        for (I64 c = 0; c < dh; ++c) {
          double o = 0;
          for (I64 j = lo; j < keys; ++j)
            o += std::exp(at(s, j) - mx) / l * at(v, ((b * cap + j) * hkv + h / group) * dh + c);
          at(out, ((b * tq + t) * hq + h) * dh + c) = o;
        }
      }
}

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double gelu_tanh(double x) {
  const double c = std::sqrt(2.0 / std::acos(-1.0));
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

// losses[N], dlogits[N, V] (dscale * (softmax - onehot) on real columns).
inline void cross_entropy(const Vec& logits, const std::vector<std::int32_t>& targets, I64 n,
                          I64 vocab, I64 valid, double dscale, Vec& losses, Vec& dlogits) {
  for (I64 r = 0; r < n; ++r) {
    const std::int32_t tg = targets[static_cast<std::size_t>(r)];
    if (tg < 0) {
      at(losses, r) = 0;
      for (I64 j = 0; j < vocab; ++j) at(dlogits, r * vocab + j) = 0;
      continue;
    }
    double mx = -std::numeric_limits<double>::infinity();
    for (I64 j = 0; j < valid; ++j) mx = std::max(mx, at(logits, r * vocab + j));
    double s = 0;
    for (I64 j = 0; j < valid; ++j) s += std::exp(at(logits, r * vocab + j) - mx);
    const double lse = mx + std::log(s);
    at(losses, r) = lse - at(logits, r * vocab + tg);
    for (I64 j = 0; j < vocab; ++j) {
      const double p = j < valid ? std::exp(at(logits, r * vocab + j) - lse) : 0.0;
      at(dlogits, r * vocab + j) = j < valid ? dscale * (p - (j == tg ? 1.0 : 0.0)) : 0.0;
    }
  }
}

}  // namespace tailor::backend::test::ref
