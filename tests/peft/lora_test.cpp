// LoRA: with B = 0 the model is exactly the base; the base is frozen (no gradient storage, so no
// optimizer state); every LoRA factor's gradient matches central finite differences in f64, for
// every linear of both families and with rsLoRA scaling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

using peft::Lora;
using peft::LoraSpec;

using testing::sample_batch;

LoraSpec all_linear(bool rslora = false) {
  LoraSpec l;
  l.rank = 3;
  l.alpha = 5.0;
  l.rslora = rslora;
  l.targets = {"all-linear"};
  return l;
}

TEST(Lora, ZeroBReproducesTheBaseExactly) {
  backend::CpuOps ops(2);
  for (const ModelSpec& s : {testing::tiny_llama(), testing::tiny_gpt2()}) {
    Transformer base(s, ops, DType::kF64);
    const LoraSpec spec = all_linear();
    const Lora lora_method(spec);
    Transformer lora(s, ops, DType::kF64, nullptr, {&lora_method});
    base.init_parameters(4);
    lora.init_parameters(4);  // same base values; A random, B zero
    auto b = sample_batch();
    const std::int64_t vp = s.padded_vocab();
    backend::Buffer l1(DType::kF64, Shape{12, vp}), l2(DType::kF64, Shape{12, vp});
    const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
    EXPECT_EQ(base.forward(b.batch, &t1), lora.forward(b.batch, &t2));
    EXPECT_EQ(std::memcmp(l1.data(), l2.data(), t1.bytes()), 0);
    const Parameter& a = lora.params().at("model.layers.1.mlp.down_proj.lora_A.weight");
    EXPECT_GT(std::abs(a.value.ptr<double>()[0]), 0.0);
    EXPECT_LE(std::abs(a.value.ptr<double>()[0]), 1.0 / std::sqrt(static_cast<double>(s.intermediate_size)));
  }
}

TEST(Lora, BaseIsFrozenAndOnlyAdaptersHaveGradients) {
  backend::CpuOps ops(1);
  const ModelSpec s = testing::tiny_llama();
  LoraSpec spec;  // default: q_proj and v_proj, rank 8
  spec.rank = 2;
  const Lora m_method(spec);
  Transformer m(s, ops, DType::kF32, nullptr, {&m_method});
  std::int64_t trainable = 0;
  for (const Parameter& p : m.params().all()) {
    const bool adapter = p.name.find(".lora_") != std::string::npos;
    EXPECT_EQ(p.trainable, adapter) << p.name;
    EXPECT_EQ(p.grad.data != nullptr, adapter) << p.name;
    if (adapter) {
      trainable += p.shape.numel();
      EXPECT_TRUE(p.name.find("q_proj") != std::string::npos || p.name.find("v_proj") != std::string::npos) << p.name;
    }
  }
  // q: A [2, 8] + B [16, 2]; v: A [2, 8] + B [8, 2]; two layers.
  EXPECT_EQ(trainable, 2 * (16 + 32 + 16 + 16));
  EXPECT_EQ(m.params().trainable_numel(), trainable);
  EXPECT_EQ(m.params().flat_grads().numel(), trainable);
}

struct Case {
  const char* name;
  ModelSpec spec;
  bool rslora;
};

class LoraGradient : public ::testing::TestWithParam<Case> {};

TEST_P(LoraGradient, MatchesCentralDifferences) {
  backend::CpuOps ops(2);
  const LoraSpec spec = all_linear(GetParam().rslora);
  const Lora m_method(spec);
  Transformer m(GetParam().spec, ops, DType::kF64, nullptr, {&m_method});
  m.init_parameters(21);
  // B away from zero, so A's gradient is not trivially zero.
  for (Parameter& p : m.params().all())
    if (p.name.ends_with("lora_B.weight"))
      for (std::int64_t i = 0; i < p.shape.numel(); ++i) p.value.ptr<double>()[i] = 0.2 * std::sin(0.7 * static_cast<double>(i) + 1.0);
  auto hb = sample_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  const int checked = testing::expect_trainable_gradients_match_fd(m, hb.batch);
  EXPECT_EQ(checked, 2 * 2 * (GetParam().spec.mlp == MlpType::kSwiGLU ? 7 : 6));
}

INSTANTIATE_TEST_SUITE_P(Families, LoraGradient,
                         ::testing::Values(Case{"llama", testing::tiny_llama(), false},
                                           Case{"gpt2_rslora", testing::tiny_gpt2(), true}),
                         [](const auto& case_info) { return std::string(case_info.param.name); });

}  // namespace
}  // namespace tailor::model
