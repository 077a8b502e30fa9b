// CudaOps (src/backend/cuda) against CpuOps, the reference, through the Ops interface: every op
// in f32 storage (tolerance 1e-5 normwise) and in bf16 storage (inputs rounded to bf16 first, so
// the CPU computes in f32 on exactly the values the GPU holds; tolerance 1e-2), at odd shapes.
// Data reaches the device and comes back through Ops::copy itself, so the conversions of copy
// (f64 / f32 host -> f32 / bf16 device and back) are under test everywhere, and on their own in
// CudaOpsCopy. Also: argument checks, out-of-memory as a RuntimeError, TAILOR_CUDA_SYNC's device
// argument checks, run-to-run bitwise equality, and a one-rank NcclCommunicator.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "comm/communicator.h"
#include "comm/nccl_communicator.h"
#include "core/dtype.h"
#include "core/error.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"

namespace tailor::testing {
namespace {

using backend::Buffer;
using backend::Device;
using backend::Tensor;
using backend::cuda::CudaOps;

Tensor host_view(std::vector<float>& v, Shape shape) { return cpu_view(v, shape); }

// ---- fixture ----------------------------------------------------------------------------------

class CudaOpsBase {
 protected:
  void make_ops() { gpu_ = std::make_unique<CudaOps>(0); }

  // A device tensor of `dtype` holding `values` (converted by Ops::copy from a host f32 view).
  Buffer dev(const std::vector<float>& values, Shape shape, DType dtype) {
    Buffer b = gpu_->alloc(dtype, shape);
    std::vector<float> v = values;
    gpu_->copy(b.tensor(), host_view(v, shape));
    return b;
  }
  Buffer dev_i32(std::vector<std::int32_t> values, Shape shape) {
    Buffer b = gpu_->alloc(DType::kI32, shape);
    gpu_->copy(b.tensor(), cpu_view(values, shape));
    return b;
  }
  // The values of a device tensor, widened to f32 by Ops::copy.
  std::vector<float> host(const Tensor& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    gpu_->copy(host_view(v, t.shape), t);
    return v;
  }
  // The raw bytes of a device tensor.
  std::vector<unsigned char> raw(const Tensor& t) {
    std::vector<unsigned char> v(t.bytes());
    gpu_->copy(Tensor{v.data(), t.dtype, t.shape, Device::kCpu}, t);
    return v;
  }
  void expect_close(const std::string& what, const Tensor& got, const std::vector<float>& want,
                    double tol) {
    const std::vector<float> g = host(got);
    EXPECT_TRUE(all_finite(g)) << what << ": NaN or Inf in the GPU result";
    EXPECT_TRUE(all_finite(want)) << what << ": NaN or Inf in the CPU reference";
    EXPECT_LT(rel_error(g, want), tol) << what;
  }

  std::unique_ptr<CudaOps> gpu_;
};

// Parameterized by the storage dtype (f32 or bf16).
class CudaOpsTest : public CudaOpsBase, public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    TAILOR_REQUIRE_GPU_OR_SKIP();
    make_ops();
  }
  void TearDown() override { gpu_.reset(); }

  [[nodiscard]] DType st() const { return GetParam(); }
  [[nodiscard]] double tol() const { return tolerance(GetParam()); }
  // Random normal values as the storage holds them.
  [[nodiscard]] std::vector<float> input(std::int64_t n, std::uint64_t stream,
                                         double sigma = 1.0) const {
    std::vector<float> v = random_normal(n, 77, stream, sigma);
    round_for(st(), v);
    return v;
  }
  [[nodiscard]] std::string label(const std::string& what) const {
    return what + " (" + dtype_label(st()) + ")";
  }
  Buffer dev(const std::vector<float>& values, Shape shape) {
    return CudaOpsBase::dev(values, shape, st());
  }
  Buffer dev_f32(const std::vector<float>& values, Shape shape) {
    return CudaOpsBase::dev(values, shape, DType::kF32);
  }
};

class CudaOpsPlain : public CudaOpsBase, public ::testing::Test {
 protected:
  void SetUp() override {
    TAILOR_REQUIRE_GPU_OR_SKIP();
    make_ops();
  }
  void TearDown() override { gpu_.reset(); }
};

// ---- construction and errors --------------------------------------------------------------------

TEST_F(CudaOpsPlain, DescribesTheDeviceAndInstallsDeviceMemory) {
  EXPECT_EQ(gpu_->device(), Device::kCuda);
  const std::string d = gpu_->describe();
  EXPECT_NE(d.find("cuBLASLt"), std::string::npos) << d;
  EXPECT_NE(d.find("CUDA runtime"), std::string::npos) << d;
  EXPECT_NE(gpu_->device_memory(), nullptr);
  EXPECT_GE(backend::cuda::CudaContext::device_count(), 1);
  const Buffer b = gpu_->alloc(DType::kF32, Shape{3, 5});  // zero-filled
  for (float v : host(b.tensor())) EXPECT_EQ(v, 0.0f);
}

TEST_F(CudaOpsPlain, OutOfMemoryIsARuntimeErrorNamingTheRequest) {
  constexpr std::size_t kPiB = std::size_t{1} << 50;
  try {
    (void)gpu_->context().allocate(kPiB);
    FAIL() << "allocating 1 PiB succeeded";
  } catch (const RuntimeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::to_string(kPiB)), std::string::npos) << msg;
    EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  }
  EXPECT_THROW((void)gpu_->alloc(DType::kF32, Shape{std::int64_t{1} << 48}),
               RuntimeError);
  // The device is still usable.
  const Buffer b = dev({1.0f, 2.0f}, Shape{2}, DType::kF32);
  EXPECT_EQ(host(b.tensor())[1], 2.0f);
}

