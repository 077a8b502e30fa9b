// cuDNN's fused attention (src/backend/cuda/cudnn_attention.*, issue 20 item 1) through CudaOps,
// against two independent references: the CPU backend (CpuOps::attention_*, f32 on the same
// bf16-rounded inputs) and Tailor's own kernels (CudaOps with runtime.attention: tailor). Shapes
// with grouped-query heads (Hq / Hkv = 1, 2, 4, 8), head dims 64 and 128, T not a multiple of 64;
// out and lse of the forward, dq, dk, dv of the backward (run on the CPU's out and lse, so it is
// tested in isolation), run-to-run bitwise equality of both directions, and that cuDNN really
// ran (CudaOps::last_attention_was_cudnn). The sliding window (CudnnAttention's own argument; the
// ops take none yet) against a plain double loop. The fallbacks (f32 storage, document masks,
// runtime.attention: tailor, a head dim cuDNN refuses) run Tailor's kernels, with or without cuDNN
// in the build. Label gpu: skipped without a GPU; the cuDNN cases skip in a build without cuDNN.
#include "backend/cuda/cudnn_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <gtest/gtest.h>

#include "backend/cuda/cuda_ops.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"

namespace tailor::testing {
namespace {

using backend::Buffer;
using backend::Device;
using backend::Tensor;
using backend::cuda::AttentionPath;
using backend::cuda::CudaOps;

constexpr double kBf16Tol = 1e-2;  // bf16 storage vs the CPU's f32 (ARCHITECTURE.md, Tolerances)
// lse is f32 in both, from the same bf16 inputs; cuDNN sums the products on tensor cores in
// another order and exponentiates its own way.
constexpr double kLseTol = 1e-4;

struct Dims {
  std::int64_t batch, seq, heads, kv_heads, head_dim;
};

// (B, T, Hq, Hkv, Dh): GQA 2, MHA, MQA (8:1), GQA 4 with T = 1, T not a multiple of 64.
const Dims kShapes[] = {
    {2, 100, 4, 2, 64}, {1, 257, 4, 4, 128}, {2, 64, 8, 1, 128},
    {1, 1, 4, 1, 64},   {3, 37, 6, 3, 64},   {1, 513, 8, 2, 128},
};

std::string shape_name(const ::testing::TestParamInfo<int>& info) {
  const Dims& d = kShapes[info.param];
  return fmt::format("b{}_t{}_h{}_kv{}_d{}", d.batch, d.seq, d.heads, d.kv_heads, d.head_dim);
}

bool built_with_cudnn() {
#ifdef TAILOR_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

double l2(const std::vector<float>& v) {
  long double s = 0.0L;
  for (float x : v) s += static_cast<long double>(x) * x;
  return static_cast<double>(std::sqrt(s));
}

double rel_diff(const std::vector<float>& got, const std::vector<float>& want, double floor = 0.0) {
  std::vector<float> d(got.size());
  for (std::size_t i = 0; i < got.size(); ++i) d[i] = got[i] - want[i];
  return l2(d) / std::max(l2(want), floor);
}

// The inputs of one case, rounded to bf16, and the CPU's results on them.
struct Case {
  Dims d;
  float scale;
  Shape qs, kvs, ls;
  std::vector<float> q, k, v, dout, out, lse, dq, dk, dv;

  explicit Case(const Dims& dims, std::uint64_t seed = 51) : d(dims) {
    const std::int64_t nq = d.batch * d.seq * d.heads * d.head_dim;
    const std::int64_t nkv = d.batch * d.seq * d.kv_heads * d.head_dim;
    scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
    qs = {d.batch, d.seq, d.heads, d.head_dim};
    kvs = {d.batch, d.seq, d.kv_heads, d.head_dim};
    ls = {d.batch, d.heads, d.seq};
    q = random_normal(nq, seed, 1);
    k = random_normal(nkv, seed, 2);
    v = random_normal(nkv, seed, 3);
    dout = random_normal(nq, seed, 4);
    for (auto* x : {&q, &k, &v, &dout}) round_for(DType::kBF16, *x);
    out.resize(static_cast<std::size_t>(nq));
    lse.resize(static_cast<std::size_t>(d.batch * d.heads * d.seq));
    dq.resize(static_cast<std::size_t>(nq));
    dk.resize(static_cast<std::size_t>(nkv));
    dv.resize(static_cast<std::size_t>(nkv));
    auto& ops = cpu_ops();
    ops.attention_forward(cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs), cpu_absent(), scale,
                          0, cpu_view(out, qs), cpu_view(lse, ls));
    round_for(DType::kBF16, out);  // the backward's input, as the GPU stores it
    ops.attention_backward(cpu_view(dout, qs), cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs),
                           cpu_view(out, qs), cpu_view(lse, ls), cpu_absent(), scale, 0,
                           cpu_view(dq, qs), cpu_view(dk, kvs), cpu_view(dv, kvs));
  }
};

// One direction's results on the device.
struct Results {
  std::vector<float> out, lse, dq, dk, dv;
  std::vector<unsigned char> out_raw, lse_raw, dq_raw, dk_raw, dv_raw;
  bool forward_cudnn = false, backward_cudnn = false;
};

class CudnnAttentionBase {
 protected:
  void make() { gpu_ = std::make_unique<CudaOps>(0); }

