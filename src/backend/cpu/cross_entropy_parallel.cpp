// Vocab-parallel softmax cross-entropy (Megatron's), three phases around the TP all-reduces.
//
// Each rank holds the logits of global columns [vocab_begin, vocab_begin + Vl); the first
// valid_cols of them are real, the rest padding (treated as -inf). The full logits are never
// gathered: only a max, a sum of exponentials and the target logit per row cross the group.
// Rows are independent and processed in fixed blocks; sums are in fixed order.
#include <cmath>
#include <cstdint>
#include <limits>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"

namespace tailor::backend {
namespace {

void check_ce(std::string_view op, const Tensor& logits, const Tensor& targets,
              std::int64_t valid_cols, const Tensor& row_max) {
  cpu::check_cpu(op, logits);
  TAILOR_ASSERT(valid_cols >= 0 && valid_cols <= logits.cols(), "{}: valid_cols {} of {}", op,
                valid_cols, logits.cols());
  if (targets.data != nullptr) {
    cpu::check_dtype(op, targets, DType::kI32);
    cpu::check_numel(op, targets, logits.rows());
  }
  cpu::check_dtype(op, row_max, logits.dtype);
  cpu::check_numel(op, row_max, logits.rows());
}

}  // namespace

void CpuOps::ce_local_max(const Tensor& logits, std::int64_t valid_cols, const Tensor& row_max) {
  constexpr std::string_view kOp = "ce_local_max";
  check_ce(kOp, logits, Tensor{}, valid_cols, row_max);
  const std::int64_t n = logits.rows(), v = logits.cols();
  cpu::dispatch_float(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.ptr<T>();
    T* pm = row_max.ptr<T>();
    pool_.parallel_for(n, cpu::rows_per_block(v), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r)
        pm[r] = valid_cols > 0 ? cpu::lane_max(px + r * v, valid_cols)
                               : -std::numeric_limits<T>::infinity();
    });
  });
}

void CpuOps::ce_local_sums(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                           std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats) {
  constexpr std::string_view kOp = "ce_local_sums";
  check_ce(kOp, logits, targets, valid_cols, row_max);
  const std::int64_t n = logits.rows(), v = logits.cols();
  cpu::check_dtype(kOp, stats, logits.dtype);
  cpu::check_numel(kOp, stats, 2 * n);
  const std::int32_t* tgt = targets.ptr<std::int32_t>();
  cpu::dispatch_float(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.ptr<T>();
    const T* pm = row_max.ptr<T>();
    T* ps = stats.ptr<T>();
    pool_.parallel_for(n, cpu::rows_per_block(v), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* x = px + r * v;
        T lanes[cpu::kLanes] = {};
        std::int64_t j = 0;
        for (; j + cpu::kLanes <= valid_cols; j += cpu::kLanes)
          for (int l = 0; l < cpu::kLanes; ++l) lanes[l] += cpu::fast_exp(x[j + l] - pm[r]);
        for (int l = 0; j < valid_cols; ++j, ++l) lanes[l] += cpu::fast_exp(x[j] - pm[r]);
        ps[r] = cpu::combine_lanes(lanes);
        const std::int64_t t = static_cast<std::int64_t>(tgt[r]) - vocab_begin;
        ps[n + r] = (tgt[r] != kIgnoreIndex && t >= 0 && t < valid_cols) ? x[t] : T{0};
      }
    });
  });
}

void CpuOps::ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                       std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats,
                       const Tensor& losses, const Tensor& dlogits, double dscale) {
  constexpr std::string_view kOp = "ce_finish";
  check_ce(kOp, logits, targets, valid_cols, row_max);
  const std::int64_t n = logits.rows(), v = logits.cols();
  cpu::check_numel(kOp, stats, 2 * n);
  cpu::check_numel(kOp, losses, n);
  const bool want_grad = cpu::present(dlogits);
  if (want_grad) cpu::check_like(kOp, logits, dlogits);
  const std::int32_t* tgt = targets.ptr<std::int32_t>();
  cpu::dispatch_float(kOp, logits, [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.ptr<T>();
    const T* pm = row_max.ptr<T>();
    const T* ps = stats.ptr<T>();
    T* pl = losses.ptr<T>();
    T* pd = want_grad ? dlogits.ptr<T>() : nullptr;
    const T ds = static_cast<T>(dscale);
    pool_.parallel_for(n, cpu::rows_per_block(v), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const bool ignored = tgt[r] == kIgnoreIndex;
        pl[r] = ignored ? T{0} : pm[r] + std::log(ps[r]) - ps[n + r];
        if (pd == nullptr) continue;
        const T* x = px + r * v;
        T* g = pd + r * v;
        if (ignored) {
          for (std::int64_t j = 0; j < v; ++j) g[j] = 0;
          continue;
        }
        const T c = ds / ps[r];
        for (std::int64_t j = 0; j < valid_cols; ++j) g[j] = cpu::fast_exp(x[j] - pm[r]) * c;
        for (std::int64_t j = valid_cols; j < v; ++j) g[j] = 0;
        const std::int64_t t = static_cast<std::int64_t>(tgt[r]) - vocab_begin;
        if (t >= 0 && t < valid_cols) g[t] -= ds;
      }
    });
  });
}

}  // namespace tailor::backend