TEST_F(CudaOpsPlain, ArgumentChecksAreInternalErrors) {
  std::vector<float> h(6, 1.0f);
  EXPECT_THROW(gpu_->scale(host_view(h, Shape{6}), 2.0), InternalError);  // host tensor
  const Buffer x = dev(h, Shape{2, 3}, DType::kBF16);
  const Buffer w = dev({1, 1, 1}, Shape{3}, DType::kBF16);
  const Buffer y = dev(h, Shape{2, 3}, DType::kBF16);
  const Buffer rstd_bf16 = dev({0, 0}, Shape{2}, DType::kBF16);  // statistics are f32
  EXPECT_THROW(gpu_->rmsnorm_forward(x.tensor(), w.tensor(), 1e-5, y.tensor(), rstd_bf16.tensor()),
               InternalError);
  const Buffer f = dev(h, Shape{6}, DType::kF32);
  EXPECT_THROW(gpu_->add(x.tensor().view(Shape{6}), f.tensor(), 1.0), InternalError);  // bf16 += f32
  const Buffer d = gpu_->alloc(DType::kF64, Shape{2, 3});
  EXPECT_THROW(gpu_->gemm(d.tensor(), false, d.tensor(), true, d.tensor(), 1.0, 0.0), InternalError);
}

// TAILOR_CUDA_SYNC=1: ops synchronize, and values in device memory are checked on the host.
TEST(CudaOpsSyncMode, ChecksDeviceArgumentsOnTheHost) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  ::setenv("TAILOR_CUDA_SYNC", "1", 1);
  auto ops = std::make_unique<CudaOps>(0);
  ::unsetenv("TAILOR_CUDA_SYNC");
  ASSERT_TRUE(ops->context().sync_mode());
  {
    Buffer table = ops->alloc(DType::kF32, Shape{4, 3});
    Buffer ids = ops->alloc(DType::kI32, Shape{2});
    std::vector<std::int32_t> bad = {1, -3};
    ops->copy(ids.tensor(), cpu_view(bad, Shape{2}));
    Buffer out = ops->alloc(DType::kF32, Shape{2, 3});
    EXPECT_THROW(ops->embedding_forward(table.tensor(), ids.tensor(), 0, out.tensor()),
                 InternalError);
    std::vector<std::int32_t> good = {1, 3};
    ops->copy(ids.tensor(), cpu_view(good, Shape{2}));
    EXPECT_NO_THROW(ops->embedding_forward(table.tensor(), ids.tensor(), 0, out.tensor()));
  }
  ops.reset();
}

// ---- copy ---------------------------------------------------------------------------------------

TEST_F(CudaOpsPlain, CopyConvertsAcrossHostAndDevice) {
  for (std::int64_t n : {1, 7, 4099}) {
    std::vector<double> src(static_cast<std::size_t>(n));
    const std::vector<float> r = random_normal(n, 5, 1);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<double>(r[i]) * 1.000123456789;
    const Tensor src_host{src.data(), DType::kF64, Shape{n}, Device::kCpu};

    // f64 host -> bf16 device -> f32 host: rounded through f32, as CpuOps and PyTorch do.
    Buffer b = gpu_->alloc(DType::kBF16, Shape{n});
    gpu_->copy(b.tensor(), src_host);
    const std::vector<float> back = host(b.tensor());
    for (std::size_t i = 0; i < src.size(); ++i)
      ASSERT_EQ(back[i], round_to_bf16(static_cast<float>(src[i]))) << n << " " << i;

    // f64 host -> f32 device -> f64 host.
    Buffer f = gpu_->alloc(DType::kF32, Shape{n});
    gpu_->copy(f.tensor(), src_host);
    std::vector<double> back64(src.size());
    gpu_->copy(Tensor{back64.data(), DType::kF64, Shape{n}, Device::kCpu}, f.tensor());
    for (std::size_t i = 0; i < src.size(); ++i)
      ASSERT_EQ(back64[i], static_cast<double>(static_cast<float>(src[i])));

    // f32 device -> bf16 device (cast kernel) and bf16 device -> f32 device.
    Buffer b2 = gpu_->alloc(DType::kBF16, Shape{n});
    gpu_->copy(b2.tensor(), f.tensor());
    EXPECT_EQ(raw(b2.tensor()), raw(b.tensor()));
    Buffer f2 = gpu_->alloc(DType::kF32, Shape{n});
    gpu_->copy(f2.tensor(), b2.tensor());
    EXPECT_EQ(host(f2.tensor()), back);

    // bf16 device -> f64 host, and device -> device of one dtype.
    gpu_->copy(Tensor{back64.data(), DType::kF64, Shape{n}, Device::kCpu}, b.tensor());
    for (std::size_t i = 0; i < src.size(); ++i)
      ASSERT_EQ(back64[i], static_cast<double>(back[i]));
    Buffer f3 = gpu_->alloc(DType::kF32, Shape{n});
    gpu_->copy(f3.tensor(), f.tensor());
    EXPECT_EQ(raw(f3.tensor()), raw(f.tensor()));

    // host -> host through the CUDA backend (f32 -> bf16).
    std::vector<float> fh(r.begin(), r.end());
    std::vector<std::uint16_t> bh(fh.size());
    gpu_->copy(Tensor{bh.data(), DType::kBF16, Shape{n}, Device::kCpu}, host_view(fh, Shape{n}));
    for (std::size_t i = 0; i < fh.size(); ++i) ASSERT_EQ(bh[i], float_to_bf16(fh[i]).bits);
  }
  // Row slices (offset views) on both sides, and i32.
  std::vector<std::int32_t> ids = {5, 6, 7, 8, 9, 10};
  const Buffer di = dev_i32(ids, Shape{3, 2});
  std::vector<std::int32_t> got(2);
  gpu_->copy(cpu_view(got, Shape{1, 2}), di.tensor().row_slice(1, 2));
  EXPECT_EQ(got, (std::vector<std::int32_t>{7, 8}));
}

TEST_F(CudaOpsPlain, CopyOfManyElementsCrossesInRounds) {
  const std::int64_t n = (std::int64_t{1} << 24) + 5;  // more than one host staging round
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 1000) * 0.37f;
  const Buffer b = dev(v, Shape{n}, DType::kBF16);
  const std::vector<float> back = host(b.tensor());
  for (std::size_t i = 0; i < v.size(); i += 4097) ASSERT_EQ(back[i], round_to_bf16(v[i])) << i;
  ASSERT_EQ(back.back(), round_to_bf16(v.back()));
}

// ---- GEMM ---------------------------------------------------------------------------------------

