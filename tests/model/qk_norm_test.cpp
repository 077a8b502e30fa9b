// Per-head q/k RMSNorm (ModelSpec::qk_norm, Qwen3 and Gemma 3) beyond the f64 gradient check of
// transformer_grad_test:
//  - the forward is the definition: each head's [Dh] slice of q and k, before RoPE, normalized by
//    its own RMS and scaled by the shared weight. Checked through a property the norm alone has:
//    scaling a head's rows of q_proj by c > 0 leaves the loss unchanged (up to eps), while the same
//    model without q/k norm changes; and the loss is not the loss of the model without it.
//  - LoRA on q_proj / k_proj under q/k norm: the adapters feed the norm's input, and their
//    gradients equal central differences (f64).
//  - on the device's contracts (the emulated device, f32) forward and backward equal the CPU bit
//    for bit.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/emulated_device_ops.h"
#include "model/model_test_util.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

double loss_after_scaling_q_head(const ModelSpec& spec, double c) {
  backend::CpuOps ops(1);
  Transformer m(spec, ops, DType::kF64);
  m.init_parameters(5);
  // Head 1 of layer 0: rows [Dh, 2 Dh) of q_proj [Hq*Dh, D].
  Parameter& q = m.params().at("model.layers.0.self_attn.q_proj.weight");
  const std::int64_t d = spec.hidden_size;
  for (std::int64_t i = spec.head_dim * d; i < 2 * spec.head_dim * d; ++i)
    q.value.ptr<double>()[i] *= c;
  const testing::HostBatch hb = testing::sample_batch();
  return m.forward(hb.batch);
}

TEST(QkNorm, HeadsAreNormalizedEachOnItsOwn) {
  ModelSpec with = testing::tiny_qk_norm();
  with.norm_eps = 1e-12;  // so the scale invariance holds to rounding
  ModelSpec without = with;
  without.qk_norm = false;
  const double base = loss_after_scaling_q_head(with, 1.0);
  EXPECT_NEAR(loss_after_scaling_q_head(with, 7.0), base, 1e-10 * std::abs(base));
  EXPECT_NEAR(loss_after_scaling_q_head(with, 0.05), base, 1e-10 * std::abs(base));
  // Not vacuous: without the norm the same scaling changes the loss, and the norm changes it.
  const double plain = loss_after_scaling_q_head(without, 1.0);
  EXPECT_GT(std::abs(loss_after_scaling_q_head(without, 7.0) - plain), 1e-3 * std::abs(plain));
  EXPECT_GT(std::abs(plain - base), 1e-3 * std::abs(base));
}

TEST(QkNorm, LoraOnQAndKMatchesCentralDifferences) {
  backend::CpuOps ops(1);
  peft::LoraSpec lora;
  lora.rank = 2;
  lora.targets = {"q_proj", "k_proj"};
  const peft::Lora method(lora);
  const std::vector<const Attachment*> methods = {&method};
  Transformer m(testing::tiny_qk_norm(), ops, DType::kF64, nullptr, methods);
  m.init_parameters(9);
  for (Parameter& p : m.params().all())
    if (p.role == ParamRole::kAdapterOut)  // B away from zero so A's gradient carries signal
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<double>()[i] = 0.2 * std::sin(0.7 * static_cast<double>(i) + 1.0);
  const testing::HostBatch hb = testing::sample_batch();
  m.params().zero_grad(ops);
  m.forward_backward(hb.batch, 1.0);
  int checked = 0;
  for (Parameter& p : m.params().all()) {
    if (!p.trainable) continue;
    double* v = p.value.ptr<double>();
    const double* g = p.grad.ptr<double>();
    double num = 0.0, den = 0.0;
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) {
      const double saved = v[i];
      const double h = 1e-5;
      v[i] = saved + h;
      const double lp = m.forward(hb.batch);
      v[i] = saved - h;
      const double lm = m.forward(hb.batch);
      v[i] = saved;
      const double fd = (lp - lm) / (2 * h);
      num += (g[i] - fd) * (g[i] - fd);
      den += fd * fd;
    }
    EXPECT_LT(std::sqrt(num), 1e-6 * std::sqrt(den)) << p.name;
    EXPECT_GT(den, 1e-12) << p.name;
    ++checked;
  }
  EXPECT_EQ(checked, 2 * 2 * 2);  // A and B of q and k, two layers
}

// The loss and the flat gradient (host bytes) of one forward/backward on `ops`.
std::pair<double, std::vector<unsigned char>> run(backend::Ops& ops, const testing::HostBatch& hb) {
  Transformer m(testing::tiny_qk_norm(), ops, DType::kF32);
  m.init_parameters(21);
  std::vector<backend::Buffer> keep;
  auto to_ops = [&](const backend::Tensor& t) {
    if (t.data == nullptr) return t;
    keep.push_back(ops.alloc(t.dtype, t.shape));
    ops.copy(keep.back().tensor(), t);
    return keep.back().tensor();
  };
  Batch b = hb.batch;
  b.ids = to_ops(b.ids);
  b.targets = to_ops(b.targets);
  b.positions = to_ops(b.positions);
  b.doc_ids = to_ops(b.doc_ids);
  m.params().zero_grad(ops);
  const double loss = m.forward_backward(b, 1.0);
  const backend::Tensor g = m.params().flat_grads();
  backend::Buffer host(g.dtype, g.shape);
  ops.copy(host.tensor(), g);
  std::vector<unsigned char> bytes(g.bytes());
  std::memcpy(bytes.data(), host.tensor().data, g.bytes());
  return {loss, bytes};
}

TEST(QkNorm, EmulatedDeviceEqualsTheCpuBitForBit) {
  const testing::HostBatch hb = testing::sample_batch();
  backend::CpuOps cpu(2);
  const auto want = run(cpu, hb);
  backend::EmulatedDeviceOps dev(2);
  const auto got = run(dev, hb);
  EXPECT_EQ(got.first, want.first);
  ASSERT_EQ(got.second.size(), want.second.size());
  EXPECT_TRUE(got.second == want.second) << "a gradient differs on the emulated device";
}

}  // namespace
}  // namespace tailor::model
