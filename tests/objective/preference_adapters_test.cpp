// The reference of DPO under PEFT: the policy with its adapters disabled (no second copy). With
// the adapters off, a LoRA or bottleneck-adapter model computes exactly its frozen base (bitwise,
// against a model built without them); DPO with that reference equals DPO against a separate
// base model, loss and gradients; at initialization (LoRA's B = 0) the policy is its reference,
// so every pair's DPO loss is log 2. The adapters' gradients match central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "objective/preference.h"
#include "peft/bottleneck.h"
#include "peft/lora.h"
#include "model/model_test_util.h"

namespace tailor::objective {
namespace {

using model::Parameter;
using model::Transformer;

peft::LoraSpec all_linear() {
  peft::LoraSpec l;
  l.rank = 3;
  l.alpha = 5.0;
  l.targets = {"all-linear"};
  return l;
}

// Two pairs over tiny_llama's vocabulary: rows 2i chosen, 2i + 1 rejected; prompt tokens and
// padding carry no target.
model::testing::HostBatch two_pairs() {
  return model::testing::HostBatch(
      4, 6,
      {1, 5, 3, 9, 2, 0, 1, 5, 7, 2, 0, 0, 4, 6, 8, 2, 0, 0, 4, 6, 10, 3, 2, 0},
      {-100, 3, 9, 2, -100, -100, -100, 7, 2, -100, -100, -100, -100, 8, 2, -100, -100, -100,
       -100, 10, 3, 2, -100, -100},
      {0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 0},
      {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1});
}

// Every LoRA B (zero at init) set to small nonzero values, so the policy differs from its base.
void perturb_adapters(Transformer& m) {
  for (Parameter& p : m.params().all()) {
    if (!p.trainable) continue;
    double* v = p.value.ptr<double>();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) v[i] += 0.05 * std::sin(1.0 + 0.37 * i);
  }
}

double dpo_step(Transformer& m, Transformer* reference, const model::Batch& batch,
                backend::Ops& ops) {
  Preference obj({PreferenceKind::kDpo, 0.5}, reference);
  comm::SelfCommunicator self;
  m.params().zero_grad(ops);
  const model::Batch* b = &batch;
  obj.begin_step({&b, 1}, self);
  return obj.step_loss(obj.micro_batch(m, batch, {}), self);
}

TEST(PreferenceAdapters, DisabledAdaptersComputeTheBaseBitwise) {
  backend::CpuOps ops(2);
  const model::ModelSpec s = model::testing::tiny_llama();
  const peft::Lora lora(all_linear());
  const peft::Bottleneck bottleneck(4);
  for (const model::Attachment* method :
       std::vector<const model::Attachment*>{&lora, &bottleneck}) {
    Transformer base(s, ops, DType::kF64);
    Transformer m(s, ops, DType::kF64, nullptr, {method});
    base.init_parameters(7);
    m.init_parameters(7);  // the same base values
    perturb_adapters(m);
    auto batch = two_pairs();
    const std::int64_t vp = s.padded_vocab();
    backend::Buffer l1(DType::kF64, Shape{24, vp}), l2(DType::kF64, Shape{24, vp});
    const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
    const double with = m.forward(batch.batch, &t2);
    m.set_adapters_enabled(false);
    EXPECT_EQ(base.forward(batch.batch, &t1), m.forward(batch.batch, &t2));
    EXPECT_EQ(std::memcmp(l1.data(), l2.data(), t1.bytes()), 0);
    m.set_adapters_enabled(true);
    EXPECT_NE(with, base.forward(batch.batch));  // the adapters do change the model
  }
}

TEST(PreferenceAdapters, DpoAgainstDisabledAdaptersEqualsDpoAgainstTheBase) {
  backend::CpuOps ops(2);
  const model::ModelSpec s = model::testing::tiny_llama();
  const peft::Lora lora(all_linear());
  Transformer base(s, ops, DType::kF64);
  Transformer m(s, ops, DType::kF64, nullptr, {&lora});
  base.init_parameters(7);
  m.init_parameters(7);
  auto batch = two_pairs();
  // At init the policy is its reference: every pair's loss is -log s(0) = log 2.
  EXPECT_NEAR(dpo_step(m, nullptr, batch.batch, ops), std::log(2.0), 1e-12);
  perturb_adapters(m);
  const double with_base = dpo_step(m, &base, batch.batch, ops);
  std::vector<std::vector<double>> grads;
  for (const Parameter& p : m.params().all())
    if (p.trainable) grads.emplace_back(p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
  const double disabled = dpo_step(m, nullptr, batch.batch, ops);
  EXPECT_NEAR(disabled, with_base, 1e-13);
  EXPECT_GT(std::abs(disabled - std::log(2.0)), 1e-6);
  std::size_t k = 0;
  for (const Parameter& p : m.params().all()) {
    if (!p.trainable) continue;
    for (std::int64_t i = 0; i < p.shape.numel(); ++i)
      EXPECT_NEAR(p.grad.ptr<double>()[i], grads[k][static_cast<std::size_t>(i)], 1e-13) << p.name;
    ++k;
  }
  EXPECT_TRUE(m.adapters_enabled());
  // The adapters' gradients against central differences of the same loss.
  const auto loss = [&] {
    std::vector<std::vector<double>> keep;
    for (const Parameter& p : m.params().all())
      if (p.trainable) keep.emplace_back(p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
    const double l = dpo_step(m, nullptr, batch.batch, ops);
    std::size_t j = 0;
    for (Parameter& p : m.params().all())
      if (p.trainable) std::copy(keep[j].begin(), keep[j].end(), p.grad.ptr<double>()), ++j;
    return l;
  };
  dpo_step(m, nullptr, batch.batch, ops);
  EXPECT_GT(model::testing::expect_gradients_match_fd_of(m, loss), 10);
}

}  // namespace
}  // namespace tailor::objective