TEST_P(CudaOpsTest, GemmMatchesCpu) {
  struct Dims {
    std::int64_t m, n, k;
  };
  const std::vector<DType> c_types =
      st() == DType::kF32 ? std::vector<DType>{DType::kF32} : std::vector<DType>{DType::kBF16, DType::kF32};
  for (const Dims d : {Dims{7, 33, 65}, Dims{1, 5, 3}, Dims{64, 48, 100}, Dims{5, 3, 0}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
      for (DType ct : c_types) {
        const Shape as = ta ? Shape{d.k, d.m} : Shape{d.m, d.k};
        const Shape bs = tb ? Shape{d.n, d.k} : Shape{d.k, d.n};
        std::vector<float> a = input(d.m * d.k, 1), b = input(d.k * d.n, 2);
        std::vector<float> c = random_normal(d.m * d.n, 77, 3);
        round_for(ct, c);
        const double alpha = 0.7, beta = ct == DType::kF32 && st() == DType::kBF16 ? 1.0 : 0.3;
        const Buffer ga = dev(a, as), gb = dev(b, bs);
        const Buffer gc = CudaOpsBase::dev(c, Shape{d.m, d.n}, ct);
        cpu_ops().gemm(host_view(a, as), ta, host_view(b, bs), tb, host_view(c, Shape{d.m, d.n}),
                       alpha, beta);
        gpu_->gemm(ga.tensor(), ta, gb.tensor(), tb, gc.tensor(), alpha, beta);
        expect_close(label(fmt::format("gemm m{} n{} k{} ta{} tb{} c {}", d.m, d.n, d.k, ta, tb,
                                       dtype_name(ct))),
                     gc.tensor(), c, tol());
      }
    }
  }
}

TEST_P(CudaOpsTest, GemmIsBitwiseRepeatable) {
  const std::vector<float> a = input(96 * 130, 1), b = input(130 * 70, 2);
  const Buffer ga = dev(a, Shape{96, 130}), gb = dev(b, Shape{130, 70});
  const Buffer c1 = gpu_->alloc(st(), Shape{96, 70}), c2 = gpu_->alloc(st(), Shape{96, 70});
  gpu_->gemm(ga.tensor(), false, gb.tensor(), false, c1.tensor(), 1.0, 0.0);
  gpu_->gemm(ga.tensor(), false, gb.tensor(), false, c2.tensor(), 1.0, 0.0);
  EXPECT_EQ(raw(c1.tensor()), raw(c2.tensor()));
}

// ---- elementwise --------------------------------------------------------------------------------

TEST_P(CudaOpsTest, FillAddScale) {
  const std::int64_t n = 1001;
  const Buffer x = gpu_->alloc(st(), Shape{7, 143});
  gpu_->fill(x.tensor(), 0.3);
  for (float v : host(x.tensor())) ASSERT_EQ(v, st() == DType::kF32 ? 0.3f : round_to_bf16(0.3f));

  std::vector<float> y = input(n, 1), xs = input(n, 2);
  const Buffer gy = dev(y, Shape{n}), gx = dev(xs, Shape{n});
  cpu_ops().add(host_view(y, Shape{n}), host_view(xs, Shape{n}), -0.37);
  gpu_->add(gy.tensor(), gx.tensor(), -0.37);
  expect_close(label("add"), gy.tensor(), y, tol());

  cpu_ops().scale(host_view(y, Shape{n}), 1.7);
  gpu_->scale(gy.tensor(), 1.7);
  expect_close(label("scale"), gy.tensor(), y, tol());

  if (st() == DType::kBF16) {  // an f32 accumulator += a bf16 tensor
    std::vector<float> acc = random_normal(n, 77, 9);
    const Buffer gacc = dev_f32(acc, Shape{n});
    cpu_ops().add(host_view(acc, Shape{n}), host_view(xs, Shape{n}), 0.5);
    gpu_->add(gacc.tensor(), gx.tensor(), 0.5);
    expect_close("add f32 += bf16", gacc.tensor(), acc, 1e-6);
  }
}

TEST_F(CudaOpsPlain, FillOfI32AndF64) {
  const Buffer i = gpu_->alloc(DType::kI32, Shape{9});
  gpu_->fill(i.tensor(), 7.0);
  std::vector<std::int32_t> got(9);
  gpu_->copy(cpu_view(got, Shape{9}), i.tensor());
  for (std::int32_t v : got) EXPECT_EQ(v, 7);
  gpu_->fill(i.tensor(), 0.0);
  gpu_->copy(cpu_view(got, Shape{9}), i.tensor());
  for (std::int32_t v : got) EXPECT_EQ(v, 0);
  const Buffer d = gpu_->alloc(DType::kF64, Shape{5});
  gpu_->fill(d.tensor(), 2.5);
  std::vector<double> dh(5);
  gpu_->copy(Tensor{dh.data(), DType::kF64, Shape{5}, Device::kCpu}, d.tensor());
  for (double v : dh) EXPECT_EQ(v, 2.5);
}

TEST_P(CudaOpsTest, SumSquares) {
  for (std::int64_t n : {1, 4097, 100003}) {
    std::vector<float> x = input(n, 4);
    const Buffer gx = dev(x, Shape{n});
    const double want = cpu_ops().sum_squares(host_view(x, Shape{n}));
    const double got = gpu_->sum_squares(gx.tensor());
    EXPECT_NEAR(got, want, 1e-12 * want) << label("sum_squares") << " n " << n;
  }
  EXPECT_EQ(gpu_->sum_squares(gpu_->alloc(st(), Shape{0}).tensor()), 0.0);
}

// The grad norm's batched form: many f32 tensors (more than one launch's worth), runs of equal
// weights, an empty tensor; one value back, equal to the CPU's tensor-by-tensor sum to rounding.
TEST_F(CudaOpsPlain, WeightedSumSquaresBatchesManyTensors) {
  std::vector<std::vector<float>> host;
  std::vector<Buffer> bufs;
  std::vector<backend::Tensor> cpu_views, gpu_views;
  std::vector<double> weights;
  for (int i = 0; i < 300; ++i) {
    const std::int64_t n = i == 17 ? 0 : 1 + (i * 7919) % 5000;
    host.push_back(random_normal(n, 5, static_cast<std::uint64_t>(i)));
    weights.push_back(i < 100 ? 1.0 : (i < 250 ? 0.5 : 0.25));
  }
  for (std::size_t i = 0; i < host.size(); ++i) {
    const auto n = static_cast<std::int64_t>(host[i].size());
    bufs.push_back(dev(host[i], Shape{n}, DType::kF32));
    cpu_views.push_back(backend::Tensor{host[i].data(), DType::kF32, Shape{n}});
    gpu_views.push_back(bufs.back().tensor());
  }
  const double want = cpu_ops().weighted_sum_squares(cpu_views, weights);
  const double got = gpu_->weighted_sum_squares(gpu_views, weights);
  EXPECT_NEAR(got, want, 1e-12 * want);
  EXPECT_EQ(gpu_->weighted_sum_squares(gpu_views, weights), got) << "not repeatable";
}

