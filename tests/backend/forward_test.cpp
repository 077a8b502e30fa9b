// Forward passes of every CPU op against the naive double references of reference_ops.h.
//
// Table style (as ggml's test-backend-ops): each suite is op x dtype x shape, shapes include 1s
// and odd sizes; every output's guard bands are checked for out-of-bounds writes. f64 results
// must agree to 1e-12 normwise, f32 ones to what f32 rounding allows (fwd_tol).
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "ops_test_util.h"
#include "reference_ops.h"

namespace tailor::backend::test {
namespace {

using I64 = std::int64_t;
using ref::Vec;

const auto kDtypes = ::testing::Values(DType::kF32, DType::kF64);

template <typename Case>
std::string param_name(const ::testing::TestParamInfo<std::tuple<DType, Case>>& info) {
  return dtype_label(std::get<0>(info.param)) + "_" + std::get<1>(info.param).name();
}

std::string dims(std::initializer_list<I64> v, const char* names) {
  std::string s;
  std::size_t k = 0;
  for (I64 x : v) {
    if (!s.empty()) s += "_";
    s += names[k++];
    s += std::to_string(x);
  }
  return s;
}

// ---- gemm -------------------------------------------------------------------------------------
struct GemmCase {
  I64 m, n, k;
  bool ta, tb;
  double alpha, beta;
  [[nodiscard]] std::string name() const {
    return dims({m, n, k}, "MNK") + (ta ? "_Ta" : "_Na") + (tb ? "_Tb" : "_Nb") +
           (beta != 0.0 ? "_beta" : "");
  }
  friend void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.name(); }
};

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (auto [m, n, k] :
       {std::tuple<I64, I64, I64>{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 48, 31}, {3, 4, 0}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto [alpha, beta] : {std::pair{1.0, 0.0}, {0.5, -1.5}})
          cases.push_back({m, n, k, ta, tb, alpha, beta});
  return cases;
}

class GemmTest : public ::testing::TestWithParam<std::tuple<DType, GemmCase>> {};

TEST_P(GemmTest, MatchesReference) {
  const auto [dt, c] = GetParam();
  HostTensor a(dt, c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k});
  HostTensor b(dt, c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n});
  HostTensor out(dt, Shape{c.m, c.n});
  a.normal(1, 1);
  b.normal(1, 2);
  out.normal(1, 3);
  Vec want = out.values();
  ref::gemm(a.values(), c.ta, b.values(), c.tb, want, c.m, c.n, c.k, c.alpha, c.beta);
  shared_ops().gemm(a.t(), c.ta, b.t(), c.tb, out.t(), c.alpha, c.beta);
  EXPECT_LT(rel_error(out.values(), want), dt == DType::kF32 ? 1e-5 : 1e-12);
  EXPECT_TRUE(out.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, GemmTest,
                         ::testing::Combine(kDtypes, ::testing::ValuesIn(gemm_cases())),
                         param_name<GemmCase>);

// ---- flat elementwise ops and reductions ------------------------------------------------------
struct FlatCase {
  I64 n;
  [[nodiscard]] std::string name() const { return dims({n}, "N"); }
  friend void PrintTo(const FlatCase& c, std::ostream* os) { *os << c.name(); }
};
const auto kFlatCases = ::testing::Values(FlatCase{0}, FlatCase{1}, FlatCase{7}, FlatCase{100003});

class FlatTest : public ::testing::TestWithParam<std::tuple<DType, FlatCase>> {};

TEST_P(FlatTest, FillAddScale) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor y(dt, Shape{c.n});
  HostTensor x(dt, Shape{c.n});
  x.normal(2, 1);
  ops.fill(y.t(), 0.25);
  for (double v : y.values()) ASSERT_EQ(v, 0.25);
  y.normal(2, 2);
  Vec want = y.values();
  const Vec xv = x.values();
  for (std::size_t i = 0; i < want.size(); ++i) want[i] += -0.75 * xv[i];
  ops.add(y.t(), x.t(), -0.75);
  EXPECT_LE(rel_error(y.values(), want), fwd_tol(dt));
  for (double& v : want) v *= 3.0;
  ops.scale(y.t(), 3.0);
  EXPECT_LE(rel_error(y.values(), want), fwd_tol(dt));
  EXPECT_TRUE(y.guards_ok());
}

