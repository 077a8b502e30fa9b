// Backward passes of every CPU op against central finite differences, in f64.
//
// Each op's output is projected on a fixed random tensor R, L = sum(out * R), so dL/dout = R is
// what the backward pass receives; the gradients it returns must match the finite differences
// of L to a normwise relative error below 1e-6. Parameter gradients are accumulated (+=): they
// start from random values and the increment is checked. Activation gradients are written (=):
// they start from garbage.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "ops_test_util.h"

namespace tailor::backend::test {
namespace {

using I64 = std::int64_t;
using Vec = std::vector<double>;
constexpr DType kF64 = DType::kF64;
constexpr double kGradTol = 1e-6;

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

template <typename Case>
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.name();
}

Vec minus(const Vec& a, const Vec& b) {
  Vec d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

HostTensor garbage(Shape s) {
  HostTensor t(kF64, s);
  t.uniform(404, 404, 1e3, 2e3);
  return t;
}

// ---- norms ------------------------------------------------------------------------------------
struct RowCase {
  I64 n, d;
  [[nodiscard]] std::string name() const { return dims({n, d}, "ND"); }
  friend void PrintTo(const RowCase& c, std::ostream* os) { *os << c.name(); }
};
const auto kRowCases =
    ::testing::Values(RowCase{1, 1}, RowCase{3, 7}, RowCase{5, 16}, RowCase{2, 33});

class NormGrad : public ::testing::TestWithParam<RowCase> {};

TEST_P(NormGrad, RmsNorm) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor x(kF64, Shape{c.n, c.d});
  HostTensor w(kF64, Shape{c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  x.normal(11, 1);
  w.normal(11, 2);
  proj.normal(11, 3);
  HostTensor y(kF64, Shape{c.n, c.d});
  HostTensor rstd(kF64, Shape{c.n});
  auto loss = [&] {
    ops.rmsnorm_forward(x.t(), w.t(), 1e-5, y.t(), rstd.t());
    return dot(y.values(), proj.values());
  };
  const Vec fd_x = fd_grad(x, loss);
  const Vec fd_w = fd_grad(w, loss);
  loss();
  HostTensor dx = garbage(Shape{c.n, c.d});
  HostTensor dw(kF64, Shape{c.d});
  dw.normal(11, 4);
  const Vec dw0 = dw.values();
  ops.rmsnorm_backward(proj.t(), x.t(), w.t(), rstd.t(), dx.t(), dw.t());
  EXPECT_LT(rel_error(dx.values(), fd_x), kGradTol);
  EXPECT_LT(rel_error(minus(dw.values(), dw0), fd_w), kGradTol);
  EXPECT_TRUE(dx.guards_ok() && dw.guards_ok());
  // dw absent (frozen weight): dx unchanged.
  HostTensor dx2 = garbage(Shape{c.n, c.d});
  ops.rmsnorm_backward(proj.t(), x.t(), w.t(), rstd.t(), dx2.t(), absent());
  EXPECT_EQ(dx2.values(), dx.values());
}

TEST_P(NormGrad, LayerNorm) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor x(kF64, Shape{c.n, c.d});
  HostTensor w(kF64, Shape{c.d});
  HostTensor b(kF64, Shape{c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  x.normal(12, 1);
  w.normal(12, 2);
  b.normal(12, 3);
  proj.normal(12, 4);
  HostTensor y(kF64, Shape{c.n, c.d});
  HostTensor mean(kF64, Shape{c.n});
  HostTensor rstd(kF64, Shape{c.n});
  auto loss = [&] {
    ops.layernorm_forward(x.t(), w.t(), b.t(), 1e-5, y.t(), mean.t(), rstd.t());
    return dot(y.values(), proj.values());
  };
  const Vec fd_x = fd_grad(x, loss);
  const Vec fd_w = fd_grad(w, loss);
  const Vec fd_b = fd_grad(b, loss);
  loss();
  HostTensor dx = garbage(Shape{c.n, c.d});
  HostTensor dw(kF64, Shape{c.d});
  HostTensor db(kF64, Shape{c.d});
  dw.normal(12, 5);
  db.normal(12, 6);
  const Vec dw0 = dw.values();
  const Vec db0 = db.values();
  ops.layernorm_backward(proj.t(), x.t(), w.t(), mean.t(), rstd.t(), dx.t(), dw.t(), db.t());
  // With D == 1, x - mean is 0 and dx is 0: compare absolutely there.
  if (c.d == 1) {
    for (double v : dx.values()) EXPECT_NEAR(v, 0.0, 1e-9);
  } else {
    EXPECT_LT(rel_error(dx.values(), fd_x), kGradTol);
  }
  EXPECT_LT(rel_error(minus(db.values(), db0), fd_b), kGradTol);
  if (c.d > 1) {
    EXPECT_LT(rel_error(minus(dw.values(), dw0), fd_w), kGradTol);
  }
  EXPECT_TRUE(dx.guards_ok() && dw.guards_ok() && db.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, NormGrad, kRowCases, case_name<RowCase>);

// ---- elementwise: activations and bias ---------------------------------------------------------
class FlatGrad : public ::testing::TestWithParam<RowCase> {};

TEST_P(FlatGrad, Swiglu) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor gate(kF64, Shape{c.n, c.d});
  HostTensor up(kF64, Shape{c.n, c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  HostTensor out(kF64, Shape{c.n, c.d});
  gate.normal(13, 1, 2.0);
  up.normal(13, 2);
  proj.normal(13, 3);
  auto loss = [&] {
    ops.swiglu_forward(gate.t(), up.t(), out.t());
    return dot(out.values(), proj.values());
  };
  const Vec fd_gate = fd_grad(gate, loss);
  const Vec fd_up = fd_grad(up, loss);
  HostTensor dgate = garbage(Shape{c.n, c.d});
  HostTensor dup = garbage(Shape{c.n, c.d});
  ops.swiglu_backward(proj.t(), gate.t(), up.t(), dgate.t(), dup.t());
  EXPECT_LT(rel_error(dgate.values(), fd_gate), kGradTol);
  EXPECT_LT(rel_error(dup.values(), fd_up), kGradTol);
  EXPECT_TRUE(dgate.guards_ok() && dup.guards_ok());
}

TEST_P(FlatGrad, Geglu) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor gate(kF64, Shape{c.n, c.d});
  HostTensor up(kF64, Shape{c.n, c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  HostTensor out(kF64, Shape{c.n, c.d});
  gate.normal(16, 1, 2.0);
  up.normal(16, 2);
  proj.normal(16, 3);
  auto loss = [&] {
    ops.geglu_forward(gate.t(), up.t(), out.t());
    return dot(out.values(), proj.values());
  };
  const Vec fd_gate = fd_grad(gate, loss);
  const Vec fd_up = fd_grad(up, loss);
  HostTensor dgate = garbage(Shape{c.n, c.d});
  HostTensor dup = garbage(Shape{c.n, c.d});
  ops.geglu_backward(proj.t(), gate.t(), up.t(), dgate.t(), dup.t());
  EXPECT_LT(rel_error(dgate.values(), fd_gate), kGradTol);
  EXPECT_LT(rel_error(dup.values(), fd_up), kGradTol);
  EXPECT_TRUE(dgate.guards_ok() && dup.guards_ok());
  // The forward is gelu(gate) * up, gelu as the gelu op computes it.
  HostTensor g(kF64, Shape{c.n, c.d});
  ops.gelu_forward(gate.t(), g.t());
  ops.geglu_forward(gate.t(), up.t(), out.t());
  const Vec gv = g.values(), uv = up.values(), ov = out.values();
  for (std::size_t i = 0; i < ov.size(); ++i) EXPECT_NEAR(ov[i], gv[i] * uv[i], 1e-15) << i;
}

TEST_P(FlatGrad, Gelu) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor x(kF64, Shape{c.n, c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  HostTensor out(kF64, Shape{c.n, c.d});
  x.normal(14, 1, 2.0);
  proj.normal(14, 2);
  auto loss = [&] {
    ops.gelu_forward(x.t(), out.t());
    return dot(out.values(), proj.values());
  };
  const Vec fd_x = fd_grad(x, loss);
  HostTensor dx = garbage(Shape{c.n, c.d});
  ops.gelu_backward(proj.t(), x.t(), dx.t());
  EXPECT_LT(rel_error(dx.values(), fd_x), kGradTol);
  EXPECT_TRUE(dx.guards_ok());
}

TEST_P(FlatGrad, Bias) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor y0(kF64, Shape{c.n, c.d});
  HostTensor bias(kF64, Shape{c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  y0.normal(15, 1);
  bias.normal(15, 2);
  proj.normal(15, 3);
  HostTensor y(kF64, Shape{c.n, c.d});
  auto loss = [&] {
    ops.copy(y.t(), y0.t());
    ops.add_bias(y.t(), bias.t());
    return dot(y.values(), proj.values());
  };
  const Vec fd_b = fd_grad(bias, loss);
  HostTensor db(kF64, Shape{c.d});
  db.normal(15, 4);
  const Vec db0 = db.values();
  ops.bias_backward(db.t(), proj.t());
  EXPECT_LT(rel_error(minus(db.values(), db0), fd_b), kGradTol);
}

// loss = <y0 * s, proj>: d/ds by scale_columns_backward(ds, proj, y0).
TEST_P(FlatGrad, ScaleColumns) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor y0(kF64, Shape{c.n, c.d});
  HostTensor s(kF64, Shape{c.d});
  HostTensor proj(kF64, Shape{c.n, c.d});
  y0.normal(16, 1);
  s.normal(16, 2);
  proj.normal(16, 3);
  HostTensor y(kF64, Shape{c.n, c.d});
  auto loss = [&] {
    ops.copy(y.t(), y0.t());
    ops.scale_columns(y.t(), s.t());
    return dot(y.values(), proj.values());
  };
  const Vec fd_s = fd_grad(s, loss);
  HostTensor ds(kF64, Shape{c.d});
  ds.normal(16, 4);
  const Vec ds0 = ds.values();
  ops.scale_columns_backward(ds.t(), proj.t(), y0.t());
  EXPECT_LT(rel_error(minus(ds.values(), ds0), fd_s), kGradTol);
}

TEST_P(FlatGrad, Embedding) {
  const RowCase c = GetParam();
  CpuOps& ops = shared_ops();
  const I64 vocab = c.n + 2;
  const I64 tokens = 3 * c.n + 1;  // more tokens than rows: ids repeat
  HostTensor table(kF64, Shape{vocab, c.d});
  HostTensor ids(DType::kI32, Shape{tokens});
  HostTensor proj(kF64, Shape{tokens, c.d});
  HostTensor out(kF64, Shape{tokens, c.d});
  table.normal(16, 1);
  ids.integers(16, 2, 0, vocab);
  proj.normal(16, 3);
  auto loss = [&] {
    ops.embedding_forward(table.t(), ids.t(), 0, out.t());
    return dot(out.values(), proj.values());
  };
  const Vec fd_t = fd_grad(table, loss);
  HostTensor dtable(kF64, Shape{vocab, c.d});
  dtable.normal(16, 4);
  const Vec d0 = dtable.values();
  ops.embedding_backward(dtable.t(), ids.t(), 0, proj.t());
  EXPECT_LT(rel_error(minus(dtable.values(), d0), fd_t), kGradTol);
  EXPECT_TRUE(dtable.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, FlatGrad, kRowCases, case_name<RowCase>);

// ---- rope -------------------------------------------------------------------------------------
struct RopeCase {
  I64 n, h, dh;
  [[nodiscard]] std::string name() const { return dims({n, h, dh}, "NHD"); }
  friend void PrintTo(const RopeCase& c, std::ostream* os) { *os << c.name(); }
};

class RopeGrad : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeGrad, Backward) {
  const RopeCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor x(kF64, Shape{c.n, c.h, c.dh});
  HostTensor pos(DType::kI32, Shape{c.n});
  HostTensor proj(kF64, Shape{c.n, c.h, c.dh});
  const HostTensor inv_freq = make_inv_freq(c.dh);
  x.normal(17, 1);
  pos.integers(17, 2, 0, 2048);
  proj.normal(17, 3);
  HostTensor y(kF64, Shape{c.n, c.h, c.dh});
  auto loss = [&] {
    ops.copy(y.t(), x.t());
    ops.rope_forward(y.t(), pos.t(), inv_freq.t());
    return dot(y.values(), proj.values());
  };
  const Vec fd_x = fd_grad(x, loss);
  HostTensor dx(kF64, Shape{c.n, c.h, c.dh});
  ops.copy(dx.t(), proj.t());
  ops.rope_backward(dx.t(), pos.t(), inv_freq.t());
  EXPECT_LT(rel_error(dx.values(), fd_x), kGradTol);
  EXPECT_TRUE(dx.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, RopeGrad,
                         ::testing::Values(RopeCase{1, 1, 2}, RopeCase{4, 3, 6},
                                           RopeCase{3, 2, 16}),
                         case_name<RopeCase>);

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

class AttentionGrad : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionGrad, Backward) {
  const AttnCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor q(kF64, Shape{c.b, c.t, c.hq, c.dh});
  HostTensor k(kF64, Shape{c.b, c.t, c.hkv, c.dh});
  HostTensor v(kF64, Shape{c.b, c.t, c.hkv, c.dh});
  HostTensor proj(kF64, Shape{c.b, c.t, c.hq, c.dh});
  q.normal(18, 1);
  k.normal(18, 2);
  v.normal(18, 3);
  proj.normal(18, 4);
  const HostTensor doc = make_doc_ids(c.b, c.t, c.docs, 18);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dh));
  HostTensor out(kF64, Shape{c.b, c.t, c.hq, c.dh});
  HostTensor lse(kF64, Shape{c.b, c.hq, c.t});
  auto loss = [&] {
    ops.attention_forward(q.t(), k.t(), v.t(), optional_t(doc), scale, c.window, out.t(),
                          lse.t());
    return dot(out.values(), proj.values());
  };
  const Vec fd_q = fd_grad(q, loss);
  const Vec fd_k = fd_grad(k, loss);
  const Vec fd_v = fd_grad(v, loss);
  loss();
  HostTensor dq = garbage(q.shape());
  HostTensor dk = garbage(k.shape());
  HostTensor dv = garbage(v.shape());
  ops.attention_backward(proj.t(), q.t(), k.t(), v.t(), out.t(), lse.t(), optional_t(doc), scale,
                         c.window, dq.t(), dk.t(), dv.t());
  EXPECT_LT(rel_error(dq.values(), fd_q), kGradTol);
  EXPECT_LT(rel_error(dk.values(), fd_k), kGradTol);
  EXPECT_LT(rel_error(dv.values(), fd_v), kGradTol);
  EXPECT_TRUE(dq.guards_ok() && dk.guards_ok() && dv.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionGrad,
                         ::testing::Values(AttnCase{1, 5, 2, 2, 3, Docs::kNone},
                                           AttnCase{2, 6, 4, 2, 4, Docs::kNone},
                                           AttnCase{1, 20, 3, 1, 4, Docs::kNone},
                                           AttnCase{1, 9, 6, 2, 3, Docs::kPacked},
                                           AttnCase{2, 19, 2, 1, 2, Docs::kPacked},
                                           AttnCase{2, 7, 3, 1, 2, Docs::kScattered},
                                           AttnCase{1, 18, 4, 4, 3, Docs::kScattered},
                                           // past one key block (64) and one register block
                                           // of outputs (16 in f64), with a tail
                                           AttnCase{1, 66, 1, 1, 17, Docs::kNone},
                                           AttnCase{1, 70, 2, 1, 3, Docs::kPacked},
                                           AttnCase{1, 70, 2, 2, 2, Docs::kScattered},
                                           // sliding windows several times shorter than the
                                           // sequence, across key blocks, with documents
                                           AttnCase{1, 20, 2, 1, 3, Docs::kNone, 4},
                                           AttnCase{1, 17, 3, 3, 2, Docs::kNone, 1},
                                           AttnCase{2, 19, 4, 2, 2, Docs::kPacked, 5},
                                           AttnCase{1, 18, 2, 2, 3, Docs::kScattered, 3},
                                           AttnCase{1, 80, 2, 1, 2, Docs::kNone, 20},
                                           AttnCase{1, 70, 2, 1, 2, Docs::kPacked, 9}),
                         case_name<AttnCase>);

// ---- cross-entropy ----------------------------------------------------------------------------
struct CeCase {
  I64 n, vocab, valid;
  [[nodiscard]] std::string name() const { return dims({n, vocab, valid}, "NVR"); }
  friend void PrintTo(const CeCase& c, std::ostream* os) { *os << c.name(); }
};

class CrossEntropyGrad : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyGrad, Backward) {
  const CeCase c = GetParam();
  CpuOps& ops = shared_ops();
  HostTensor logits(kF64, Shape{c.n, c.vocab});
  logits.normal(19, 1, 2.0);
  const HostTensor targets = make_targets(c.n, c.valid, 19);
  const double dscale = 0.7;
  HostTensor losses(kF64, Shape{c.n});
  auto loss = [&] {
    ops.cross_entropy(logits.t(), targets.t(), c.valid, losses.t(), absent(), dscale);
    double s = 0;
    for (double l : losses.values()) s += dscale * l;
    return s;
  };
  const Vec fd = fd_grad(logits, loss);
  HostTensor grad = garbage(Shape{c.n, c.vocab});
  ops.cross_entropy(logits.t(), targets.t(), c.valid, losses.t(), grad.t(), dscale);
  EXPECT_LT(rel_error(grad.values(), fd), kGradTol);
  for (I64 r = 0; r < c.n; ++r)
    for (I64 j = c.valid; j < c.vocab; ++j) ASSERT_EQ(grad.get(r * c.vocab + j), 0.0);
  // Aliased: the gradient overwrites the logits.
  ops.cross_entropy(logits.t(), targets.t(), c.valid, losses.t(), logits.t(), dscale);
  EXPECT_LT(rel_error(logits.values(), fd), kGradTol);
  EXPECT_TRUE(grad.guards_ok() && logits.guards_ok());
}

INSTANTIATE_TEST_SUITE_P(Ops, CrossEntropyGrad,
                         ::testing::Values(CeCase{1, 1, 1}, CeCase{4, 9, 9}, CeCase{7, 20, 17},
                                           CeCase{3, 130, 128}),
                         case_name<CeCase>);

}  // namespace
}  // namespace tailor::backend::test