TEST_P(CudaOpsTest, BiasForwardAndBackward) {
  const std::int64_t rows = 13, cols = 37;
  std::vector<float> y = input(rows * cols, 1), bias = input(cols, 2), dy = input(rows * cols, 3);
  std::vector<float> dbias = random_normal(cols, 77, 4);  // accumulated into (+=)
  const Buffer gy = dev(y, Shape{rows, cols}), gb = dev(bias, Shape{cols});
  const Buffer gdy = dev(dy, Shape{rows, cols}), gdb = dev_f32(dbias, Shape{cols});
  cpu_ops().add_bias(host_view(y, Shape{rows, cols}), host_view(bias, Shape{cols}));
  cpu_ops().bias_backward(host_view(dbias, Shape{cols}), host_view(dy, Shape{rows, cols}));
  gpu_->add_bias(gy.tensor(), gb.tensor());
  gpu_->bias_backward(gdb.tensor(), gdy.tensor());
  expect_close(label("add_bias"), gy.tensor(), y, tol());
  expect_close(label("bias_backward"), gdb.tensor(), dbias, tol());
}

TEST_P(CudaOpsTest, Dropout) {
  const std::int64_t rows = 13, cols = 37;
  std::vector<float> x = input(rows * cols, 1), want(x.size());
  const backend::DropoutKey key{42, 7, 3, 100, 20};
  cpu_ops().dropout(host_view(x, Shape{rows, cols}), host_view(want, Shape{rows, cols}), 0.25, key);
  const Buffer gx = dev(x, Shape{rows, cols}), gd = gpu_->alloc(st(), Shape{rows, cols});
  gpu_->dropout(gx.tensor(), gd.tensor(), 0.25, key);
  expect_close(label("dropout"), gd.tensor(), want, tol());
  const std::vector<float> got = host(gd.tensor());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i] == 0.0f, want[i] == 0.0f) << "mask differs at " << i;
  gpu_->dropout(gx.tensor(), gx.tensor(), 0.25, key);  // in place
  EXPECT_EQ(host(gx.tensor()), got);
}

// ---- embedding ----------------------------------------------------------------------------------

TEST_P(CudaOpsTest, EmbeddingOnAVocabShard) {
  const std::int64_t vocab = 50, d = 37, n = 29, begin = 10;
  std::vector<float> table = input(vocab * d, 1), dout = input(n * d, 2);
  std::vector<std::int32_t> ids = random_ints(n, 77, 3, 0, 80);  // some outside [10, 60)
  ids[3] = ids[5] = ids[11] = 12;                                   // repeated ids
  std::vector<float> out(static_cast<std::size_t>(n * d));
  std::vector<float> dtable = random_normal(vocab * d, 77, 4);
  cpu_ops().embedding_forward(host_view(table, Shape{vocab, d}), cpu_view(ids, Shape{n}), begin,
                              host_view(out, Shape{n, d}));
  cpu_ops().embedding_backward(host_view(dtable, Shape{vocab, d}), cpu_view(ids, Shape{n}), begin,
                               host_view(dout, Shape{n, d}));
  const Buffer gt = dev(table, Shape{vocab, d}), gi = dev_i32(ids, Shape{n});
  const Buffer go = gpu_->alloc(st(), Shape{n, d});
  const Buffer gdo = dev(dout, Shape{n, d});
  const Buffer gdt = dev_f32(random_normal(vocab * d, 77, 4), Shape{vocab, d});
  gpu_->embedding_forward(gt.tensor(), gi.tensor(), begin, go.tensor());
  gpu_->embedding_backward(gdt.tensor(), gi.tensor(), begin, gdo.tensor());
  expect_close(label("embedding_forward"), go.tensor(), out, tol());
  expect_close(label("embedding_backward"), gdt.tensor(), dtable, tol());
}

// ---- normalization ------------------------------------------------------------------------------