  Buffer dev(const std::vector<float>& values, Shape shape, DType dtype) {
    Buffer b = gpu_->alloc(dtype, shape);
    std::vector<float> v = values;
    gpu_->copy(b.tensor(), cpu_view(v, shape));
    return b;
  }
  std::vector<float> host(const Tensor& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    gpu_->copy(cpu_view(v, t.shape), t);
    return v;
  }
  std::vector<unsigned char> raw(const Tensor& t) {
    std::vector<unsigned char> v(t.bytes());
    gpu_->copy(Tensor{v.data(), t.dtype, t.shape, Device::kCpu}, t);
    return v;
  }

  // Forward on the inputs; backward on the CPU's out and lse (isolated from the forward).
  Results run(const Case& c, AttentionPath path) {
    gpu_->set_attention_path(path);
    Buffer q = dev(c.q, c.qs, DType::kBF16), k = dev(c.k, c.kvs, DType::kBF16),
           v = dev(c.v, c.kvs, DType::kBF16), dout = dev(c.dout, c.qs, DType::kBF16);
    Buffer out_ref = dev(c.out, c.qs, DType::kBF16), lse_ref = dev(c.lse, c.ls, DType::kF32);
    Buffer out = gpu_->alloc(DType::kBF16, c.qs), lse = gpu_->alloc(DType::kF32, c.ls);
    Buffer dq = gpu_->alloc(DType::kBF16, c.qs), dk = gpu_->alloc(DType::kBF16, c.kvs),
           dv = gpu_->alloc(DType::kBF16, c.kvs);
    Results r;
    gpu_->attention_forward(q.tensor(), k.tensor(), v.tensor(), Tensor{}, c.scale, 0, out.tensor(),
                            lse.tensor());
    r.forward_cudnn = gpu_->last_attention_was_cudnn();
    gpu_->attention_backward(dout.tensor(), q.tensor(), k.tensor(), v.tensor(), out_ref.tensor(),
                             lse_ref.tensor(), Tensor{}, c.scale, 0, dq.tensor(), dk.tensor(),
                             dv.tensor());
    r.backward_cudnn = gpu_->last_attention_was_cudnn();
    gpu_->synchronize();
    r.out = host(out.tensor());
    r.lse = host(lse.tensor());
    r.dq = host(dq.tensor());
    r.dk = host(dk.tensor());
    r.dv = host(dv.tensor());
    r.out_raw = raw(out.tensor());
    r.lse_raw = raw(lse.tensor());
    r.dq_raw = raw(dq.tensor());
    r.dk_raw = raw(dk.tensor());
    r.dv_raw = raw(dv.tensor());
    return r;
  }

  std::unique_ptr<CudaOps> gpu_;
};

// Skips without a GPU (a failure under TAILOR_REQUIRE_GPU=1) or without cuDNN in the build.
#define TAILOR_CUDNN_SETUP()                                                           \
  do {                                                                                 \
    TAILOR_REQUIRE_GPU_OR_SKIP();                                                      \
    if (!built_with_cudnn()) GTEST_SKIP() << "this build has no cuDNN (TAILOR_CUDNN)"; \
    make();                                                                            \
  } while (0)

class CudnnAttentionTest : public CudnnAttentionBase, public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { TAILOR_CUDNN_SETUP(); }
  void TearDown() override { gpu_.reset(); }
};

