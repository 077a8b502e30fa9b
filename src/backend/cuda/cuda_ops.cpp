// CudaOps: construction, GEMM, the elementwise ops and flat reductions, copies between host and
// device (with f64 / f32 / bf16 conversion), dropout and AdamW. The neural-network ops (embedding,
// norms, RoPE, attention, activations, cross-entropy) live in cuda_ops_nn.cpp.
#include "backend/cuda/cuda_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include <cublasLt.h>
#include <fmt/format.h>

#include "backend/cuda/cuda_ops_common.h"
#include "backend/cuda/gemm.h"
#include "backend/host_convert.h"
#include "kernels/adamw.cuh"
#include "kernels/cast.cuh"
#include "kernels/cuda_check.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/grad_norm.cuh"

namespace tailor::backend::cuda {
namespace {

using detail::as;

// Elements converted per host staging round (bounds the temporary host memory of a conversion).
constexpr std::int64_t kStageElems = std::int64_t{1} << 24;

}  // namespace

// ---- construction -------------------------------------------------------------------------

CudaOps::CudaOps(int device)
    : context_(std::make_unique<CudaContext>(device)),
      gemm_(std::make_unique<CublasLtGemm>(context_->stream())) {}

CudaOps::~CudaOps() {
  try {
    context_->synchronize();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor reports nothing
  }
  gemm_.reset();  // before the context: its workspace and handle belong to the device
}

std::string CudaOps::describe() const {
  const std::size_t lt = cublasLtGetVersion();
  return fmt::format("cuda: {}; cuBLASLt {}.{}.{} (f32 GEMMs without TF32)", context_->describe(),
                     lt / 10000, (lt / 100) % 100, lt % 100);
}

void CudaOps::synchronize() { context_->synchronize(); }

std::vector<std::int32_t> CudaOps::download_i32(const Tensor& t) {
  std::vector<std::int32_t> host(static_cast<std::size_t>(t.numel()));
  if (!host.empty()) context_->to_host(host.data(), t.data, t.bytes());
  return host;
}

// ---- GEMM -----------------------------------------------------------------------------------

void CudaOps::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
                   double alpha, double beta) {
  constexpr std::string_view kOp = "gemm";
  detail::check_storage(kOp, a);
  detail::check_dtype(kOp, b, a.dtype);
  detail::check_dev(kOp, c);
  TAILOR_ASSERT(c.dtype == a.dtype || c.dtype == DType::kF32,
                "gemm: c {} for operands {} (c is the operands' dtype or f32)", c.str(), a.str());
  const std::int64_t a_rows = detail::matrix_rows(a);
  const std::int64_t b_rows = detail::matrix_rows(b);
  const std::int64_t m = trans_a ? a.cols() : a_rows;
  const std::int64_t k = trans_a ? a_rows : a.cols();
  const std::int64_t kb = trans_b ? b.cols() : b_rows;
  const std::int64_t n = trans_b ? b_rows : b.cols();
  TAILOR_ASSERT(k == kb && detail::matrix_rows(c) == m && c.cols() == n,
                "gemm: op(a) {}{} @ op(b) {}{} -> c {}", a.shape.str(), trans_a ? "^T" : "",
                b.shape.str(), trans_b ? "^T" : "", c.shape.str());
  const auto type = [](DType t) { return t == DType::kBF16 ? GemmType::kBF16 : GemmType::kF32; };
  GemmCall call;
  call.a = a.data;
  call.a_type = type(a.dtype);
  call.trans_a = trans_a;
  call.b = b.data;
  call.b_type = type(b.dtype);
  call.trans_b = trans_b;
  call.c = c.data;
  call.c_type = type(c.dtype);
  call.m = m;
  call.n = n;
  call.k = k;
  call.alpha = static_cast<float>(alpha);
  call.beta = static_cast<float>(beta);
  gemm_->run(call);
  context_->check_launch();
}

// ---- elementwise ----------------------------------------------------------------------------

