// Elementwise ops and flat reductions: fill, copy (with f32/f64/bf16 conversion), add, scale,
// sum_squares, add_bias, bias_backward, scale_columns, scale_columns_backward.
//
// Flat ops run in blocks of kElemBlock elements. sum_squares accumulates in f64, one partial per
// block, partials summed in block order. bias_backward and scale_columns_backward sum rows in
// reduction_blocks (one partial row per block, summed in block order): both independent of the
// thread count.
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/host_convert.h"

namespace tailor::backend {
namespace {


}  // namespace

void CpuOps::fill(const Tensor& x, double value) {
  constexpr std::string_view kOp = "fill";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.numel();
  auto run = [&](auto* p, auto v) {
    pool_.parallel_for(n, cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) p[i] = v;
    });
  };
  switch (x.dtype) {
    case DType::kF32:
      run(x.ptr<float>(), static_cast<float>(value));
      return;
    case DType::kF64:
      run(x.ptr<double>(), value);
      return;
    case DType::kBF16: {
      const BF16 v = float_to_bf16(static_cast<float>(value));
      run(static_cast<std::uint16_t*>(x.data), v.bits);
      return;
    }
    case DType::kI32:
      run(x.ptr<std::int32_t>(), static_cast<std::int32_t>(value));
      return;
    default:
      break;
  }
  TAILOR_ASSERT(false, "fill: unsupported dtype {}", dtype_name(x.dtype));
}

void CpuOps::copy(const Tensor& dst, const Tensor& src) {
  constexpr std::string_view kOp = "copy";
  cpu::check_cpu(kOp, dst);
  cpu::check_cpu(kOp, src);
  cpu::check_numel(kOp, dst, src.numel());
  const std::int64_t n = src.numel();
  if (dst.dtype == src.dtype) {
    const std::size_t esize = dtype_size(src.dtype);
    auto* d = static_cast<char*>(dst.data);
    const auto* s = static_cast<const char*>(src.data);
    if (d == s) return;
    pool_.parallel_for(n, cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      std::memcpy(d + static_cast<std::size_t>(b) * esize, s + static_cast<std::size_t>(b) * esize,
                  static_cast<std::size_t>(e - b) * esize);
    });
    return;
  }
  pool_.parallel_for(n, cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
    convert_host(dst.data, dst.dtype, src.data, src.dtype, b, e);
  });
}

void CpuOps::add(const Tensor& y, const Tensor& x, double alpha) {
  constexpr std::string_view kOp = "add";
  cpu::check_cpu(kOp, y);
  cpu::check_like(kOp, y, x);
  cpu::dispatch_float(kOp, y, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.ptr<T>();
    const T* px = x.ptr<T>();
    const T a = static_cast<T>(alpha);
    pool_.parallel_for(y.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) py[i] += a * px[i];
    });
  });
}

void CpuOps::scale(const Tensor& x, double alpha) {
  constexpr std::string_view kOp = "scale";
  cpu::check_cpu(kOp, x);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    T* p = x.ptr<T>();
    const T a = static_cast<T>(alpha);
    pool_.parallel_for(x.numel(), cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) p[i] *= a;
    });
  });
}

double CpuOps::sum_squares(const Tensor& x) {
  constexpr std::string_view kOp = "sum_squares";
  cpu::check_cpu(kOp, x);
  const std::int64_t n = x.numel();
  const std::int64_t blocks = (n + cpu::kElemBlock - 1) / cpu::kElemBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
  cpu::dispatch_float(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.ptr<T>();
    pool_.parallel_for(n, cpu::kElemBlock, [&](std::int64_t b, std::int64_t e) {
      partial[static_cast<std::size_t>(b / cpu::kElemBlock)] =
          cpu::lane_dot<double>(p + b, p + b, e - b);
    });
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

void CpuOps::add_bias(const Tensor& y, const Tensor& bias) {
  constexpr std::string_view kOp = "add_bias";
  cpu::check_cpu(kOp, y);
  cpu::check_dtype(kOp, bias, y.dtype);
  const std::int64_t d = y.cols();
  cpu::check_numel(kOp, bias, d);
  cpu::dispatch_float(kOp, y, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.ptr<T>();
    const T* pb = bias.ptr<T>();
    pool_.parallel_for(y.rows(), cpu::rows_per_block(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        T* row = py + r * d;
        for (std::int64_t j = 0; j < d; ++j) row[j] += pb[j];
      }
    });
  });
}

void CpuOps::bias_backward(const Tensor& dbias, const Tensor& dy) {
  constexpr std::string_view kOp = "bias_backward";
  cpu::check_cpu(kOp, dy);
  cpu::check_dtype(kOp, dbias, dy.dtype);
  const std::int64_t n = dy.rows();
  const std::int64_t d = dy.cols();
  cpu::check_numel(kOp, dbias, d);
  const cpu::RowBlocks blocks = cpu::reduction_blocks(n, d);
  cpu::dispatch_float(kOp, dy, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.ptr<T>();
    // partial[blk, D]: column sums of the rows of block blk, summed in row order.
    std::vector<T> partial(static_cast<std::size_t>(blocks.count * d), T(0));
    pool_.parallel_for(n, blocks.size, [&](std::int64_t r0, std::int64_t r1) {
      T* acc = partial.data() + (r0 / blocks.size) * d;
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* row = pdy + r * d;
        for (std::int64_t j = 0; j < d; ++j) acc[j] += row[j];
      }
    });
    cpu::add_partials(partial, blocks.count, d, dbias.ptr<T>());
  });
}

void CpuOps::scale_columns(const Tensor& y, const Tensor& s) {
  constexpr std::string_view kOp = "scale_columns";
  cpu::check_cpu(kOp, y);
  cpu::check_dtype(kOp, s, y.dtype);
  const std::int64_t d = y.cols();
  cpu::check_numel(kOp, s, d);
  cpu::dispatch_float(kOp, y, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.ptr<T>();
    const T* ps = s.ptr<T>();
    pool_.parallel_for(y.rows(), cpu::rows_per_block(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        T* row = py + r * d;
        for (std::int64_t j = 0; j < d; ++j) row[j] *= ps[j];
      }
    });
  });
}

void CpuOps::scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) {
  constexpr std::string_view kOp = "scale_columns_backward";
  cpu::check_cpu(kOp, dy);
  cpu::check_dtype(kOp, ds, dy.dtype);
  cpu::check_dtype(kOp, x, dy.dtype);
  const std::int64_t n = dy.rows();
  const std::int64_t d = dy.cols();
  cpu::check_numel(kOp, ds, d);
  cpu::check_numel(kOp, x, n * d);
  const cpu::RowBlocks blocks = cpu::reduction_blocks(n, d);
  cpu::dispatch_float(kOp, dy, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.ptr<T>();
    const T* px = x.ptr<T>();
    // partial[blk, D]: column sums of dy * x over the rows of block blk, in row order (as
    // bias_backward).
    std::vector<T> partial(static_cast<std::size_t>(blocks.count * d), T(0));
    pool_.parallel_for(n, blocks.size, [&](std::int64_t r0, std::int64_t r1) {
      T* acc = partial.data() + (r0 / blocks.size) * d;
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* gr = pdy + r * d;
        const T* xr = px + r * d;
        for (std::int64_t j = 0; j < d; ++j) acc[j] += gr[j] * xr[j];
      }
    });
    cpu::add_partials(partial, blocks.count, d, ds.ptr<T>());
  });
}

}  // namespace tailor::backend