TEST_P(FlatTest, SumSquaresInDouble) {
  const auto [dt, c] = GetParam();
  HostTensor x(dt, Shape{c.n});
  x.normal(2, 3);
  double want = 0;
  for (double v : x.values()) want += v * v;
  const double got = shared_ops().sum_squares(x.t());
  // f64 accumulation whatever the dtype: only summation-order differences remain.
  EXPECT_NEAR(got, want, 1e-13 * std::max(1.0, want));
}

TEST_P(FlatTest, CopyConverts) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor src(dt, Shape{c.n});
  src.normal(2, 4);
  for (DType to : {DType::kF32, DType::kF64, DType::kBF16}) {
    HostTensor dst(to, Shape{c.n});
    ops.copy(dst.t(), src.t());
    EXPECT_TRUE(dst.guards_ok());
    for (I64 i = 0; i < c.n; ++i) {
      const double v = src.get(i);
      double want = v;
      if (to == DType::kF32) want = static_cast<float>(v);
      if (to == DType::kBF16) want = round_to_bf16(static_cast<float>(v));
      ASSERT_EQ(dst.get(i), want) << "element " << i << " to " << dtype_name(to);
    }
    // And back from the converted copy.
    HostTensor back(dt, Shape{c.n});
    ops.copy(back.t(), dst.t());
    for (I64 i = 0; i < c.n; ++i) {
      const double v = dst.get(i);
      ASSERT_EQ(back.get(i), dt == DType::kF32 ? static_cast<float>(v) : v);
    }
  }
}

TEST_P(FlatTest, SwigluAndGelu) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor gate(dt, Shape{c.n});
  HostTensor up(dt, Shape{c.n});
  HostTensor out(dt, Shape{c.n});
  gate.normal(2, 5, 3.0);
  up.normal(2, 6);
  ops.swiglu_forward(gate.t(), up.t(), out.t());
  Vec want(static_cast<std::size_t>(c.n));
  for (I64 i = 0; i < c.n; ++i)
    want[static_cast<std::size_t>(i)] = ref::silu(gate.get(i)) * up.get(i);
  EXPECT_LE(rel_error(out.values(), want), fwd_tol(dt));
  ops.gelu_forward(gate.t(), out.t());
  for (I64 i = 0; i < c.n; ++i) want[static_cast<std::size_t>(i)] = ref::gelu_tanh(gate.get(i));
  EXPECT_LE(rel_error(out.values(), want), fwd_tol(dt));
  EXPECT_TRUE(out.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, FlatTest, ::testing::Combine(kDtypes, kFlatCases),
                         param_name<FlatCase>);

// ---- row ops: bias, norms, embedding ------------------------------------------------------------
struct RowCase {
  I64 n, d;
  [[nodiscard]] std::string name() const { return dims({n, d}, "ND"); }
  friend void PrintTo(const RowCase& c, std::ostream* os) { *os << c.name(); }
};
const auto kRowCases = ::testing::Values(RowCase{1, 1}, RowCase{3, 7}, RowCase{17, 64},
                                         RowCase{65, 129}, RowCase{300, 33});

class RowTest : public ::testing::TestWithParam<std::tuple<DType, RowCase>> {};

TEST_P(RowTest, AddBiasAndBiasBackward) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor y(dt, Shape{c.n, c.d});
  HostTensor bias(dt, Shape{c.d});
  y.normal(3, 1);
  bias.normal(3, 2);
  Vec want = y.values();
  for (I64 r = 0; r < c.n; ++r)
    for (I64 j = 0; j < c.d; ++j) ref::at(want, r * c.d + j) += bias.get(j);
  ops.add_bias(y.t(), bias.t());
  EXPECT_LE(rel_error(y.values(), want), fwd_tol(dt));
  EXPECT_TRUE(y.guards_ok());

  HostTensor db(dt, Shape{c.d});
  db.normal(3, 3);  // accumulated into
  Vec want_db = db.values();
  for (I64 r = 0; r < c.n; ++r)
    for (I64 j = 0; j < c.d; ++j) ref::at(want_db, j) += y.get(r * c.d + j);
  ops.bias_backward(db.t(), y.t());
  EXPECT_LE(rel_error(db.values(), want_db), 4 * fwd_tol(dt));
  EXPECT_TRUE(db.guards_ok());
}