class CudnnAttentionCases : public CudnnAttentionBase, public ::testing::Test {
 protected:
  void SetUp() override { TAILOR_CUDNN_SETUP(); }
  void TearDown() override { gpu_.reset(); }
};

TEST_P(CudnnAttentionTest, MatchesCpuAndTailorKernelsAndIsDeterministic) {
  const Case c(kShapes[GetParam()]);
  backend::AttentionDims dims;
  dims.batch = c.d.batch;
  dims.seq = dims.keys = c.d.seq;
  dims.hq = c.d.heads;
  dims.hkv = c.d.kv_heads;
  dims.dh = c.d.head_dim;
  ASSERT_EQ(gpu_->cudnn_attention_unsupported(dims, DType::kBF16), "");

  const Results a = run(c, AttentionPath::kCudnn);
  ASSERT_TRUE(a.forward_cudnn) << "the forward fell back to Tailor's kernels";
  ASSERT_TRUE(a.backward_cudnn) << "the backward fell back to Tailor's kernels";
  for (const auto* x : {&a.out, &a.lse, &a.dq, &a.dk, &a.dv}) EXPECT_TRUE(all_finite(*x));
  // Against the CPU. dq and dk vanish when every query sees only itself (T = 1).
  const double floor = 1e-2 * l2(c.dv);
  EXPECT_LT(rel_diff(a.out, c.out), kBf16Tol) << "out vs CPU";
  EXPECT_LT(rel_diff(a.lse, c.lse), kLseTol) << "lse vs CPU";
  EXPECT_LT(rel_diff(a.dq, c.dq, floor), kBf16Tol) << "dq vs CPU";
  EXPECT_LT(rel_diff(a.dk, c.dk, floor), kBf16Tol) << "dk vs CPU";
  EXPECT_LT(rel_diff(a.dv, c.dv), kBf16Tol) << "dv vs CPU";

  // Against Tailor's kernels on the same device tensors.
  const Results t = run(c, AttentionPath::kTailor);
  EXPECT_FALSE(t.forward_cudnn);
  EXPECT_LT(rel_diff(a.out, t.out), kBf16Tol) << "out vs Tailor's kernel";
  EXPECT_LT(rel_diff(a.lse, t.lse), kLseTol) << "lse vs Tailor's kernel";
  EXPECT_LT(rel_diff(a.dq, t.dq, floor), kBf16Tol) << "dq vs Tailor's kernel";
  EXPECT_LT(rel_diff(a.dk, t.dk, floor), kBf16Tol) << "dk vs Tailor's kernel";
  EXPECT_LT(rel_diff(a.dv, t.dv), kBf16Tol) << "dv vs Tailor's kernel";

  // Run to run: bitwise (the plans are cached; the second run reuses them).
  const Results b = run(c, AttentionPath::kCudnn);
  EXPECT_TRUE(a.out_raw == b.out_raw) << "forward out not deterministic";
  EXPECT_TRUE(a.lse_raw == b.lse_raw) << "lse not deterministic";
  EXPECT_TRUE(a.dq_raw == b.dq_raw) << "dq not deterministic";
  EXPECT_TRUE(a.dk_raw == b.dk_raw) << "dk not deterministic";
  EXPECT_TRUE(a.dv_raw == b.dv_raw) << "dv not deterministic";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnAttentionTest,
                         ::testing::Range(0, static_cast<int>(std::size(kShapes))), shape_name);