void CudaOps::fill(const Tensor& x, double value) {
  constexpr std::string_view kOp = "fill";
  detail::check_dev(kOp, x);
  const std::int64_t n = x.numel();
  if (n == 0) return;
  switch (x.dtype) {
    case DType::kF32:
      kernels::fill(as<float>(x), n, static_cast<float>(value), stream());
      break;
    case DType::kBF16:
      kernels::fill(as<std::uint16_t>(x), n, static_cast<float>(value), stream());
      break;
    case DType::kI32:
    case DType::kF64: {
      // No kernel for these (ids, positions and f64 scratch are filled rarely): zero with a
      // memset, anything else through a host buffer.
      if (value == 0.0) {
        context_->zero(x.data, x.bytes());
        break;
      }
      Buffer host(x.dtype, x.shape);
      if (x.dtype == DType::kI32) {
        std::fill_n(host.ptr<std::int32_t>(), n, static_cast<std::int32_t>(value));
      } else {
        std::fill_n(host.ptr<double>(), n, value);
      }
      context_->from_host(x.data, host.data(), x.bytes());
      break;
    }
    default:
      TAILOR_ASSERT(false, "fill: unsupported dtype of {}", x.str());
  }
  context_->check_launch();
}

void CudaOps::copy(const Tensor& dst, const Tensor& src) {
  constexpr std::string_view kOp = "copy";
  TAILOR_ASSERT(dst.data != nullptr || dst.numel() == 0, "copy: {} has no data", dst.str());
  TAILOR_ASSERT(src.data != nullptr || src.numel() == 0, "copy: {} has no data", src.str());
  detail::check_numel(kOp, dst, src.numel());
  const std::int64_t n = src.numel();
  if (n == 0) return;
  const bool dst_dev = dst.device == Device::kCuda;
  const bool src_dev = src.device == Device::kCuda;

  if (dst.dtype == src.dtype) {  // raw bytes, wherever each side lives
    if (dst.data == src.data && dst_dev == src_dev) return;
    if (dst_dev && src_dev) {
      context_->on_device(dst.data, src.data, dst.bytes());
    } else if (dst_dev) {
      context_->from_host(dst.data, src.data, dst.bytes());
    } else if (src_dev) {
      context_->to_host(dst.data, src.data, dst.bytes());
    } else {
      std::memmove(dst.data, src.data, dst.bytes());
    }
    context_->check_launch();
    return;
  }

  if (dst_dev && src_dev) {  // f32 <-> bf16 on the device
    if (src.dtype == DType::kF32 && dst.dtype == DType::kBF16) {
      kernels::cast_f32_to_bf16(as<const float>(src), as<std::uint16_t>(dst), n, stream());
    } else if (src.dtype == DType::kBF16 && dst.dtype == DType::kF32) {
      kernels::cast_bf16_to_f32(as<const std::uint16_t>(src), as<float>(dst), n, stream());
    } else {
      TAILOR_ASSERT(false, "copy: cannot convert {} to {} on the device (f32 <-> bf16 only)",
                    src.str(), dst.str());
    }
    context_->check_launch();
    return;
  }

  // Conversions that involve host memory run on the host, in rounds of kStageElems elements:
  // upload after converting to the device's dtype (so f64 weights cross the bus as f32 or bf16),
  // download before converting to the host's.
  const std::size_t dst_size = dtype_size(dst.dtype);
  const std::size_t src_size = dtype_size(src.dtype);
  if (!dst_dev && !src_dev) {
    convert_host(dst.data, dst.dtype, src.data, src.dtype, 0, n);
    return;
  }
  const DType staged = dst_dev ? dst.dtype : src.dtype;  // the device side's dtype, on the host
  const std::int64_t round = std::min(n, kStageElems);
  Buffer stage(staged, Shape{round});
  for (std::int64_t begin = 0; begin < n; begin += round) {
    const std::int64_t count = std::min(round, n - begin);
    auto* d = static_cast<char*>(dst.data) + static_cast<std::size_t>(begin) * dst_size;
    const auto* s = static_cast<const char*>(src.data) + static_cast<std::size_t>(begin) * src_size;
    if (dst_dev) {
      convert_host(stage.data(), staged, s, src.dtype, 0, count);
      context_->from_host(d, stage.data(), static_cast<std::size_t>(count) * dst_size);
    } else {
      context_->to_host(stage.data(), s, static_cast<std::size_t>(count) * src_size);
      convert_host(d, dst.dtype, stage.data(), staged, 0, count);
    }
  }
  context_->check_launch();
}

