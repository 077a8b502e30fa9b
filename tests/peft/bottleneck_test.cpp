// Bottleneck (Houlsby) adapters: identity at initialisation (up = 0), base frozen, and every
// adapter gradient matches central finite differences in f64 for both families.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/bottleneck.h"

namespace tailor::model {
namespace {

using testing::sample_batch;

TEST(Adapter, StartsAsTheIdentityWithTheBaseFrozen) {
  backend::CpuOps ops(2);
  for (const ModelSpec& s : {testing::tiny_llama(), testing::tiny_gpt2()}) {
    Transformer base(s, ops, DType::kF64);
    const peft::Bottleneck adapters(/*width=*/5);
    Transformer adapted(s, ops, DType::kF64, nullptr, {&adapters});
    base.init_parameters(4);
    adapted.init_parameters(4);
    auto b = sample_batch();
    EXPECT_EQ(base.forward(b.batch), adapted.forward(b.batch));
    std::int64_t trainable = 0;
    for (const Parameter& p : adapted.params().all()) {
      const bool adapter = p.name.find("_adapter.") != std::string::npos;
      EXPECT_EQ(p.trainable, adapter) << p.name;
      if (adapter) trainable += p.shape.numel();
    }
    // Per layer: 2 adapters x (down [5, 8] + 5 + up [8, 5] + 8).
    EXPECT_EQ(trainable, s.num_layers * 2 * (40 + 5 + 40 + 8));
  }
}

class AdapterGradient : public ::testing::TestWithParam<ModelSpec> {};

TEST_P(AdapterGradient, MatchesCentralDifferences) {
  backend::CpuOps ops(2);
  const peft::Bottleneck adapters(3);
  Transformer m(GetParam(), ops, DType::kF64, nullptr, {&adapters});
  m.init_parameters(8);
  for (Parameter& p : m.params().all())
    if (p.trainable)
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<double>()[i] += 0.3 * std::cos(0.9 * static_cast<double>(i) + 0.5);
  auto hb = sample_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  const int checked = testing::expect_trainable_gradients_match_fd(m, hb.batch);
  EXPECT_EQ(checked, 2 * 2 * 4);
}

INSTANTIATE_TEST_SUITE_P(Families, AdapterGradient,
                         ::testing::Values(testing::tiny_llama(), testing::tiny_gpt2()));

}  // namespace
}  // namespace tailor::model