// cuDNN's forward followed by Tailor's backward and the reverse: the lse of each is what the
// other expects (natural log, [B, Hq, T]), so a run may switch paths between the directions.
TEST_F(CudnnAttentionCases, EitherBackwardFollowsEitherForward) {
  const Case c({2, 100, 4, 2, 64}, 52);
  for (const auto& [fwd, bwd] : {std::pair{AttentionPath::kCudnn, AttentionPath::kTailor},
                                 std::pair{AttentionPath::kTailor, AttentionPath::kCudnn}}) {
    Buffer q = dev(c.q, c.qs, DType::kBF16), k = dev(c.k, c.kvs, DType::kBF16),
           v = dev(c.v, c.kvs, DType::kBF16), dout = dev(c.dout, c.qs, DType::kBF16);
    Buffer out = gpu_->alloc(DType::kBF16, c.qs), lse = gpu_->alloc(DType::kF32, c.ls);
    Buffer dq = gpu_->alloc(DType::kBF16, c.qs), dk = gpu_->alloc(DType::kBF16, c.kvs),
           dv = gpu_->alloc(DType::kBF16, c.kvs);
    gpu_->set_attention_path(fwd);
    gpu_->attention_forward(q.tensor(), k.tensor(), v.tensor(), Tensor{}, c.scale, 0, out.tensor(),
                            lse.tensor());
    EXPECT_EQ(gpu_->last_attention_was_cudnn(), fwd == AttentionPath::kCudnn);
    gpu_->set_attention_path(bwd);
    gpu_->attention_backward(dout.tensor(), q.tensor(), k.tensor(), v.tensor(), out.tensor(),
                             lse.tensor(), Tensor{}, c.scale, 0, dq.tensor(), dk.tensor(),
                             dv.tensor());
    EXPECT_EQ(gpu_->last_attention_was_cudnn(), bwd == AttentionPath::kCudnn);
    const double floor = 1e-2 * l2(c.dv);
    EXPECT_LT(rel_diff(host(dq.tensor()), c.dq, floor), kBf16Tol);
    EXPECT_LT(rel_diff(host(dk.tensor()), c.dk, floor), kBf16Tol);
    EXPECT_LT(rel_diff(host(dv.tensor()), c.dv), kBf16Tol);
  }
}

// ---- the sliding window, against a plain double loop ---------------------------------------

#ifdef TAILOR_HAVE_CUDNN
// Causal attention where query i sees keys i - W < j <= i: out, lse and the gradients, in double.
struct WindowReference {
  std::vector<double> out, lse, dq, dk, dv;
};

WindowReference window_reference(const Case& c, std::int64_t window) {
  const Dims& d = c.d;
  const std::int64_t B = d.batch, T = d.seq, H = d.heads, G = d.kv_heads, D = d.head_dim;
  const std::int64_t group = H / G;
  WindowReference r;
  r.out.assign(c.q.size(), 0.0);
  r.lse.assign(c.lse.size(), 0.0);
  r.dq.assign(c.q.size(), 0.0);
  r.dk.assign(c.k.size(), 0.0);
  r.dv.assign(c.v.size(), 0.0);
  const auto qi = [&](std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t x) {
    return static_cast<std::size_t>(((b * T + t) * H + h) * D + x);
  };
  const auto ki = [&](std::int64_t b, std::int64_t t, std::int64_t g, std::int64_t x) {
    return static_cast<std::size_t>(((b * T + t) * G + g) * D + x);
  };
  std::vector<double> p(static_cast<std::size_t>(T));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t g = h / group;
      for (std::int64_t i = 0; i < T; ++i) {
        const std::int64_t lo = std::max<std::int64_t>(0, i - window + 1);
        double mx = -INFINITY;
        for (std::int64_t j = lo; j <= i; ++j) {
          double s = 0.0;
          for (std::int64_t x = 0; x < D; ++x)
            s += double{c.q[qi(b, i, h, x)]} * c.k[ki(b, j, g, x)];
          p[static_cast<std::size_t>(j)] = s * c.scale;
          mx = std::max(mx, p[static_cast<std::size_t>(j)]);
        }
        double z = 0.0;
        for (std::int64_t j = lo; j <= i; ++j) z += std::exp(p[static_cast<std::size_t>(j)] - mx);
        r.lse[static_cast<std::size_t>((b * H + h) * T + i)] = mx + std::log(z);
        for (std::int64_t j = lo; j <= i; ++j)
          p[static_cast<std::size_t>(j)] = std::exp(p[static_cast<std::size_t>(j)] - mx) / z;
        for (std::int64_t x = 0; x < D; ++x) {
          double o = 0.0;
          for (std::int64_t j = lo; j <= i; ++j)
            o += p[static_cast<std::size_t>(j)] * c.v[ki(b, j, g, x)];
          r.out[qi(b, i, h, x)] = o;
        }
        // backward: dP_j = dO . v_j; D = dO . O; dS_j = P_j (dP_j - D) * scale
        double dsum = 0.0;
        for (std::int64_t x = 0; x < D; ++x)
          dsum += double{c.dout[qi(b, i, h, x)]} * r.out[qi(b, i, h, x)];
        for (std::int64_t j = lo; j <= i; ++j) {
          double dp = 0.0;
          for (std::int64_t x = 0; x < D; ++x)
            dp += double{c.dout[qi(b, i, h, x)]} * c.v[ki(b, j, g, x)];
          const double pj = p[static_cast<std::size_t>(j)];
          const double ds = pj * (dp - dsum) * c.scale;
          for (std::int64_t x = 0; x < D; ++x) {
            r.dq[qi(b, i, h, x)] += ds * c.k[ki(b, j, g, x)];
            r.dk[ki(b, j, g, x)] += ds * c.q[qi(b, i, h, x)];
            r.dv[ki(b, j, g, x)] += pj * c.dout[qi(b, i, h, x)];
          }
        }
      }
    }
  return r;
}