void CudaOps::add(const Tensor& y, const Tensor& x, double alpha) {
  constexpr std::string_view kOp = "add";
  detail::check_storage(kOp, y);
  detail::check_storage(kOp, x);
  detail::check_numel(kOp, x, y.numel());
  const std::int64_t n = y.numel();
  const auto a = static_cast<float>(alpha);
  if (y.dtype == DType::kF32 && x.dtype == DType::kF32) {
    kernels::add(as<float>(y), as<const float>(x), n, a, stream());
  } else if (y.dtype == DType::kBF16 && x.dtype == DType::kBF16) {
    kernels::add(as<std::uint16_t>(y), as<const std::uint16_t>(x), n, a, stream());
  } else if (y.dtype == DType::kF32 && x.dtype == DType::kBF16) {
    kernels::add(as<float>(y), as<const std::uint16_t>(x), n, a, stream());
  } else {
    TAILOR_ASSERT(false, "add: y {} += x {} (y and x alike, or an f32 y and a bf16 x)", y.str(),
                  x.str());
  }
  context_->check_launch();
}

void CudaOps::scale(const Tensor& x, double alpha) {
  constexpr std::string_view kOp = "scale";
  detail::check_storage(kOp, x);
  detail::dispatch_storage(kOp, x, [&](auto tag) {
    using T = decltype(tag);
    kernels::scale(as<T>(x), x.numel(), static_cast<float>(alpha), stream());
  });
  context_->check_launch();
}

double CudaOps::sum_squares(const Tensor& x) {
  constexpr std::string_view kOp = "sum_squares";
  detail::check_storage(kOp, x);
  const std::int64_t n = x.numel();
  if (n == 0) return 0.0;
  if (x.dtype == DType::kF32) {
    const kernels::SumSquaresTensor t{as<const float>(x), n};
    const std::size_t ws_bytes = kernels::sum_squares_workspace_bytes(&t, 1);
    detail::Carver size(nullptr);
    (void)size.take<double>(sizeof(double));
    (void)size.take<char>(ws_bytes);
    detail::Carver carve(context_->scratch(size.total()));
    auto* out = carve.take<double>(sizeof(double));
    void* ws = carve.take<char>(ws_bytes);
    kernels::sum_squares(&t, 1, ws, out, stream());
    context_->check_launch();
    double result = 0.0;
    context_->to_host(&result, out, sizeof(double));
    return result;
  }
  // bf16 (gradients are f32; this serves diagnostics): widened to f32 in fixed chunks, each
  // chunk's f64 sum of squares kept apart, the chunk sums added on the host in chunk order.
  constexpr std::int64_t kChunk = std::int64_t{1} << 22;
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  const std::int64_t chunk_elems = std::min(n, kChunk);
  const kernels::SumSquaresTensor probe{nullptr, chunk_elems};
  const std::size_t ws_bytes = kernels::sum_squares_workspace_bytes(&probe, 1);
  detail::Carver size(nullptr);
  (void)size.take<double>(static_cast<std::size_t>(chunks) * sizeof(double));
  (void)size.take<float>(static_cast<std::size_t>(chunk_elems) * sizeof(float));
  (void)size.take<char>(ws_bytes);
  detail::Carver carve(context_->scratch(size.total()));
  auto* outs = carve.take<double>(static_cast<std::size_t>(chunks) * sizeof(double));
  auto* wide = carve.take<float>(static_cast<std::size_t>(chunk_elems) * sizeof(float));
  void* ws = carve.take<char>(ws_bytes);
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * kChunk;
    const std::int64_t count = std::min(kChunk, n - begin);
    kernels::cast_bf16_to_f32(as<const std::uint16_t>(x) + begin, wide, count, stream());
    const kernels::SumSquaresTensor t{wide, count};
    kernels::sum_squares(&t, 1, ws, outs + c, stream());
  }
  context_->check_launch();
  std::vector<double> host(static_cast<std::size_t>(chunks));
  context_->to_host(host.data(), outs, host.size() * sizeof(double));
  double total = 0.0;
  for (double s : host) total += s;
  return total;
}