TEST_P(RowTest, ScaleColumnsAndBackward) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor y(dt, Shape{c.n, c.d});
  HostTensor s(dt, Shape{c.d});
  y.normal(4, 1);
  s.normal(4, 2);
  const Vec y0 = y.values();
  Vec want = y0;
  for (I64 r = 0; r < c.n; ++r)
    for (I64 j = 0; j < c.d; ++j) ref::at(want, r * c.d + j) *= s.get(j);
  ops.scale_columns(y.t(), s.t());
  EXPECT_LE(rel_error(y.values(), want), fwd_tol(dt));
  EXPECT_TRUE(y.guards_ok());

  HostTensor dy(dt, Shape{c.n, c.d});
  dy.normal(4, 3);
  HostTensor ds(dt, Shape{c.d});
  ds.normal(4, 4);  // accumulated into
  Vec want_ds = ds.values();
  for (I64 r = 0; r < c.n; ++r)
    for (I64 j = 0; j < c.d; ++j)
      ref::at(want_ds, j) += dy.get(r * c.d + j) * y.get(r * c.d + j);
  ops.scale_columns_backward(ds.t(), dy.t(), y.t());
  EXPECT_LE(rel_error(ds.values(), want_ds), 4 * fwd_tol(dt));
  EXPECT_TRUE(ds.guards_ok());
}

TEST_P(RowTest, RmsNorm) {
  const auto [dt, c] = GetParam();
  HostTensor x(dt, Shape{c.n, c.d});
  HostTensor w(dt, Shape{c.d});
  HostTensor y(dt, Shape{c.n, c.d});
  HostTensor rstd(dt, Shape{c.n});
  x.normal(4, 1, 2.0);
  w.normal(4, 2);
  Vec want_y(static_cast<std::size_t>(c.n * c.d));
  Vec want_r(static_cast<std::size_t>(c.n));
  ref::rmsnorm(x.values(), w.values(), c.n, c.d, 1e-5, want_y, want_r);
  shared_ops().rmsnorm_forward(x.t(), w.t(), 1e-5, y.t(), rstd.t());
  EXPECT_LE(rel_error(y.values(), want_y), fwd_tol(dt));
  EXPECT_LE(rel_error(rstd.values(), want_r), fwd_tol(dt));
  EXPECT_TRUE(y.guards_ok() && rstd.guards_ok());
}

TEST_P(RowTest, LayerNorm) {
  const auto [dt, c] = GetParam();
  for (bool with_bias : {true, false}) {
    HostTensor x(dt, Shape{c.n, c.d});
    HostTensor w(dt, Shape{c.d});
    HostTensor b(dt, Shape{c.d});
    HostTensor y(dt, Shape{c.n, c.d});
    HostTensor mean(dt, Shape{c.n});
    HostTensor rstd(dt, Shape{c.n});
    x.normal(5, 1, 2.0);
    for (I64 i = 0; i < x.numel(); ++i) x.set(i, x.get(i) + 3.0);  // nonzero mean
    w.normal(5, 2);
    b.normal(5, 3);
    Vec want_y(static_cast<std::size_t>(c.n * c.d));
    Vec want_m(static_cast<std::size_t>(c.n));
    Vec want_r(static_cast<std::size_t>(c.n));
    const Vec bv = b.values();
    ref::layernorm(x.values(), w.values(), with_bias ? &bv : nullptr, c.n, c.d, 1e-5, want_y,
                   want_m, want_r);
    shared_ops().layernorm_forward(x.t(), w.t(), with_bias ? b.t() : absent(), 1e-5, y.t(),
                                   mean.t(), rstd.t());
    EXPECT_LE(rel_error(y.values(), want_y), 2 * fwd_tol(dt)) << "bias " << with_bias;
    EXPECT_LE(rel_error(mean.values(), want_m), fwd_tol(dt));
    EXPECT_LE(rel_error(rstd.values(), want_r), 2 * fwd_tol(dt));
    EXPECT_TRUE(y.guards_ok() && mean.guards_ok() && rstd.guards_ok());
  }
}

