// RMSNorm and LayerNorm, forward and backward, over the last dimension of x[N, D].
//
// Precision follows PyTorch / Hugging Face: row statistics are computed in the tensor's own
// dtype (f32 for f32), with fixed-order lane sums. Rows are independent in the forward pass and
// for dx; dw and db (accumulated, +=) are reductions over rows: one partial row per fixed row
// block (cpu::reduction_blocks), the partials summed in block order. dw / db may be absent
// (frozen weights): their reduction is then skipped. LayerNorm's b may be absent (no bias).
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {

void CpuOps::rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                             const Tensor& rstd) {
  constexpr std::string_view kOp = "rmsnorm_forward";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.rows();
  const std::int64_t d = x.cols();
  cpu::check_dtype(kOp, w, x.dtype);
  cpu::check_numel(kOp, w, d);
  cpu::check_like(kOp, x, y);
  cpu::check_dtype(kOp, rstd, x.dtype);
  cpu::check_numel(kOp, rstd, n);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.ptr<T>();
    const T* pw = w.ptr<T>();
    T* py = y.ptr<T>();
    T* pr = rstd.ptr<T>();
    const T teps = static_cast<T>(eps);
    const T inv_d = T(1) / static_cast<T>(d);
    pool_.parallel_for(n, cpu::rows_per_block(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * d;
        T* yr = py + r * d;
        const T ms = cpu::lane_dot<T>(xr, xr, d) * inv_d;
        const T rs = T(1) / std::sqrt(ms + teps);
        pr[r] = rs;
        for (std::int64_t j = 0; j < d; ++j) yr[j] = (xr[j] * rs) * pw[j];
      }
    });
  });
}

void CpuOps::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                              const Tensor& rstd, const Tensor& dx, const Tensor& dw) {
  constexpr std::string_view kOp = "rmsnorm_backward";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.rows();
  const std::int64_t d = x.cols();
  cpu::check_like(kOp, x, dy);
  cpu::check_like(kOp, x, dx);
  cpu::check_dtype(kOp, w, x.dtype);
  cpu::check_numel(kOp, w, d);
  cpu::check_dtype(kOp, rstd, x.dtype);
  cpu::check_numel(kOp, rstd, n);
  const bool want_dw = cpu::present(dw);
  if (want_dw) {
    cpu::check_dtype(kOp, dw, x.dtype);
    cpu::check_numel(kOp, dw, d);
  }
  const cpu::RowBlocks blocks = cpu::reduction_blocks(n, d);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.ptr<T>();
    const T* px = x.ptr<T>();
    const T* pw = w.ptr<T>();
    const T* pr = rstd.ptr<T>();
    T* pdx = dx.ptr<T>();
    // partial[blk, D]: this block's share of dw.
    std::vector<T> partial(want_dw ? static_cast<std::size_t>(blocks.count * d) : 0, T(0));
    const T inv_d = T(1) / static_cast<T>(d);
    pool_.parallel_for(n, blocks.size, [&](std::int64_t r0, std::int64_t r1) {
      T* acc = want_dw ? partial.data() + (r0 / blocks.size) * d : nullptr;
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* dyr = pdy + r * d;
        const T* xr = px + r * d;
        T* dxr = pdx + r * d;
        const T rs = pr[r];
        // y_j = w_j x_j rs  =>  dx_j = rs w_j dy_j - x_j rs^3 / D * sum_k dy_k w_k x_k.
        T lanes[cpu::kLanes] = {};
        std::int64_t j = 0;
        for (; j + cpu::kLanes <= d; j += cpu::kLanes)
          for (int l = 0; l < cpu::kLanes; ++l) lanes[l] += dyr[j + l] * pw[j + l] * xr[j + l];
        for (int l = 0; j < d; ++j, ++l) lanes[l] += dyr[j] * pw[j] * xr[j];
        const T c = cpu::combine_lanes(lanes) * rs * rs * rs * inv_d;
        for (j = 0; j < d; ++j) dxr[j] = dyr[j] * pw[j] * rs - xr[j] * c;
        if (acc != nullptr)
          for (j = 0; j < d; ++j) acc[j] += dyr[j] * (xr[j] * rs);
      }
    });
    if (want_dw) cpu::add_partials(partial, blocks.count, d, dw.ptr<T>());
  });
}

void CpuOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                               const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  constexpr std::string_view kOp = "layernorm_forward";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.rows();
  const std::int64_t d = x.cols();
  cpu::check_dtype(kOp, w, x.dtype);
  cpu::check_numel(kOp, w, d);
  const bool has_bias = cpu::present(b);
  if (has_bias) {
    cpu::check_dtype(kOp, b, x.dtype);
    cpu::check_numel(kOp, b, d);
  }
  cpu::check_like(kOp, x, y);
  cpu::check_dtype(kOp, mean, x.dtype);
  cpu::check_numel(kOp, mean, n);
  cpu::check_dtype(kOp, rstd, x.dtype);
  cpu::check_numel(kOp, rstd, n);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.ptr<T>();
    const T* pw = w.ptr<T>();
    const T* pb = has_bias ? b.ptr<T>() : nullptr;
    T* py = y.ptr<T>();
    T* pm = mean.ptr<T>();
    T* pr = rstd.ptr<T>();
    const T teps = static_cast<T>(eps);
    const T inv_d = T(1) / static_cast<T>(d);
    pool_.parallel_for(n, cpu::rows_per_block(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * d;
        T* yr = py + r * d;
        const T mu = cpu::lane_sum<T>(xr, d) * inv_d;
        const T var = cpu::lane_centered_sum_squares(xr, mu, d) * inv_d;  // biased, two-pass
        const T rs = T(1) / std::sqrt(var + teps);
        pm[r] = mu;
        pr[r] = rs;
        if (pb != nullptr) {
          for (std::int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * pw[j] + pb[j];
        } else {
          for (std::int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * pw[j];
        }
      }
    });
  });
}

void CpuOps::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                const Tensor& dw, const Tensor& db) {
  constexpr std::string_view kOp = "layernorm_backward";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.rows();
  const std::int64_t d = x.cols();
  cpu::check_like(kOp, x, dy);
  cpu::check_like(kOp, x, dx);
  cpu::check_dtype(kOp, w, x.dtype);
  cpu::check_numel(kOp, w, d);
  cpu::check_dtype(kOp, mean, x.dtype);
  cpu::check_numel(kOp, mean, n);
  cpu::check_dtype(kOp, rstd, x.dtype);
  cpu::check_numel(kOp, rstd, n);
  const bool want_dw = cpu::present(dw);
  const bool want_db = cpu::present(db);
  if (want_dw) {
    cpu::check_dtype(kOp, dw, x.dtype);
    cpu::check_numel(kOp, dw, d);
  }
  if (want_db) {
    cpu::check_dtype(kOp, db, x.dtype);
    cpu::check_numel(kOp, db, d);
  }
  const cpu::RowBlocks blocks = cpu::reduction_blocks(n, d);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.ptr<T>();
    const T* px = x.ptr<T>();
    const T* pw = w.ptr<T>();
    const T* pm = mean.ptr<T>();
    const T* pr = rstd.ptr<T>();
    T* pdx = dx.ptr<T>();
    const auto partial_size = static_cast<std::size_t>(blocks.count * d);
    std::vector<T> partial_w(want_dw ? partial_size : 0, T(0));
    std::vector<T> partial_b(want_db ? partial_size : 0, T(0));
    const T inv_d = T(1) / static_cast<T>(d);
    pool_.parallel_for(n, blocks.size, [&](std::int64_t r0, std::int64_t r1) {
      const std::int64_t offset = (r0 / blocks.size) * d;
      T* acc_w = want_dw ? partial_w.data() + offset : nullptr;
      T* acc_b = want_db ? partial_b.data() + offset : nullptr;
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* dyr = pdy + r * d;
        const T* xr = px + r * d;
        T* dxr = pdx + r * d;
        const T mu = pm[r];
        const T rs = pr[r];
        // xhat = (x - mu) rs, g = dy w:  dx = rs (g - mean(g) - xhat mean(g xhat)).
        T sum_g[cpu::kLanes] = {};
        T sum_gx[cpu::kLanes] = {};
        std::int64_t j = 0;
        for (; j + cpu::kLanes <= d; j += cpu::kLanes)
          for (int l = 0; l < cpu::kLanes; ++l) {
            const T g = dyr[j + l] * pw[j + l];
            sum_g[l] += g;
            sum_gx[l] += g * ((xr[j + l] - mu) * rs);
          }
        for (int l = 0; j < d; ++j, ++l) {
          const T g = dyr[j] * pw[j];
          sum_g[l] += g;
          sum_gx[l] += g * ((xr[j] - mu) * rs);
        }
        const T mean_g = cpu::combine_lanes(sum_g) * inv_d;
        const T mean_gx = cpu::combine_lanes(sum_gx) * inv_d;
        for (j = 0; j < d; ++j) {
          const T xhat = (xr[j] - mu) * rs;
          dxr[j] = (dyr[j] * pw[j] - mean_g - xhat * mean_gx) * rs;
        }
        if (acc_w != nullptr)
          for (j = 0; j < d; ++j) acc_w[j] += dyr[j] * ((xr[j] - mu) * rs);
        if (acc_b != nullptr)
          for (j = 0; j < d; ++j) acc_b[j] += dyr[j];
      }
    });
    if (want_dw) cpu::add_partials(partial_w, blocks.count, d, dw.ptr<T>());
    if (want_db) cpu::add_partials(partial_b, blocks.count, d, db.ptr<T>());
  });
}

}  // namespace tailor::backend