double CudaOps::weighted_sum_squares(std::span<const Tensor> xs,
                                     std::span<const double> weights) {
  constexpr std::string_view kOp = "weighted_sum_squares";
  TAILOR_ASSERT(xs.size() == weights.size(), "{}: {} tensors, {} weights", kOp, xs.size(),
                weights.size());
  for (const Tensor& x : xs)
    if (x.dtype != DType::kF32) return Ops::weighted_sum_squares(xs, weights);
  // Consecutive tensors of equal weight form a group (1 / replicas: a few distinct values).
  struct Group {
    std::size_t begin, end;
    double weight;
  };
  std::vector<kernels::SumSquaresTensor> ts;
  std::vector<Group> groups;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    detail::check_storage(kOp, xs[i]);
    if (xs[i].numel() == 0) continue;  // adds nothing
    const std::size_t at = ts.size();
    ts.push_back({as<const float>(xs[i]), xs[i].numel()});
    if (groups.empty() || groups.back().weight != weights[i] ||
        groups.back().end - groups.back().begin ==
            static_cast<std::size_t>(kernels::kSumSquaresTensorsPerLaunch)) {
      groups.push_back({at, at + 1, weights[i]});
    } else {
      groups.back().end = at + 1;
    }
  }
  if (groups.empty()) return 0.0;
  std::size_t ws_bytes = 0;
  for (const Group& g : groups)
    ws_bytes = std::max(ws_bytes, kernels::sum_squares_workspace_bytes(
                                      ts.data() + g.begin, static_cast<int>(g.end - g.begin)));
  detail::Carver size(nullptr);
  (void)size.take<double>(groups.size() * sizeof(double));
  (void)size.take<char>(ws_bytes);
  detail::Carver carve(context_->scratch(size.total()));
  auto* outs = carve.take<double>(groups.size() * sizeof(double));
  void* ws = carve.take<char>(ws_bytes);
  for (std::size_t g = 0; g < groups.size(); ++g)
    kernels::sum_squares(ts.data() + groups[g].begin,
                         static_cast<int>(groups[g].end - groups[g].begin), ws, outs + g, stream());
  context_->check_launch();
  std::vector<double> host(groups.size());
  context_->to_host(host.data(), outs, host.size() * sizeof(double));
  double total = 0.0;
  for (std::size_t g = 0; g < groups.size(); ++g) total += groups[g].weight * host[g];
  return total;
}

void CudaOps::add_bias(const Tensor& y, const Tensor& bias) {
  constexpr std::string_view kOp = "add_bias";
  detail::check_storage(kOp, y);
  detail::check_dtype(kOp, bias, y.dtype);
  const std::int64_t d = y.cols();
  detail::check_numel(kOp, bias, d);
  const std::int64_t rows = d == 0 ? 0 : y.numel() / d;
  detail::dispatch_storage(kOp, y, [&](auto tag) {
    using T = decltype(tag);
    kernels::add_bias(as<T>(y), as<const T>(bias), rows, d, stream());
  });
  context_->check_launch();
}

void CudaOps::bias_backward(const Tensor& dbias, const Tensor& dy) {
  constexpr std::string_view kOp = "bias_backward";
  detail::check_storage(kOp, dy);
  const std::int64_t d = dy.cols();
  detail::check_accum(kOp, dbias, d);
  const std::int64_t rows = d == 0 ? 0 : dy.numel() / d;
  void* ws = context_->scratch(kernels::bias_backward_workspace_bytes(rows, d));
  detail::dispatch_storage(kOp, dy, [&](auto tag) {
    using T = decltype(tag);
    kernels::bias_backward(as<float>(dbias), as<const T>(dy), rows, d, ws, stream());
  });
  context_->check_launch();
}

void CudaOps::scale_columns(const Tensor& y, const Tensor& s) {
  constexpr std::string_view kOp = "scale_columns";
  detail::check_storage(kOp, y);
  detail::check_dtype(kOp, s, y.dtype);
  const std::int64_t d = y.cols();
  detail::check_numel(kOp, s, d);
  const std::int64_t rows = d == 0 ? 0 : y.numel() / d;
  detail::dispatch_storage(kOp, y, [&](auto tag) {
    using T = decltype(tag);
    kernels::scale_columns(as<T>(y), as<const T>(s), rows, d, stream());
  });
  context_->check_launch();
}

