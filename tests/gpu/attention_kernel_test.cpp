// Flash-attention kernels (kernels/attention_*.cu) against CpuOps::attention_forward /
// attention_backward / attention_cached, in f32 and bf16 storage: head dims 2 .. 256 (one not a
// multiple of 16), odd T, T = 1, B > 1, GQA ratios 1, 2 and 4, with and without documents
// (contiguous ids, and ids that come back after another document), global and with sliding
// windows (one much shorter than T, one that spans tiles). Outputs and gradients within
// the mode's tolerance, lse within 1e-5 in both modes (f32 from the same values), no NaN/Inf,
// guards intact, and two runs bitwise equal. The backward runs on the CPU's out and lse (rounded
// like the GPU's storage), so it is tested in isolation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "kernel_test_util.h"
#include "kernels/attention.cuh"

namespace tailor::testing {
namespace {

constexpr double kF32Tol = 1e-5;  // lse: f32 on the GPU in both modes

struct AttnDims {
  std::int64_t batch, seq, heads, kv_heads, head_dim;
};

// (B, T, Hq, Hkv, Dh).
const AttnDims kShapes[] = {
    {1, 1, 1, 1, 8},    {2, 37, 4, 2, 16},  {1, 130, 4, 1, 64}, {2, 67, 2, 2, 128},
    {1, 45, 2, 1, 256}, {1, 29, 4, 4, 100}, {2, 9, 2, 1, 2},
};

enum DocMode { kNoDocs = 0, kContiguousDocs = 1, kRepeatedDocs = 2 };

// index into kShapes, DocMode, storage, sliding window (0: global)
using AttnCase = std::tuple<int, int, DType, std::int64_t>;

std::string attn_case_name(const ::testing::TestParamInfo<AttnCase>& info) {
  const auto [si, docs, storage, window] = info.param;
  const AttnDims& d = kShapes[si];
  static const char* const kDocNames[] = {"nodoc", "docs", "repdocs"};
  return fmt::format("b{}_t{}_h{}_kv{}_d{}_{}_{}_w{}", d.batch, d.seq, d.heads, d.kv_heads,
                     d.head_dim, kDocNames[docs], dtype_label(storage), window);
}

// Document ids [B, T]: runs of random lengths 1 .. 40; run n of a row gets id n (contiguous
// documents) or n % 3 (an id that comes back after other documents: still one document).
std::vector<std::int32_t> make_docs(std::int64_t batch, std::int64_t seq, int mode) {
  const std::vector<std::int32_t> lengths = random_ints(batch * seq, 31, 7, 1, 41);
  std::vector<std::int32_t> doc(static_cast<std::size_t>(batch * seq));
  std::size_t next = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int32_t run = 0;
    std::int64_t left = lengths[next++];
    for (std::int64_t t = 0; t < seq; ++t) {
      if (left == 0) {
        ++run;
        left = lengths[next++];
      }
      doc[static_cast<std::size_t>(b * seq + t)] = mode == kRepeatedDocs ? run % 3 : run;
      --left;
    }
  }
  return doc;
}

double l2_norm(const std::vector<float>& v) {
  long double sum = 0.0L;
  for (float x : v) sum += static_cast<long double>(x) * static_cast<long double>(x);
  return static_cast<double>(std::sqrt(sum));
}

// As expect_matches, with the reference's norm floored at floor_norm: dq and dk vanish where
// every query sees only itself (T = 1), and the reference is then rounding noise.
void expect_matches_floor(const char* what, const DeviceTensor& got, const std::vector<float>& want,
                          double tol, double floor_norm) {
  const std::vector<float> g = got.to_f32();
  EXPECT_TRUE(all_finite(g)) << what << ": NaN or Inf in the GPU result";
  EXPECT_TRUE(all_finite(want)) << what << ": NaN or Inf in the CPU reference";
  std::vector<float> diff(g.size());
  for (std::size_t i = 0; i < g.size() && i < want.size(); ++i) diff[i] = g[i] - want[i];
  EXPECT_EQ(g.size(), want.size()) << what;
  EXPECT_LT(l2_norm(diff) / std::max(l2_norm(want), floor_norm), tol) << what;
  EXPECT_TRUE(got.guards_intact()) << what << ": written out of bounds";
}

class AttentionKernelTest : public ::testing::TestWithParam<AttnCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

struct AttnOutputs {
  DeviceTensor out, lse, dq, dk, dv;
};

TEST_P(AttentionKernelTest, MatchesCpu) {
  const auto [si, docs, st, window] = GetParam();
  const AttnDims& dims = kShapes[si];
  const std::int64_t B = dims.batch, T = dims.seq, H = dims.heads, G = dims.kv_heads;
  const std::int64_t Dh = dims.head_dim;
  const std::int64_t nq = B * T * H * Dh;
  const std::int64_t nkv = B * T * G * Dh;
  std::vector<float> q = random_normal(nq, 21, 1);
  std::vector<float> k = random_normal(nkv, 21, 2);
  std::vector<float> v = random_normal(nkv, 21, 3);
  std::vector<float> dout = random_normal(nq, 21, 4);
  round_for(st, q);
  round_for(st, k);
  round_for(st, v);
  round_for(st, dout);
  std::vector<std::int32_t> doc =
      docs != kNoDocs ? make_docs(B, T, docs) : std::vector<std::int32_t>{0};
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  const Shape qs{B, T, H, Dh};
  const Shape kvs{B, T, G, Dh};
  const Shape ls{B, H, T};

  // CPU reference, f32. The backward sees out as the GPU stores it.
  std::vector<float> out(static_cast<std::size_t>(nq)), lse(static_cast<std::size_t>(B * H * T));
  std::vector<float> dq(static_cast<std::size_t>(nq)), dk(static_cast<std::size_t>(nkv));
  std::vector<float> dv(static_cast<std::size_t>(nkv));
  auto& ops = cpu_ops();
  const backend::Tensor doc_view = docs != kNoDocs ? cpu_view(doc, {B, T}) : cpu_absent();
  ops.attention_forward(cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs), doc_view, scale,
                        window, cpu_view(out, qs), cpu_view(lse, ls));
  std::vector<float> out_in = out;
  round_for(st, out_in);
  ops.attention_backward(cpu_view(dout, qs), cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs),
                         cpu_view(out_in, qs), cpu_view(lse, ls), doc_view, scale, window,
                         cpu_view(dq, qs), cpu_view(dk, kvs), cpu_view(dv, kvs));

  const kernels::AttentionShape shape{B, T, H, G, Dh, window};
  const DeviceTensor gq = DeviceTensor::from(st, q);
  const DeviceTensor gk = DeviceTensor::from(st, k);
  const DeviceTensor gv = DeviceTensor::from(st, v);
  const DeviceTensor gdout = DeviceTensor::from(st, dout);
  const DeviceTensor gout_ref = DeviceTensor::from(st, out_in);        // backward in isolation
  const DeviceTensor glse_ref = DeviceTensor::from(DType::kF32, lse);  // backward in isolation
  const DeviceTensor gdoc = DeviceTensor::from_i32(doc);
  const std::int32_t* doc_ptr = docs != kNoDocs ? gdoc.as<std::int32_t>() : nullptr;
  const std::size_t ws_bytes = kernels::attention_backward_workspace_bytes(shape);
  EXPECT_GE(ws_bytes, static_cast<std::size_t>(B * H * T) * sizeof(float));

  auto run = [&]() {
    AttnOutputs o{DeviceTensor(st, nq), DeviceTensor(DType::kF32, B * H * T), DeviceTensor(st, nq),
                  DeviceTensor(st, nkv), DeviceTensor(st, nkv)};
    const DeviceWorkspace ws(ws_bytes);
    dispatch_storage(st, [&](auto tag) {
      using T_ = decltype(tag);
      kernels::attention_forward(gq.as<T_>(), gk.as<T_>(), gv.as<T_>(), doc_ptr, scale,
                                 o.out.as<T_>(), o.lse.as<float>(), shape, nullptr);
      kernels::attention_backward(gdout.as<T_>(), gq.as<T_>(), gk.as<T_>(), gv.as<T_>(),
                                  gout_ref.as<T_>(), glse_ref.as<float>(), doc_ptr, scale,
                                  o.dq.as<T_>(), o.dk.as<T_>(), o.dv.as<T_>(), ws.get(), shape,
                                  nullptr);
    });
    sync_device();
    EXPECT_TRUE(ws.guards_intact()) << "workspace written out of bounds";
    return o;
  };
  const AttnOutputs a = run();
  expect_matches("out", a.out, out, tolerance(st));
  expect_matches("lse", a.lse, lse, kF32Tol);
  // Elsewhere |dq|, |dk| are a good fraction of |dv|, so this floor only matters for T = 1.
  const double floor_norm = 1e-2 * l2_norm(dv);
  expect_matches_floor("dq", a.dq, dq, tolerance(st), floor_norm);
  expect_matches_floor("dk", a.dk, dk, tolerance(st), floor_norm);
  expect_matches("dv", a.dv, dv, tolerance(st));
  EXPECT_TRUE(gq.guards_intact() && gk.guards_intact() && gv.guards_intact() &&
              gdout.guards_intact() && gout_ref.guards_intact() && glse_ref.guards_intact() &&
              gdoc.guards_intact());

  const AttnOutputs b = run();
  EXPECT_TRUE(a.out.bytes() == b.out.bytes()) << "forward not deterministic";
  EXPECT_TRUE(a.lse.bytes() == b.lse.bytes()) << "lse not deterministic";
  EXPECT_TRUE(a.dq.bytes() == b.dq.bytes()) << "dq not deterministic";
  EXPECT_TRUE(a.dk.bytes() == b.dk.bytes()) << "dk not deterministic";
  EXPECT_TRUE(a.dv.bytes() == b.dv.bytes()) << "dv not deterministic";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionKernelTest,
    ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kShapes))),
                       ::testing::Values(kNoDocs, kContiguousDocs, kRepeatedDocs),
                       ::testing::Values(DType::kF32, DType::kBF16),
                       ::testing::Values<std::int64_t>(0, 5, 70)),
    attn_case_name);