TEST_P(CudaOpsTest, RmsNorm) {
  for (const auto& [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{{7, 100}, {33, 64}, {1, 4096}}) {
    const Shape xs{rows, cols};
    std::vector<float> x = input(rows * cols, 1), w = input(cols, 2), dy = input(rows * cols, 3);
    std::vector<float> y(x.size()), rstd(static_cast<std::size_t>(rows)), dx(x.size());
    std::vector<float> dw = random_normal(cols, 77, 4);
    const std::vector<float> dw0 = dw;
    cpu_ops().rmsnorm_forward(host_view(x, xs), host_view(w, Shape{cols}), 1e-5, host_view(y, xs),
                              host_view(rstd, Shape{rows}));
    cpu_ops().rmsnorm_backward(host_view(dy, xs), host_view(x, xs), host_view(w, Shape{cols}),
                               host_view(rstd, Shape{rows}), host_view(dx, xs),
                               host_view(dw, Shape{cols}));
    const Buffer gx = dev(x, xs), gw = dev(w, Shape{cols}), gdy = dev(dy, xs);
    const Buffer gy = gpu_->alloc(st(), xs), gr = gpu_->alloc(DType::kF32, Shape{rows});
    const Buffer gdx = gpu_->alloc(st(), xs), gdw = dev_f32(dw0, Shape{cols});
    gpu_->rmsnorm_forward(gx.tensor(), gw.tensor(), 1e-5, gy.tensor(), gr.tensor());
    gpu_->rmsnorm_backward(gdy.tensor(), gx.tensor(), gw.tensor(), gr.tensor(), gdx.tensor(),
                           gdw.tensor());
    const std::string shape = fmt::format(" [{}, {}]", rows, cols);
    expect_close(label("rmsnorm y" + shape), gy.tensor(), y, tol());
    expect_close(label("rmsnorm rstd" + shape), gr.tensor(), rstd, 1e-5);
    expect_close(label("rmsnorm dx" + shape), gdx.tensor(), dx, tol());
    expect_close(label("rmsnorm dw" + shape), gdw.tensor(), dw, tol());
    // Frozen weight: no dw.
    gpu_->rmsnorm_backward(gdy.tensor(), gx.tensor(), gw.tensor(), gr.tensor(), gdx.tensor(),
                           Tensor{});
    expect_close(label("rmsnorm dx without dw" + shape), gdx.tensor(), dx, tol());
  }
}

TEST_P(CudaOpsTest, LayerNorm) {
  for (bool with_bias : {true, false}) {
    const std::int64_t rows = 19, cols = 100;
    const Shape xs{rows, cols};
    std::vector<float> x = input(rows * cols, 1), w = input(cols, 2), b = input(cols, 3);
    std::vector<float> dy = input(rows * cols, 4);
    std::vector<float> y(x.size()), mean(static_cast<std::size_t>(rows)), rstd(mean.size());
    std::vector<float> dx(x.size());
    std::vector<float> dw = random_normal(cols, 77, 5), db = random_normal(cols, 77, 6);
    const std::vector<float> dw0 = dw, db0 = db;
    const Tensor cb = with_bias ? host_view(b, Shape{cols}) : Tensor{};
    cpu_ops().layernorm_forward(host_view(x, xs), host_view(w, Shape{cols}), cb, 1e-5,
                                host_view(y, xs), host_view(mean, Shape{rows}),
                                host_view(rstd, Shape{rows}));
    cpu_ops().layernorm_backward(host_view(dy, xs), host_view(x, xs), host_view(w, Shape{cols}),
                                 host_view(mean, Shape{rows}), host_view(rstd, Shape{rows}),
                                 host_view(dx, xs), host_view(dw, Shape{cols}),
                                 host_view(db, Shape{cols}));
    const Buffer gx = dev(x, xs), gw = dev(w, Shape{cols}), gb = dev(b, Shape{cols});
    const Buffer gdy = dev(dy, xs);
    const Buffer gy = gpu_->alloc(st(), xs), gm = gpu_->alloc(DType::kF32, Shape{rows});
    const Buffer gr = gpu_->alloc(DType::kF32, Shape{rows}), gdx = gpu_->alloc(st(), xs);
    const Buffer gdw = dev_f32(dw0, Shape{cols}), gdb = dev_f32(db0, Shape{cols});
    gpu_->layernorm_forward(gx.tensor(), gw.tensor(), with_bias ? gb.tensor() : Tensor{}, 1e-5,
                            gy.tensor(), gm.tensor(), gr.tensor());
    gpu_->layernorm_backward(gdy.tensor(), gx.tensor(), gw.tensor(), gm.tensor(), gr.tensor(),
                             gdx.tensor(), gdw.tensor(), gdb.tensor());
    const std::string tag = with_bias ? " (bias)" : " (no bias)";
    expect_close(label("layernorm y" + tag), gy.tensor(), y, tol());
    expect_close(label("layernorm mean" + tag), gm.tensor(), mean, 1e-5);
    expect_close(label("layernorm rstd" + tag), gr.tensor(), rstd, 1e-5);
    expect_close(label("layernorm dx" + tag), gdx.tensor(), dx, tol());
    expect_close(label("layernorm dw" + tag), gdw.tensor(), dw, tol());
    expect_close(label("layernorm db" + tag), gdb.tensor(), db, tol());
  }
}

// ---- RoPE ---------------------------------------------------------------------------------------

TEST_P(CudaOpsTest, RopeForwardAndBackward) {
  const std::int64_t n = 7, heads = 3, dh = 16;
  const Shape xs{n, heads, dh};
  std::vector<float> x = input(n * heads * dh, 1);
  std::vector<std::int32_t> pos = random_ints(n, 77, 2, 0, 100);
  std::vector<float> inv_freq(static_cast<std::size_t>(dh / 2));
  for (std::size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * static_cast<double>(i) / dh));
  const Buffer gx = dev(x, xs), gp = dev_i32(pos, Shape{n});
  const Buffer gf = dev_f32(inv_freq, Shape{dh / 2});
  std::vector<float> want = x;
  cpu_ops().rope_forward(host_view(want, xs), cpu_view(pos, Shape{n}), host_view(inv_freq, Shape{dh / 2}));
  gpu_->rope_forward(gx.tensor(), gp.tensor(), gf.tensor());
  expect_close(label("rope_forward"), gx.tensor(), want, tol());
  std::vector<float> g = input(n * heads * dh, 3);
  const Buffer gg = dev(g, xs);
  cpu_ops().rope_backward(host_view(g, xs), cpu_view(pos, Shape{n}), host_view(inv_freq, Shape{dh / 2}));
  gpu_->rope_backward(gg.tensor(), gp.tensor(), gf.tensor());
  expect_close(label("rope_backward"), gg.tensor(), g, tol());
}

// ---- attention ----------------------------------------------------------------------------------