TEST_P(RowTest, Embedding) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  const I64 vocab = c.n;
  const I64 tokens = 2 * c.n + 3;
  HostTensor table(dt, Shape{vocab, c.d});
  HostTensor ids(DType::kI32, Shape{tokens});
  HostTensor out(dt, Shape{tokens, c.d});
  table.normal(6, 1);
  ids.integers(6, 2, 0, vocab);
  ops.embedding_forward(table.t(), ids.t(), 0, out.t());
  for (I64 r = 0; r < tokens; ++r)
    for (I64 j = 0; j < c.d; ++j)
      ASSERT_EQ(out.get(r * c.d + j), table.get(static_cast<I64>(ids.get(r)) * c.d + j));
  EXPECT_TRUE(out.guards_ok());

  HostTensor dtable(dt, Shape{vocab, c.d});
  dtable.normal(6, 3);
  Vec want = dtable.values();
  for (I64 r = 0; r < tokens; ++r)
    for (I64 j = 0; j < c.d; ++j)
      ref::at(want, static_cast<I64>(ids.get(r)) * c.d + j) += out.get(r * c.d + j);
  ops.embedding_backward(dtable.t(), ids.t(), 0, out.t());
  EXPECT_LE(rel_error(dtable.values(), want), fwd_tol(dt));
  EXPECT_TRUE(dtable.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, RowTest, ::testing::Combine(kDtypes, kRowCases), param_name<RowCase>);

// ---- rope -------------------------------------------------------------------------------------
struct RopeCase {
  I64 n, h, dh;
  [[nodiscard]] std::string name() const { return dims({n, h, dh}, "NHD"); }
  friend void PrintTo(const RopeCase& c, std::ostream* os) { *os << c.name(); }
};

class RopeTest : public ::testing::TestWithParam<std::tuple<DType, RopeCase>> {};

TEST_P(RopeTest, ForwardAndTranspose) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor x(dt, Shape{c.n, c.h, c.dh});
  HostTensor pos(DType::kI32, Shape{c.n});
  const HostTensor inv_freq = make_inv_freq(c.dh);
  x.normal(7, 1);
  pos.integers(7, 2, 0, 4096);
  std::vector<float> freq;
  for (double f : inv_freq.values()) freq.push_back(static_cast<float>(f));
  const Vec x0 = x.values();
  Vec want = x0;
  ref::rope(want, as_i32(pos), freq, c.n, c.h, c.dh, 1.0);
  ops.rope_forward(x.t(), pos.t(), inv_freq.t());
  EXPECT_LE(rel_error(x.values(), want), fwd_tol(dt));
  // The backward pass is the inverse rotation: it brings x back.
  ops.rope_backward(x.t(), pos.t(), inv_freq.t());
  EXPECT_LE(rel_error(x.values(), x0), fwd_tol(dt));
  EXPECT_TRUE(x.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, RopeTest,
    ::testing::Combine(kDtypes, ::testing::Values(RopeCase{1, 1, 2}, RopeCase{5, 3, 8},
                                                  RopeCase{9, 2, 14}, RopeCase{33, 4, 64})),
    param_name<RopeCase>);

// ---- attention --------------------------------------------------------------------------------
struct AttnCase {
  I64 b, t, hq, hkv, dh;
  Docs docs;
  I64 window = 0;  // sliding window, 0: global
  [[nodiscard]] std::string name() const {
    const char* d = docs == Docs::kNone ? "" : docs == Docs::kPacked ? "_packed" : "_scattered";
    return dims({b, t, hq, hkv, dh}, "BTQKD") + d + (window > 0 ? "_w" + std::to_string(window) : "");
  }
  friend void PrintTo(const AttnCase& c, std::ostream* os) { *os << c.name(); }
};

class AttentionTest : public ::testing::TestWithParam<std::tuple<DType, AttnCase>> {};