std::vector<float> narrow(const std::vector<double>& v) { return {v.begin(), v.end()}; }

TEST_F(CudnnAttentionCases, SlidingWindowMatchesADoubleLoop) {
  const Dims d{2, 100, 4, 2, 64};
  const std::int64_t window = 16;
  const Case c(d, 53);
  const WindowReference ref = window_reference(c, window);
  backend::cuda::SdpaShape s{d.batch, d.seq, d.heads, d.kv_heads, d.head_dim, window};
  backend::cuda::CudnnAttention sdpa(gpu_->stream());
  ASSERT_EQ(sdpa.unsupported(s), "");
  Buffer q = dev(c.q, c.qs, DType::kBF16), k = dev(c.k, c.kvs, DType::kBF16),
         v = dev(c.v, c.kvs, DType::kBF16), dout = dev(c.dout, c.qs, DType::kBF16);
  std::vector<float> out_in = narrow(ref.out);
  round_for(DType::kBF16, out_in);
  Buffer out_ref = dev(out_in, c.qs, DType::kBF16);
  Buffer lse_ref = dev(narrow(ref.lse), c.ls, DType::kF32);
  Buffer out = gpu_->alloc(DType::kBF16, c.qs), lse = gpu_->alloc(DType::kF32, c.ls);
  Buffer dq = gpu_->alloc(DType::kBF16, c.qs), dk = gpu_->alloc(DType::kBF16, c.kvs),
         dv = gpu_->alloc(DType::kBF16, c.kvs);
  Buffer ws = gpu_->alloc(
      DType::kF32,
      {static_cast<std::int64_t>(
          std::max(sdpa.forward_workspace_bytes(s), sdpa.backward_workspace_bytes(s)) / 4 + 64)});
  sdpa.forward(s, q.tensor().data, k.tensor().data, v.tensor().data, c.scale, out.tensor().data,
               static_cast<float*>(lse.tensor().data), ws.tensor().data);
  sdpa.backward(s, dout.tensor().data, q.tensor().data, k.tensor().data, v.tensor().data,
                out_ref.tensor().data, static_cast<const float*>(lse_ref.tensor().data), c.scale,
                dq.tensor().data, dk.tensor().data, dv.tensor().data, ws.tensor().data);
  gpu_->synchronize();
  EXPECT_LT(rel_diff(host(out.tensor()), narrow(ref.out)), kBf16Tol) << "windowed out";
  EXPECT_LT(rel_diff(host(lse.tensor()), narrow(ref.lse)), kLseTol) << "windowed lse";
  EXPECT_LT(rel_diff(host(dq.tensor()), narrow(ref.dq)), kBf16Tol) << "windowed dq";
  EXPECT_LT(rel_diff(host(dk.tensor()), narrow(ref.dk)), kBf16Tol) << "windowed dk";
  EXPECT_LT(rel_diff(host(dv.tensor()), narrow(ref.dv)), kBf16Tol) << "windowed dv";
  // The window matters here: without it the output differs.
  EXPECT_GT(rel_diff(narrow(ref.out), c.out), 0.05);
}
#endif