TEST_P(CudaOpsTest, AttentionForwardAndBackward) {
  const std::int64_t b = 2, t = 37, hq = 4, hkv = 2, dh = 16;
  const Shape qs{b, t, hq, dh}, ks{b, t, hkv, dh}, ls{b, hq, t};
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  for (const auto& [docs, window] : {std::pair{false, 0}, std::pair{true, 0}, std::pair{false, 6},
                                     std::pair{true, 9}}) {
    std::vector<float> q = input(qs.numel(), 1), k = input(ks.numel(), 2), v = input(ks.numel(), 3);
    std::vector<float> dout = input(qs.numel(), 4);
    std::vector<std::int32_t> doc(static_cast<std::size_t>(b * t));
    for (std::int64_t i = 0; i < b * t; ++i)
      doc[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i % t) < 11 ? 0 : (i % t) < 30 ? 1 : 2);
    std::vector<float> out(q.size()), lse(static_cast<std::size_t>(ls.numel()));
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    const Tensor cdoc = docs ? cpu_view(doc, Shape{b, t}) : Tensor{};
    cpu_ops().attention_forward(host_view(q, qs), host_view(k, ks), host_view(v, ks), cdoc, scale,
                                window, host_view(out, qs), host_view(lse, ls));
    cpu_ops().attention_backward(host_view(dout, qs), host_view(q, qs), host_view(k, ks),
                                 host_view(v, ks), host_view(out, qs), host_view(lse, ls), cdoc,
                                 scale, window, host_view(dq, qs), host_view(dk, ks),
                                 host_view(dv, ks));
    const Buffer gq = dev(q, qs), gk = dev(k, ks), gv = dev(v, ks), gdo = dev(dout, qs);
    const Buffer gdoc = dev_i32(doc, Shape{b, t});
    const Buffer go = gpu_->alloc(st(), qs), gl = gpu_->alloc(DType::kF32, ls);
    const Buffer gdq = gpu_->alloc(st(), qs), gdk = gpu_->alloc(st(), ks), gdv = gpu_->alloc(st(), ks);
    const Tensor ddoc = docs ? gdoc.tensor() : Tensor{};
    gpu_->attention_forward(gq.tensor(), gk.tensor(), gv.tensor(), ddoc, scale, window,
                            go.tensor(), gl.tensor());
    gpu_->attention_backward(gdo.tensor(), gq.tensor(), gk.tensor(), gv.tensor(), go.tensor(),
                             gl.tensor(), ddoc, scale, window, gdq.tensor(), gdk.tensor(),
                             gdv.tensor());
    const std::string tag = std::string(docs ? " (documents)" : "") +
                            (window > 0 ? " (window " + std::to_string(window) + ")" : "");
    expect_close(label("attention out" + tag), go.tensor(), out, tol());
    expect_close(label("attention lse" + tag), gl.tensor(), lse, tol());
    expect_close(label("attention dq" + tag), gdq.tensor(), dq, tol());
    expect_close(label("attention dk" + tag), gdk.tensor(), dk, tol());
    expect_close(label("attention dv" + tag), gdv.tensor(), dv, tol());
    // Deterministic: a second backward gives the same bits.
    const std::vector<unsigned char> dq1 = raw(gdq.tensor()), dk1 = raw(gdk.tensor());
    gpu_->attention_backward(gdo.tensor(), gq.tensor(), gk.tensor(), gv.tensor(), go.tensor(),
                             gl.tensor(), ddoc, scale, window, gdq.tensor(), gdk.tensor(),
                             gdv.tensor());
    EXPECT_EQ(raw(gdq.tensor()), dq1) << label("attention dq repeat" + tag);
    EXPECT_EQ(raw(gdk.tensor()), dk1) << label("attention dk repeat" + tag);
  }
}

TEST_P(CudaOpsTest, AttentionOverACache) {
  const std::int64_t b = 2, tq = 3, cap = 40, hq = 4, hkv = 2, dh = 16;
  const Shape qs{b, tq, hq, dh}, ks{b, cap, hkv, dh};
  const double scale = 0.25;
  std::vector<float> q = input(qs.numel(), 1), k = input(ks.numel(), 2), v = input(ks.numel(), 3);
  std::vector<std::int32_t> start = {5, 30};
  for (const std::int64_t window : {0, 7}) {
    std::vector<float> out(q.size());
    cpu_ops().attention_cached(host_view(q, qs), host_view(k, ks), host_view(v, ks),
                               cpu_view(start, Shape{b}), scale, window, host_view(out, qs));
    const Buffer gq = dev(q, qs), gk = dev(k, ks), gv = dev(v, ks), gs = dev_i32(start, Shape{b});
    const Buffer go = gpu_->alloc(st(), qs);
    gpu_->attention_cached(gq.tensor(), gk.tensor(), gv.tensor(), gs.tensor(), scale, window,
                           go.tensor());
    expect_close(label("attention_cached window " + std::to_string(window)), go.tensor(), out,
                 tol());
  }
}

// ---- activations --------------------------------------------------------------------------------

TEST_P(CudaOpsTest, SwigluAndGelu) {
  const std::int64_t n = 13, f = 77;
  const Shape s{n, f};
  std::vector<float> gate = input(n * f, 1), up = input(n * f, 2), dout = input(n * f, 3);
  std::vector<float> out(gate.size()), dgate(gate.size()), dup(gate.size());
  cpu_ops().swiglu_forward(host_view(gate, s), host_view(up, s), host_view(out, s));
  cpu_ops().swiglu_backward(host_view(dout, s), host_view(gate, s), host_view(up, s),
                            host_view(dgate, s), host_view(dup, s));
  const Buffer gg = dev(gate, s), gu = dev(up, s), gd = dev(dout, s);
  const Buffer go = gpu_->alloc(st(), s), gdg = gpu_->alloc(st(), s), gdu = gpu_->alloc(st(), s);
  gpu_->swiglu_forward(gg.tensor(), gu.tensor(), go.tensor());
  gpu_->swiglu_backward(gd.tensor(), gg.tensor(), gu.tensor(), gdg.tensor(), gdu.tensor());
  expect_close(label("swiglu out"), go.tensor(), out, tol());
  expect_close(label("swiglu dgate"), gdg.tensor(), dgate, tol());
  expect_close(label("swiglu dup"), gdu.tensor(), dup, tol());

  std::vector<float> gout(gate.size()), dx(gate.size());
  cpu_ops().gelu_forward(host_view(gate, s), host_view(gout, s));
  cpu_ops().gelu_backward(host_view(dout, s), host_view(gate, s), host_view(dx, s));
  const Buffer ggo = gpu_->alloc(st(), s), gdx = gpu_->alloc(st(), s);
  gpu_->gelu_forward(gg.tensor(), ggo.tensor());
  gpu_->gelu_backward(gd.tensor(), gg.tensor(), gdx.tensor());
  expect_close(label("gelu out"), ggo.tensor(), gout, tol());
  expect_close(label("gelu dx"), gdx.tensor(), dx, tol());
}

// ---- cross-entropy ------------------------------------------------------------------------------

