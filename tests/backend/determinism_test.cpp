// Thread-count independence of the CPU ops (ARCHITECTURE.md, Determinism).
//
// The same inputs go through CpuOps(1), CpuOps(2) and CpuOps(3); every output must be bitwise
// equal (memcmp). Shapes are large enough that every reduction has several blocks, the column
// split of embedding_backward several tasks, and attention several (b, head) tasks per kv head.
// GEMM is left out: OpenBLAS's blocking depends on its own (pinned) thread count by design.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "ops_test_util.h"

namespace tailor::backend::test {
namespace {

using I64 = std::int64_t;

struct Output {
  std::string name;
  std::vector<unsigned char> bytes;
};

void record(std::vector<Output>& outs, const std::string& name, const HostTensor& t) {
  outs.push_back({name, t.bytes()});
}

std::vector<Output> run_ops(CpuOps& ops, DType dt) {
  std::vector<Output> outs;
  {  // sum_squares
    HostTensor x(dt, Shape{300001});
    x.normal(21, 1);
    const double s = ops.sum_squares(x.t());
    std::vector<unsigned char> b(sizeof(double));
    std::memcpy(b.data(), &s, sizeof(double));
    outs.push_back({"sum_squares", b});
  }
  {  // bias_backward
    HostTensor dy(dt, Shape{1000, 33});
    HostTensor db(dt, Shape{33});
    dy.normal(22, 1);
    ops.bias_backward(db.t(), dy.t());
    record(outs, "bias_backward", db);
  }
  {  // norms, forward and backward
    const I64 n = 700;
    const I64 d = 96;
    HostTensor x(dt, Shape{n, d});
    HostTensor w(dt, Shape{d});
    HostTensor b(dt, Shape{d});
    HostTensor dy(dt, Shape{n, d});
    x.normal(23, 1);
    w.normal(23, 2);
    b.normal(23, 3);
    dy.normal(23, 4);
    HostTensor y(dt, Shape{n, d});
    HostTensor mean(dt, Shape{n});
    HostTensor rstd(dt, Shape{n});
    HostTensor dx(dt, Shape{n, d});
    HostTensor dw(dt, Shape{d});
    HostTensor db(dt, Shape{d});
    ops.rmsnorm_forward(x.t(), w.t(), 1e-6, y.t(), rstd.t());
    ops.rmsnorm_backward(dy.t(), x.t(), w.t(), rstd.t(), dx.t(), dw.t());
    record(outs, "rmsnorm y", y);
    record(outs, "rmsnorm dx", dx);
    record(outs, "rmsnorm dw", dw);
    ops.layernorm_forward(x.t(), w.t(), b.t(), 1e-5, y.t(), mean.t(), rstd.t());
    ops.layernorm_backward(dy.t(), x.t(), w.t(), mean.t(), rstd.t(), dx.t(), dw.t(), db.t());
    record(outs, "layernorm y", y);
    record(outs, "layernorm dx", dx);
    record(outs, "layernorm dw", dw);
    record(outs, "layernorm db", db);
  }
  {  // embedding backward: repeated ids, several column blocks
    HostTensor ids(DType::kI32, Shape{2000});
    HostTensor dout(dt, Shape{2000, 300});
    HostTensor dtable(dt, Shape{50, 300});
    ids.integers(24, 1, 0, 50);
    dout.normal(24, 2);
    ops.embedding_backward(dtable.t(), ids.t(), 0, dout.t());
    record(outs, "embedding_backward", dtable);
  }
  for (I64 hkv : {2, 6}) {  // attention with GQA and packed documents
    const I64 b = 2, t = 70, hq = 6, dh = 16;
    HostTensor q(dt, Shape{b, t, hq, dh});
    HostTensor k(dt, Shape{b, t, hkv, dh});
    HostTensor v(dt, Shape{b, t, hkv, dh});
    HostTensor dout(dt, Shape{b, t, hq, dh});
    q.normal(25, 1);
    k.normal(25, 2);
    v.normal(25, 3);
    dout.normal(25, 4);
    const HostTensor doc = make_doc_ids(b, t, Docs::kPacked, 25);
    HostTensor out(dt, Shape{b, t, hq, dh});
    HostTensor lse(dt, Shape{b, hq, t});
    HostTensor dq(dt, q.shape());
    HostTensor dk(dt, k.shape());
    HostTensor dv(dt, v.shape());
    ops.attention_forward(q.t(), k.t(), v.t(), doc.t(), 0.25, 0, out.t(), lse.t());
    ops.attention_backward(dout.t(), q.t(), k.t(), v.t(), out.t(), lse.t(), doc.t(), 0.25, 0,
                           dq.t(), dk.t(), dv.t());
    const std::string tag = " hkv" + std::to_string(hkv);
    record(outs, "attention out" + tag, out);
    record(outs, "attention lse" + tag, lse);
    record(outs, "attention dq" + tag, dq);
    record(outs, "attention dk" + tag, dk);
    record(outs, "attention dv" + tag, dv);
  }
  {  // cross-entropy
    HostTensor logits(dt, Shape{64, 1000});
    logits.normal(26, 1, 3.0);
    const HostTensor targets = make_targets(64, 990, 26);
    HostTensor losses(dt, Shape{64});
    ops.cross_entropy(logits.t(), targets.t(), 990, losses.t(), logits.t(), 1.0 / 64);
    record(outs, "cross_entropy losses", losses);
    record(outs, "cross_entropy dlogits", logits);
  }
  {  // elementwise ops over several blocks
    const I64 n = 100003;
    HostTensor x(dt, Shape{n});
    HostTensor u(dt, Shape{n});
    HostTensor g(dt, Shape{n});
    HostTensor o(dt, Shape{n});
    HostTensor d1(dt, Shape{n});
    HostTensor d2(dt, Shape{n});
    x.normal(27, 1);
    u.normal(27, 2);
    g.normal(27, 3);
    ops.swiglu_forward(x.t(), u.t(), o.t());
    ops.swiglu_backward(g.t(), x.t(), u.t(), d1.t(), d2.t());
    record(outs, "swiglu", o);
    record(outs, "swiglu dgate", d1);
    record(outs, "swiglu dup", d2);
    ops.gelu_forward(x.t(), o.t());
    ops.gelu_backward(g.t(), x.t(), d1.t());
    record(outs, "gelu", o);
    record(outs, "gelu dx", d1);
    HostTensor m(dt, Shape{n});
    HostTensor v(dt, Shape{n});
    AdamWHyper hyper;
    hyper.weight_decay = 0.1;
    ops.adamw_update(x.t(), g.t(), m.t(), v.t(), hyper);
    record(outs, "adamw", x);
  }
  {  // rope
    HostTensor x(dt, Shape{300, 4, 64});
    HostTensor pos(DType::kI32, Shape{300});
    x.normal(28, 1);
    pos.integers(28, 2, 0, 8192);
    ops.rope_forward(x.t(), pos.t(), make_inv_freq(64).t());
    record(outs, "rope", x);
  }
  return outs;
}

class ThreadCountTest : public ::testing::TestWithParam<DType> {};

TEST_P(ThreadCountTest, BitwiseEqualForOneTwoThreeThreads) {
  const DType dt = GetParam();
  std::vector<std::vector<Output>> results;
  for (int threads : {1, 2, 3}) {
    CpuOps ops(threads);
    ASSERT_EQ(ops.threads(), threads);
    results.push_back(run_ops(ops, dt));
  }
  for (std::size_t r = 1; r < results.size(); ++r) {
    ASSERT_EQ(results[r].size(), results[0].size());
    for (std::size_t i = 0; i < results[0].size(); ++i) {
      const Output& a = results[0][i];
      const Output& b = results[r][i];
      ASSERT_EQ(a.bytes.size(), b.bytes.size()) << a.name;
      EXPECT_EQ(std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()), 0)
          << a.name << ": 1 thread vs " << r + 1 << " threads";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, ThreadCountTest, ::testing::Values(DType::kF32, DType::kF64),
                         dtype_param_name);

}  // namespace
}  // namespace tailor::backend::test