TEST_P(AttentionTest, MatchesReference) {
  const auto [dt, c] = GetParam();
  HostTensor q(dt, Shape{c.b, c.t, c.hq, c.dh});
  HostTensor k(dt, Shape{c.b, c.t, c.hkv, c.dh});
  HostTensor v(dt, Shape{c.b, c.t, c.hkv, c.dh});
  HostTensor out(dt, Shape{c.b, c.t, c.hq, c.dh});
  HostTensor lse(dt, Shape{c.b, c.hq, c.t});
  q.normal(8, 1);
  k.normal(8, 2);
  v.normal(8, 3);
  const HostTensor doc = make_doc_ids(c.b, c.t, c.docs, 8);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dh));
  Vec want_o(static_cast<std::size_t>(out.numel()));
  Vec want_l(static_cast<std::size_t>(lse.numel()));
  ref::attention(q.values(), k.values(), v.values(), as_i32(doc), c.b, c.t, c.hq, c.hkv, c.dh,
                 scale, want_o, want_l, c.window);
  shared_ops().attention_forward(q.t(), k.t(), v.t(), optional_t(doc), scale, c.window, out.t(),
                                 lse.t());
  EXPECT_LE(rel_error(out.values(), want_o), 2 * fwd_tol(dt));
  EXPECT_LE(rel_error(lse.values(), want_l), fwd_tol(dt));
  EXPECT_TRUE(out.guards_ok() && lse.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, AttentionTest,
    ::testing::Combine(kDtypes, ::testing::Values(AttnCase{1, 1, 1, 1, 4, Docs::kNone},
                                                  AttnCase{2, 7, 2, 2, 4, Docs::kNone},
                                                  AttnCase{1, 19, 4, 2, 8, Docs::kNone},
                                                  AttnCase{2, 40, 6, 2, 16, Docs::kNone},
                                                  AttnCase{2, 37, 6, 2, 5, Docs::kPacked},
                                                  AttnCase{1, 45, 3, 1, 8, Docs::kPacked},
                                                  AttnCase{2, 33, 4, 4, 8, Docs::kScattered},
                                                  AttnCase{1, 21, 6, 3, 3, Docs::kScattered},
                                                  AttnCase{1, 100, 4, 2, 64, Docs::kNone},
                                                  AttnCase{2, 90, 3, 1, 40, Docs::kPacked},
                                                  // Sliding windows several times shorter
                                                  // than the sequence, with and without
                                                  // documents; 1 sees only itself.
                                                  AttnCase{2, 40, 4, 2, 8, Docs::kNone, 7},
                                                  AttnCase{1, 19, 2, 1, 4, Docs::kNone, 1},
                                                  AttnCase{2, 37, 6, 2, 5, Docs::kPacked, 6},
                                                  AttnCase{2, 33, 4, 4, 8, Docs::kScattered, 5},
                                                  AttnCase{1, 150, 4, 2, 16, Docs::kNone, 40})),
    param_name<AttnCase>);

// ---- attention over a KV cache ----------------------------------------------------------------
struct CachedCase {
  I64 b, tq, cap, hq, hkv, dh;
  I64 window = 0;  // sliding window, 0: global
  [[nodiscard]] std::string name() const {
    return dims({b, tq, cap, hq, hkv, dh}, "BTSQKD") +
           (window > 0 ? "_w" + std::to_string(window) : "");
  }
  friend void PrintTo(const CachedCase& c, std::ostream* os) { *os << c.name(); }
};

class AttentionCachedTest : public ::testing::TestWithParam<std::tuple<DType, CachedCase>> {};

TEST_P(AttentionCachedTest, MatchesReference) {
  const auto [dt, c] = GetParam();
  HostTensor q(dt, Shape{c.b, c.tq, c.hq, c.dh});
  HostTensor k(dt, Shape{c.b, c.cap, c.hkv, c.dh});
  HostTensor v(dt, Shape{c.b, c.cap, c.hkv, c.dh});
  HostTensor out(dt, Shape{c.b, c.tq, c.hq, c.dh});
  HostTensor start(DType::kI32, Shape{c.b});
  q.normal(9, 1);
  k.normal(9, 2);
  v.normal(9, 3);
  start.integers(9, 4, 0, c.cap - c.tq + 1);  // rows at different positions
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dh));
  Vec want(static_cast<std::size_t>(out.numel()));
  ref::attention_cached(q.values(), k.values(), v.values(), as_i32(start), c.b, c.tq, c.cap, c.hq,
                        c.hkv, c.dh, scale, want, c.window);
  shared_ops().attention_cached(q.t(), k.t(), v.t(), start.t(), scale, c.window, out.t());
  EXPECT_LE(rel_error(out.values(), want), 2 * fwd_tol(dt));
  EXPECT_TRUE(out.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, AttentionCachedTest,
    ::testing::Combine(kDtypes, ::testing::Values(CachedCase{1, 1, 1, 1, 1, 4},
                                                  CachedCase{3, 1, 9, 4, 2, 8},
                                                  CachedCase{2, 5, 17, 6, 2, 5},
                                                  CachedCase{2, 1, 70, 4, 4, 16},
                                                  CachedCase{1, 40, 90, 3, 1, 40},
                                                  CachedCase{3, 1, 30, 4, 2, 8, 5},
                                                  CachedCase{2, 9, 40, 6, 2, 5, 4},
                                                  CachedCase{1, 40, 90, 3, 1, 40, 11})),
    param_name<CachedCase>);