// ---- fallbacks: Tailor's kernels, with or without cuDNN in the build -------------------------

class CudnnAttentionFallback : public CudnnAttentionBase, public ::testing::Test {
 protected:
  void SetUp() override {
    TAILOR_REQUIRE_GPU_OR_SKIP();
    make();
  }
  void TearDown() override { gpu_.reset(); }

  // Runs the forward on a (2, 70, 4, 2, dh) case in `storage`, with documents or not; returns
  // whether cuDNN ran, checking the result against the CPU either way.
  bool forward_ran_cudnn(DType storage, bool docs, std::int64_t dh = 64) {
    const Dims d{2, 70, 4, 2, dh};
    const Shape qs{d.batch, d.seq, d.heads, d.head_dim},
        kvs{d.batch, d.seq, d.kv_heads, d.head_dim};
    const Shape ls{d.batch, d.heads, d.seq};
    std::vector<float> q = random_normal(qs.numel(), 54, 1), k = random_normal(kvs.numel(), 54, 2),
                       v = random_normal(kvs.numel(), 54, 3);
    for (auto* x : {&q, &k, &v}) round_for(storage, *x);
    std::vector<std::int32_t> doc(static_cast<std::size_t>(d.batch * d.seq));
    for (std::size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<std::int32_t>((i % 70) / 30);
    std::vector<float> out(static_cast<std::size_t>(qs.numel())),
        lse(static_cast<std::size_t>(ls.numel()));
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    cpu_ops().attention_forward(cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs),
                                docs ? cpu_view(doc, {d.batch, d.seq}) : cpu_absent(), scale, 0,
                                cpu_view(out, qs), cpu_view(lse, ls));
    Buffer gq = dev(q, qs, storage), gk = dev(k, kvs, storage), gv = dev(v, kvs, storage);
    Buffer gdoc = gpu_->alloc(DType::kI32, {d.batch, d.seq});
    gpu_->copy(gdoc.tensor(), cpu_view(doc, {d.batch, d.seq}));
    Buffer gout = gpu_->alloc(storage, qs), glse = gpu_->alloc(DType::kF32, ls);
    gpu_->attention_forward(gq.tensor(), gk.tensor(), gv.tensor(), docs ? gdoc.tensor() : Tensor{},
                            scale, 0, gout.tensor(), glse.tensor());
    const bool ran = gpu_->last_attention_was_cudnn();
    EXPECT_LT(rel_diff(host(gout.tensor()), out), tolerance(storage));
    return ran;
  }
};

TEST_F(CudnnAttentionFallback, TailorKernelsRunWhereCudnnCannot) {
  gpu_->set_attention_path(AttentionPath::kCudnn);
  EXPECT_FALSE(forward_ran_cudnn(DType::kF32, false)) << "f32 storage";
  EXPECT_FALSE(forward_ran_cudnn(DType::kBF16, true)) << "document masks";
  EXPECT_FALSE(forward_ran_cudnn(DType::kBF16, false, 100)) << "head_dim 100";
  backend::AttentionDims d;
  d.batch = 2;
  d.seq = d.keys = 70;
  d.hq = 4;
  d.hkv = 2;
  d.dh = 100;
  EXPECT_NE(gpu_->cudnn_attention_unsupported(d, DType::kBF16), "");
  d.dh = 64;
  EXPECT_NE(gpu_->cudnn_attention_unsupported(d, DType::kF32).find("f32"), std::string::npos);
  gpu_->set_attention_path(AttentionPath::kTailor);
  EXPECT_FALSE(forward_ran_cudnn(DType::kBF16, false)) << "runtime.attention: tailor";
  gpu_->set_attention_path(AttentionPath::kAuto);
  EXPECT_EQ(forward_ran_cudnn(DType::kBF16, false), built_with_cudnn()) << "auto, bf16, no docs";
  if (!built_with_cudnn()) {
    EXPECT_NE(gpu_->cudnn_attention_unsupported(d, DType::kBF16).find("no cuDNN"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace tailor::testing