TEST_P(CudaOpsTest, CrossEntropy) {
  const std::int64_t n = 13, vocab = 300, valid = 290;
  const Shape s{n, vocab};
  std::vector<float> logits = input(n * vocab, 1, 3.0);
  std::vector<std::int32_t> targets = random_ints(n, 77, 2, 0, valid);
  targets[2] = targets[9] = backend::kIgnoreIndex;
  const double dscale = 1.0 / static_cast<double>(n);
  std::vector<float> losses(static_cast<std::size_t>(n)), dlogits(logits.size());
  cpu_ops().cross_entropy(host_view(logits, s), cpu_view(targets, Shape{n}), valid,
                          host_view(losses, Shape{n}), host_view(dlogits, s), dscale);
  const Buffer gl = dev(logits, s), gt = dev_i32(targets, Shape{n});
  const Buffer gloss = gpu_->alloc(DType::kF32, Shape{n}), gd = gpu_->alloc(st(), s);
  gpu_->cross_entropy(gl.tensor(), gt.tensor(), valid, gloss.tensor(), gd.tensor(), dscale);
  expect_close(label("cross_entropy losses"), gloss.tensor(), losses, tol());
  expect_close(label("cross_entropy dlogits"), gd.tensor(), dlogits, tol());
  // Without a gradient, and with the gradient written over the logits.
  const Buffer gloss2 = gpu_->alloc(DType::kF32, Shape{n});
  gpu_->cross_entropy(gl.tensor(), gt.tensor(), valid, gloss2.tensor(), Tensor{}, dscale);
  expect_close(label("cross_entropy losses only"), gloss2.tensor(), losses, tol());
  gpu_->cross_entropy(gl.tensor(), gt.tensor(), valid, gloss2.tensor(), gl.tensor(), dscale);
  expect_close(label("cross_entropy in place"), gl.tensor(), dlogits, tol());
}

TEST_P(CudaOpsTest, VocabParallelCrossEntropyPhases) {
  const std::int64_t n = 11, cols = 150, valid = 140, begin = 100;
  const Shape s{n, cols};
  std::vector<float> logits = input(n * cols, 1, 3.0);
  std::vector<std::int32_t> targets = random_ints(n, 77, 2, 0, 400);  // some in [100, 240)
  targets[0] = 105;
  targets[4] = backend::kIgnoreIndex;
  std::vector<float> row_max(static_cast<std::size_t>(n)), stats(static_cast<std::size_t>(2 * n));
  std::vector<float> losses(row_max.size()), dlogits(logits.size());
  const Tensor ct = cpu_view(targets, Shape{n});
  cpu_ops().ce_local_max(host_view(logits, s), valid, host_view(row_max, Shape{n}));
  cpu_ops().ce_local_sums(host_view(logits, s), ct, begin, valid, host_view(row_max, Shape{n}),
                          host_view(stats, Shape{2, n}));
  cpu_ops().ce_finish(host_view(logits, s), ct, begin, valid, host_view(row_max, Shape{n}),
                      host_view(stats, Shape{2, n}), host_view(losses, Shape{n}),
                      host_view(dlogits, s), 0.5);
  const Buffer gl = dev(logits, s), gt = dev_i32(targets, Shape{n});
  const Buffer gm = gpu_->alloc(DType::kF32, Shape{n}), gs = gpu_->alloc(DType::kF32, Shape{2, n});
  const Buffer gloss = gpu_->alloc(DType::kF32, Shape{n}), gd = gpu_->alloc(st(), s);
  gpu_->ce_local_max(gl.tensor(), valid, gm.tensor());
  expect_close(label("ce_local_max"), gm.tensor(), row_max, 1e-6);
  gpu_->ce_local_sums(gl.tensor(), gt.tensor(), begin, valid, gm.tensor(), gs.tensor());
  expect_close(label("ce_local_sums"), gs.tensor(), stats, tol());
  gpu_->ce_finish(gl.tensor(), gt.tensor(), begin, valid, gm.tensor(), gs.tensor(), gloss.tensor(),
                  gd.tensor(), 0.5);
  expect_close(label("ce_finish losses"), gloss.tensor(), losses, tol());
  expect_close(label("ce_finish dlogits"), gd.tensor(), dlogits, tol());
}

// ---- optimizer ----------------------------------------------------------------------------------

TEST_F(CudaOpsPlain, AdamWMatchesCpu) {
  const std::int64_t n = 1003;
  std::vector<float> p = random_normal(n, 3, 1), m(static_cast<std::size_t>(n)), v(m.size());
  const Buffer gp = dev(p, Shape{n}, DType::kF32), gm = gpu_->alloc(DType::kF32, Shape{n});
  const Buffer gv = gpu_->alloc(DType::kF32, Shape{n});
  for (std::int64_t step = 1; step <= 3; ++step) {
    std::vector<float> g = random_normal(n, 3, static_cast<std::uint64_t>(10 + step));
    const Buffer gg = dev(g, Shape{n}, DType::kF32);
    backend::AdamWHyper h;
    h.lr = 1e-2;
    h.weight_decay = 0.1;
    h.step = step;
    cpu_ops().adamw_update(host_view(p, Shape{n}), host_view(g, Shape{n}), host_view(m, Shape{n}),
                           host_view(v, Shape{n}), h);
    gpu_->adamw_update(gp.tensor(), gg.tensor(), gm.tensor(), gv.tensor(), h);
  }
  expect_close("adamw param", gp.tensor(), p, 1e-6);
  expect_close("adamw m", gm.tensor(), m, 1e-6);
  expect_close("adamw v", gv.tensor(), v, 1e-6);
}

// The fused master update writes the bf16 weights in the same kernel: the same bits as the update
// followed by a rounding copy.
TEST_F(CudaOpsPlain, FusedMasterUpdateEqualsUpdateThenCopy) {
  const std::int64_t n = 5003;
  const std::vector<float> p = random_normal(n, 3, 1), g = random_normal(n, 3, 2);
  const Buffer master_a = dev(p, Shape{n}, DType::kF32), master_b = dev(p, Shape{n}, DType::kF32);
  const Buffer grad = dev(g, Shape{n}, DType::kF32);
  const Buffer ma = gpu_->alloc(DType::kF32, Shape{n}), va = gpu_->alloc(DType::kF32, Shape{n});
  const Buffer mb = gpu_->alloc(DType::kF32, Shape{n}), vb = gpu_->alloc(DType::kF32, Shape{n});
  const Buffer wa = gpu_->alloc(DType::kBF16, Shape{n}), wb = gpu_->alloc(DType::kBF16, Shape{n});
  backend::AdamWHyper h;
  h.lr = 1e-2;
  h.weight_decay = 0.1;
  for (std::int64_t step = 1; step <= 2; ++step) {
    h.step = step;
    gpu_->adamw_update_master(master_a.tensor(), grad.tensor(), ma.tensor(), va.tensor(), h,
                              wa.tensor());
    gpu_->adamw_update(master_b.tensor(), grad.tensor(), mb.tensor(), vb.tensor(), h);
    gpu_->copy(wb.tensor(), master_b.tensor());
  }
  EXPECT_EQ(host(wa.tensor()), host(wb.tensor()));
  EXPECT_EQ(host(master_a.tensor()), host(master_b.tensor()));
}