// A prompt run through the cache from position 0 gets what the training forward computes, with
// and without a sliding window.
class AttentionCachedPrefill : public ::testing::TestWithParam<I64> {};

TEST_P(AttentionCachedPrefill, EqualsCausalAttention) {
  const I64 window = GetParam();
  const I64 b = 2, t = 23, hq = 4, hkv = 2, dh = 8;
  HostTensor q(DType::kF32, Shape{b, t, hq, dh});
  HostTensor k(DType::kF32, Shape{b, t, hkv, dh});
  HostTensor v(DType::kF32, Shape{b, t, hkv, dh});
  HostTensor want(DType::kF32, Shape{b, t, hq, dh});
  HostTensor got(DType::kF32, Shape{b, t, hq, dh});
  HostTensor lse(DType::kF32, Shape{b, hq, t});
  HostTensor start(DType::kI32, Shape{b});
  q.normal(5, 1);
  k.normal(5, 2);
  v.normal(5, 3);
  start.set_values({0.0, 0.0});
  const double scale = 0.3;
  shared_ops().attention_forward(q.t(), k.t(), v.t(), absent(), scale, window, want.t(), lse.t());
  shared_ops().attention_cached(q.t(), k.t(), v.t(), start.t(), scale, window, got.t());
  EXPECT_LE(rel_error(got.values(), want.values()), 1e-7);
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionCachedPrefill, ::testing::Values(0, 1, 5, 22));

// ---- cross-entropy ----------------------------------------------------------------------------
struct CeCase {
  I64 n, vocab, valid;
  [[nodiscard]] std::string name() const { return dims({n, vocab, valid}, "NVR"); }
  friend void PrintTo(const CeCase& c, std::ostream* os) { *os << c.name(); }
};

class CrossEntropyTest : public ::testing::TestWithParam<std::tuple<DType, CeCase>> {};

TEST_P(CrossEntropyTest, LossesAndGradient) {
  const auto [dt, c] = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor logits(dt, Shape{c.n, c.vocab});
  logits.normal(9, 1, 3.0);
  const HostTensor targets = make_targets(c.n, c.valid, 9);
  const double dscale = 0.37;
  Vec want_loss(static_cast<std::size_t>(c.n));
  Vec want_grad(static_cast<std::size_t>(logits.numel()));
  ref::cross_entropy(logits.values(), as_i32(targets), c.n, c.vocab, c.valid, dscale, want_loss,
                     want_grad);

  HostTensor losses(dt, Shape{c.n});
  ops.cross_entropy(logits.t(), targets.t(), c.valid, losses.t(), absent(), dscale);
  EXPECT_LE(rel_error(losses.values(), want_loss), fwd_tol(dt));

  HostTensor grad(dt, Shape{c.n, c.vocab});
  HostTensor losses2(dt, Shape{c.n});
  ops.cross_entropy(logits.t(), targets.t(), c.valid, losses2.t(), grad.t(), dscale);
  EXPECT_EQ(losses2.values(), losses.values());
  EXPECT_LE(rel_error(grad.values(), want_grad), fwd_tol(dt));
  EXPECT_TRUE(grad.guards_ok() && losses.guards_ok() && losses2.guards_ok());

  // In place: dlogits aliases logits, same results bit for bit.
  HostTensor losses3(dt, Shape{c.n});
  ops.cross_entropy(logits.t(), targets.t(), c.valid, losses3.t(), logits.t(), dscale);
  EXPECT_EQ(losses3.values(), losses.values());
  EXPECT_EQ(logits.values(), grad.values());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, CrossEntropyTest,
    ::testing::Combine(kDtypes,
                       ::testing::Values(CeCase{1, 1, 1}, CeCase{5, 7, 7}, CeCase{9, 37, 30},
                                         CeCase{16, 130, 128}, CeCase{3, 1000, 999})),
    param_name<CeCase>);

}  // namespace
}  // namespace tailor::backend::test