// ---- attention over a KV cache ----------------------------------------------------------------

// Tq, Dh, storage, sliding window (0: global)
using CachedCase = std::tuple<std::int64_t, std::int64_t, DType, std::int64_t>;

std::string cached_case_name(const ::testing::TestParamInfo<CachedCase>& info) {
  const auto [tq, dh, storage, window] = info.param;
  return fmt::format("tq{}_d{}_{}_w{}", tq, dh, dtype_label(storage), window);
}

class AttentionCachedKernelTest : public ::testing::TestWithParam<CachedCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

TEST_P(AttentionCachedKernelTest, MatchesCpu) {
  const auto [Tq, Dh, st, window] = GetParam();
  constexpr std::int64_t B = 3, S = 150, H = 4, G = 2;
  std::vector<std::int32_t> start = {0, 77, static_cast<std::int32_t>(S - Tq)};
  std::vector<float> q = random_normal(B * Tq * H * Dh, 22, 1);
  std::vector<float> k = random_normal(B * S * G * Dh, 22, 2);
  std::vector<float> v = random_normal(B * S * G * Dh, 22, 3);
  // Cache rows past a row's last query hold stale values that must not be read: make them
  // large, so reading one would change the result.
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = start[static_cast<std::size_t>(b)] + Tq; j < S; ++j)
      for (std::int64_t c = 0; c < G * Dh; ++c) {
        k[static_cast<std::size_t>((b * S + j) * G * Dh + c)] = 1000.0f;
        v[static_cast<std::size_t>((b * S + j) * G * Dh + c)] = -1000.0f;
      }
  round_for(st, q);
  round_for(st, k);
  round_for(st, v);
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  const Shape qs{B, Tq, H, Dh};
  const Shape kvs{B, S, G, Dh};

  std::vector<float> out(q.size());
  cpu_ops().attention_cached(cpu_view(q, qs), cpu_view(k, kvs), cpu_view(v, kvs),
                             cpu_view(start, {B}), scale, window, cpu_view(out, qs));

  const kernels::AttentionCachedShape shape{B, Tq, S, H, G, Dh, window};
  const DeviceTensor gq = DeviceTensor::from(st, q);
  const DeviceTensor gk = DeviceTensor::from(st, k);
  const DeviceTensor gv = DeviceTensor::from(st, v);
  const DeviceTensor gstart = DeviceTensor::from_i32(start);
  auto run = [&]() {
    DeviceTensor o(st, B * Tq * H * Dh);
    dispatch_storage(st, [&](auto tag) {
      using T_ = decltype(tag);
      kernels::attention_cached(gq.as<T_>(), gk.as<T_>(), gv.as<T_>(), gstart.as<std::int32_t>(),
                                scale, o.as<T_>(), shape, nullptr);
    });
    sync_device();
    return o;
  };
  const DeviceTensor a = run();
  expect_matches("out", a, out, tolerance(st));
  const DeviceTensor b = run();
  EXPECT_TRUE(a.bytes() == b.bytes()) << "not deterministic";
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCachedKernelTest,
                         ::testing::Combine(::testing::Values<std::int64_t>(1, 5),
                                            ::testing::Values<std::int64_t>(16, 64, 128, 256),
                                            ::testing::Values(DType::kF32, DType::kBF16),
                                            ::testing::Values<std::int64_t>(0, 9, 100)),
                         cached_case_name);