void CudaOps::scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) {
  constexpr std::string_view kOp = "scale_columns_backward";
  detail::check_storage(kOp, dy);
  detail::check_dtype(kOp, x, dy.dtype);
  const std::int64_t d = dy.cols();
  detail::check_accum(kOp, ds, d);
  const std::int64_t rows = d == 0 ? 0 : dy.numel() / d;
  detail::check_numel(kOp, x, rows * d);
  void* ws = context_->scratch(kernels::bias_backward_workspace_bytes(rows, d));
  detail::dispatch_storage(kOp, dy, [&](auto tag) {
    using T = decltype(tag);
    kernels::scale_columns_backward(as<float>(ds), as<const T>(dy), as<const T>(x), rows, d, ws,
                                    stream());
  });
  context_->check_launch();
}

// ---- dropout ----------------------------------------------------------------------------------

void CudaOps::dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) {
  constexpr std::string_view kOp = "dropout";
  detail::check_storage(kOp, src);
  detail::check_like(kOp, src, dst);
  TAILOR_ASSERT(p >= 0.0 && p < 1.0, "{}: p = {} outside [0, 1)", kOp, p);
  const std::int64_t rows = detail::matrix_rows(src);
  const std::int64_t cols = src.shape.rank() == 0 ? 1 : src.cols();
  const std::int64_t width = key.row_width > 0 ? key.row_width : cols;
  TAILOR_ASSERT(key.col0 >= 0 && key.col0 + cols <= width && key.row0 >= 0,
                "{}: columns [{}, {}) of a {}-wide tensor", kOp, key.col0, key.col0 + cols, width);
  kernels::DropoutKeyArgs args;
  args.seed = key.seed;
  args.stream = key.stream;
  args.row0 = key.row0;
  args.row_width = width;
  args.col0 = key.col0;
  detail::dispatch_storage(kOp, src, [&](auto tag) {
    using T = decltype(tag);
    kernels::dropout(as<const T>(src), as<T>(dst), rows, cols, p, args, stream());
  });
  context_->check_launch();
}

// ---- optimizer --------------------------------------------------------------------------------

void CudaOps::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                           const Tensor& v, const AdamWHyper& hyper) {
  adamw_launch(param, grad, m, v, hyper, Tensor{});
}

void CudaOps::adamw_update_master(const Tensor& master, const Tensor& grad, const Tensor& m,
                                  const Tensor& v, const AdamWHyper& hyper,
                                  const Tensor& weights) {
  if (weights.dtype != DType::kBF16) {  // f32 weights have no rounded copy to write
    Ops::adamw_update_master(master, grad, m, v, hyper, weights);
    return;
  }
  detail::check_storage("adamw_update_master", weights);
  detail::check_numel("adamw_update_master", weights, master.numel());
  adamw_launch(master, grad, m, v, hyper, weights);
}

void CudaOps::adamw_launch(const Tensor& param, const Tensor& grad, const Tensor& m,
                           const Tensor& v, const AdamWHyper& hyper, const Tensor& weights) {
  constexpr std::string_view kOp = "adamw_update";
  const std::int64_t n = param.numel();
  detail::check_accum(kOp, param, n);
  detail::check_accum(kOp, grad, n);
  // Moments f32, or both bf16 (optimizer.moments: bf16).
  const bool bf16_moments = m.dtype == DType::kBF16;
  detail::check_dtype(kOp, m, bf16_moments ? DType::kBF16 : DType::kF32);
  detail::check_dtype(kOp, v, m.dtype);
  detail::check_numel(kOp, m, n);
  detail::check_numel(kOp, v, n);
  TAILOR_ASSERT(hyper.step >= 1, "{}: step {} (1-based)", kOp, hyper.step);
  if (n == 0) return;
  kernels::AdamWTensor t;
  t.master = as<float>(param);
  t.model = weights.data != nullptr ? as<std::uint16_t>(weights) : nullptr;
  t.grad = as<const float>(grad);
  if (bf16_moments) {
    t.m16 = as<std::uint16_t>(m);
    t.v16 = as<std::uint16_t>(v);
  } else {
    t.m = as<float>(m);
    t.v = as<float>(v);
  }
  t.numel = n;
  kernels::AdamWParams params;
  params.lr = hyper.lr;
  params.beta1 = hyper.beta1;
  params.beta2 = hyper.beta2;
  params.eps = hyper.eps;
  params.weight_decay = hyper.weight_decay;
  params.step = hyper.step;
  kernels::adamw_update(&t, 1, params, nullptr, stream());
  context_->check_launch();
}

}  // namespace tailor::backend::cuda