// optimizer.moments: bf16 — the reference is the CPU update in f32 on the widened moments, rounded
// to bf16 after every step (what the kernel computes).
TEST_F(CudaOpsPlain, AdamWWithBf16MomentsMatchesCpu) {
  const std::int64_t n = 1003;
  std::vector<float> p = random_normal(n, 3, 1), m(static_cast<std::size_t>(n)), v(m.size());
  const Buffer gp = dev(p, Shape{n}, DType::kF32), gm = gpu_->alloc(DType::kBF16, Shape{n});
  const Buffer gv = gpu_->alloc(DType::kBF16, Shape{n});
  for (std::int64_t step = 1; step <= 3; ++step) {
    std::vector<float> g = random_normal(n, 3, static_cast<std::uint64_t>(10 + step));
    const Buffer gg = dev(g, Shape{n}, DType::kF32);
    backend::AdamWHyper h;
    h.lr = 1e-2;
    h.weight_decay = 0.1;
    h.step = step;
    cpu_ops().adamw_update(host_view(p, Shape{n}), host_view(g, Shape{n}), host_view(m, Shape{n}),
                           host_view(v, Shape{n}), h);
    round_for(DType::kBF16, m);
    round_for(DType::kBF16, v);
    gpu_->adamw_update(gp.tensor(), gg.tensor(), gm.tensor(), gv.tensor(), h);
  }
  expect_close("adamw param", gp.tensor(), p, 1e-5);
  expect_close("adamw m", gm.tensor(), m, 1e-2);
  expect_close("adamw v", gv.tensor(), v, 1e-2);
}

std::string storage_name(const ::testing::TestParamInfo<DType>& param) {
  return dtype_label(param.param);
}
INSTANTIATE_TEST_SUITE_P(Storage, CudaOpsTest, ::testing::Values(DType::kF32, DType::kBF16),
                         storage_name);

// ---- NCCL, one rank -----------------------------------------------------------------------------

TEST_F(CudaOpsPlain, NcclCommunicatorOfOneRank) {
  comm::SelfCommunicator self;
  std::unique_ptr<comm::NcclCommunicator> nccl = comm::NcclCommunicator::create(self, gpu_->stream());
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_NE(nccl->describe().find("NCCL"), std::string::npos);

  for (std::int64_t n : {1, 7, 4099}) {
    const std::vector<float> x = random_normal(n, 9, 1);
    // Device tensors, each op ordered after the producing copy by events (no host sync).
    const Buffer a = dev(x, Shape{n}, DType::kF32);
    gpu_->scale(a.tensor(), 2.0);  // queued on the compute stream before the all-reduce
    nccl->all_reduce(a.tensor(), comm::ReduceOp::kSum);
    gpu_->scale(a.tensor(), 0.5);  // queued after it
    EXPECT_EQ(host(a.tensor()), x);
    nccl->all_reduce(a.tensor(), comm::ReduceOp::kMax);
    EXPECT_EQ(host(a.tensor()), x);
    // Started without making the compute stream wait; wait() orders the next op after it.
    gpu_->scale(a.tensor(), 4.0);
    nccl->all_reduce_start(a.tensor(), comm::ReduceOp::kSum);
    nccl->wait();
    gpu_->scale(a.tensor(), 0.25);
    EXPECT_EQ(host(a.tensor()), x);

    const Buffer bf = dev(x, Shape{n}, DType::kBF16);
    nccl->all_reduce(bf.tensor(), comm::ReduceOp::kSum);
    std::vector<float> xb = x;
    round_for(DType::kBF16, xb);
    EXPECT_EQ(host(bf.tensor()), xb);

    const Buffer gathered = gpu_->alloc(DType::kF32, Shape{n});
    nccl->all_gather(a.tensor(), gathered.tensor());
    EXPECT_EQ(host(gathered.tensor()), x);
    const Buffer scattered = gpu_->alloc(DType::kF32, Shape{n});
    nccl->reduce_scatter(gathered.tensor(), scattered.tensor());
    EXPECT_EQ(host(scattered.tensor()), x);
    nccl->broadcast(scattered.tensor(), 0);
    EXPECT_EQ(host(scattered.tensor()), x);

    std::vector<std::int32_t> ids(static_cast<std::size_t>(n), 3);
    const Buffer gi = dev_i32(ids, Shape{n});
    nccl->all_reduce(gi.tensor(), comm::ReduceOp::kSum);
    std::vector<std::int32_t> back(ids.size());
    gpu_->copy(cpu_view(back, Shape{n}), gi.tensor());
    EXPECT_EQ(back, ids);
  }
  // Host tensors (the scalar conveniences) are staged through the device.
  EXPECT_EQ(nccl->all_reduce_sum(3.25), 3.25);
  EXPECT_EQ(nccl->all_reduce_max(-1.5), -1.5);
  EXPECT_TRUE(nccl->any(true));
  EXPECT_FALSE(nccl->any(false));
  nccl->barrier();

  std::unique_ptr<comm::Communicator> sub = nccl->split(0, 0);
  ASSERT_EQ(sub->size(), 1);
  const Buffer s = dev({1.0f, 2.0f, 3.0f}, Shape{3}, DType::kF32);
  sub->all_reduce(s.tensor(), comm::ReduceOp::kSum);
  EXPECT_EQ(host(s.tensor()), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  sub.reset();
  nccl.reset();
}

}  // namespace
}  // namespace tailor::testing