// Prefill from position 0 over a cache holding exactly the sequence is the training forward,
// with and without a sliding window.
TEST(AttentionCachedKernel, PrefillEqualsForward) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  for (const std::int64_t window : {0, 3, 66}) {
    constexpr std::int64_t B = 2, T = 70, H = 4, G = 2, Dh = 64;
    const std::vector<float> q = random_normal(B * T * H * Dh, 23, 1);
    const std::vector<float> k = random_normal(B * T * G * Dh, 23, 2);
    const std::vector<float> v = random_normal(B * T * G * Dh, 23, 3);
    const DeviceTensor gq = DeviceTensor::from(DType::kBF16, q);
    const DeviceTensor gk = DeviceTensor::from(DType::kBF16, k);
    const DeviceTensor gv = DeviceTensor::from(DType::kBF16, v);
    const DeviceTensor gstart = DeviceTensor::from_i32({0, 0});
    const DeviceTensor out1(DType::kBF16, B * T * H * Dh), out2(DType::kBF16, B * T * H * Dh);
    const DeviceTensor lse(DType::kF32, B * H * T);
    const float scale = 0.125f;
    kernels::attention_forward(gq.as<std::uint16_t>(), gk.as<std::uint16_t>(),
                               gv.as<std::uint16_t>(), nullptr, scale, out1.as<std::uint16_t>(),
                               lse.as<float>(), {B, T, H, G, Dh, window}, nullptr);
    kernels::attention_cached(gq.as<std::uint16_t>(), gk.as<std::uint16_t>(),
                              gv.as<std::uint16_t>(), gstart.as<std::int32_t>(), scale,
                              out2.as<std::uint16_t>(), {B, T, T, H, G, Dh, window}, nullptr);
    sync_device();
    EXPECT_TRUE(out1.bytes() == out2.bytes())
        << "the cached kernel differs from the forward, window " << window;
    EXPECT_TRUE(out2.guards_intact());
  }
}

}  // namespace
}  // namespace tailor::testing
