// Softmax cross-entropy over logits[N, V] with a padded vocabulary and ignored rows.
//
// Columns >= valid_vocab are padding (-inf in the softmax, gradient 0). Rows whose target is
// kIgnoreIndex have loss 0 and a zero gradient row. The softmax is max-subtracted; its sums are
// fixed-order lane sums in the logits' dtype, and f32 takes the vectorizing exp of fast_math.h.
// dlogits may alias logits: a row's target logit and max are read before the row is
// overwritten, and exp(x - max) is stored in place on the first pass, then scaled on the second,
// so each logit costs one exp. Rows are independent.
#include <cmath>
#include <cstdint>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"

namespace tailor::backend {
namespace {

// sum_j exp(x[j] - mx) over [0, n), writing each term to out[j] when out is not null (out may
// equal x).
template <typename T>
[[nodiscard]] T sum_exp(const T* x, T mx, std::int64_t n, T* out) noexcept {
  T lanes[cpu::kLanes] = {};
  std::int64_t j = 0;
  if (out != nullptr) {
    for (; j + cpu::kLanes <= n; j += cpu::kLanes)
      for (int l = 0; l < cpu::kLanes; ++l) {
        const T e = cpu::fast_exp(x[j + l] - mx);
        out[j + l] = e;
        lanes[l] += e;
      }
    for (int l = 0; j < n; ++j, ++l) {
      const T e = cpu::fast_exp(x[j] - mx);
      out[j] = e;
      lanes[l] += e;
    }
  } else {
    for (; j + cpu::kLanes <= n; j += cpu::kLanes)
      for (int l = 0; l < cpu::kLanes; ++l) lanes[l] += cpu::fast_exp(x[j + l] - mx);
    for (int l = 0; j < n; ++j, ++l) lanes[l] += cpu::fast_exp(x[j] - mx);
  }
  return cpu::combine_lanes(lanes);
}

}  // namespace

void CpuOps::cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t valid_vocab,
                           const Tensor& losses, const Tensor& dlogits, double dscale) {
  constexpr std::string_view kOp = "cross_entropy";
  cpu::check_cpu(kOp, logits);
  const std::int64_t n = logits.rows();
  const std::int64_t vocab = logits.cols();
  TAILOR_ASSERT(valid_vocab > 0 && valid_vocab <= vocab, "{}: valid_vocab {} of {} columns", kOp,
                valid_vocab, vocab);
  cpu::check_dtype(kOp, targets, DType::kI32);
  cpu::check_numel(kOp, targets, n);
  cpu::check_dtype(kOp, losses, logits.dtype);
  cpu::check_numel(kOp, losses, n);
  const bool want_grad = cpu::present(dlogits);
  if (want_grad) cpu::check_like(kOp, logits, dlogits);
  const std::int32_t* tgt = targets.ptr<std::int32_t>();
  for (std::int64_t r = 0; r < n; ++r) {
    TAILOR_ASSERT(tgt[r] == kIgnoreIndex || (tgt[r] >= 0 && tgt[r] < valid_vocab),
                  "{}: target {} of row {} is outside [0, {})", kOp, tgt[r], r, valid_vocab);
  }
  cpu::dispatch_float(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.ptr<T>();
    T* pd = want_grad ? dlogits.ptr<T>() : nullptr;
    T* pl = losses.ptr<T>();
    const T ds = static_cast<T>(dscale);
    pool_.parallel_for(n, cpu::rows_per_block(vocab), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* x = px + r * vocab;
        T* g = pd != nullptr ? pd + r * vocab : nullptr;
        const std::int32_t t = tgt[r];
        if (t == kIgnoreIndex) {
          pl[r] = 0;
          if (g != nullptr)
            for (std::int64_t j = 0; j < vocab; ++j) g[j] = 0;
          continue;
        }
        const T xt = x[t];  // read before g (maybe x itself) is overwritten
        const T mx = cpu::lane_max(x, valid_vocab);
        const T sum = sum_exp(x, mx, valid_vocab, g);
        pl[r] = mx + std::log(sum) - xt;
        if (g == nullptr) continue;
        const T c = ds / sum;
        for (std::int64_t j = 0; j < valid_vocab; ++j) g[j] *= c;
        g[t] -= ds;
        for (std::int64_t j = valid_vocab; j < vocab; ++j) g[j] = 0;
      }
    });
  });
}

}  // namespace tailor::backend
