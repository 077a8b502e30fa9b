// IA3: with every l = 1 the model is exactly the base; the base is frozen; every l's gradient
// matches central finite differences in f64 — output and input scaling on column- and
// row-parallel linears, with biases (GPT-2) and without (LLaMA).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/ia3.h"

namespace tailor::model {
namespace {

using peft::Ia3;
using peft::Ia3Spec;
using testing::sample_batch;

Ia3Spec spec_of(std::vector<std::string> targets, std::vector<std::string> ff) {
  Ia3Spec s;
  s.targets = std::move(targets);
  s.feedforward = std::move(ff);
  return s;
}

TEST(Ia3, UnitVectorsReproduceTheBaseExactly) {
  backend::CpuOps ops(2);
  for (const ModelSpec& s : {testing::tiny_llama(), testing::tiny_gpt2()}) {
    Transformer base(s, ops, DType::kF64);
    const Ia3 method(spec_of({"all-linear"}, {"q_proj", "o_proj", "up_proj"}));
    Transformer ia3(s, ops, DType::kF64, nullptr, {&method});
    base.init_parameters(4);
    ia3.init_parameters(4);  // same base values; every l = 1
    auto b = sample_batch();
    const std::int64_t vp = s.padded_vocab();
    backend::Buffer l1(DType::kF64, Shape{12, vp}), l2(DType::kF64, Shape{12, vp});
    const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
    EXPECT_EQ(base.forward(b.batch, &t1), ia3.forward(b.batch, &t2));
    EXPECT_EQ(std::memcmp(l1.data(), l2.data(), t1.bytes()), 0);
    EXPECT_EQ(ia3.params().at("model.layers.1.mlp.down_proj.ia3_l").value.ptr<double>()[0], 1.0);
  }
}

TEST(Ia3, BaseIsFrozenAndVectorsHaveTheirShapes) {
  backend::CpuOps ops(1);
  const ModelSpec s = testing::tiny_llama();
  const Ia3 method(spec_of({"k_proj", "v_proj", "down_proj"}, {"down_proj"}));
  Transformer m(s, ops, DType::kF32, nullptr, {&method});
  std::int64_t trainable = 0;
  for (const Parameter& p : m.params().all()) {
    const bool adapter = p.method == Ia3::kName;
    EXPECT_EQ(p.trainable, adapter) << p.name;
    EXPECT_EQ(p.grad.data != nullptr, adapter) << p.name;
    if (adapter) {
      trainable += p.shape.numel();
      EXPECT_FALSE(p.decay) << p.name;
    }
  }
  // k, v: [kv_dim] output vectors; down: [intermediate] input vector; per layer.
  EXPECT_EQ(m.params().at("model.layers.0.self_attn.k_proj.ia3_l").shape, Shape{s.kv_dim()});
  EXPECT_EQ(m.params().at("model.layers.0.mlp.down_proj.ia3_l").shape,
            Shape{s.intermediate_size});
  EXPECT_EQ(trainable, s.num_layers * (2 * s.kv_dim() + s.intermediate_size));
  EXPECT_EQ(m.params().trainable_numel(), trainable);
}

struct Case {
  const char* name;
  ModelSpec spec;
  std::vector<std::string> feedforward;
};

class Ia3Gradient : public ::testing::TestWithParam<Case> {};

TEST_P(Ia3Gradient, MatchesCentralDifferences) {
  backend::CpuOps ops(2);
  const Ia3 method(spec_of({"all-linear"}, GetParam().feedforward));
  Transformer m(GetParam().spec, ops, DType::kF64, nullptr, {&method});
  m.init_parameters(21);
  // l away from 1, so every vector's gradient depends on the others.
  for (Parameter& p : m.params().all())
    if (p.method == Ia3::kName)
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<double>()[i] = 1.0 + 0.3 * std::sin(0.7 * static_cast<double>(i) + 1.0);
  auto hb = sample_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  const int checked = testing::expect_trainable_gradients_match_fd(m, hb.batch);
  EXPECT_EQ(checked, 2 * (GetParam().spec.mlp == MlpType::kSwiGLU ? 7 : 6));
}

// Each case scales some column- and some row-parallel linears on their input, the rest on their
// output.
INSTANTIATE_TEST_SUITE_P(
    Families, Ia3Gradient,
    ::testing::Values(Case{"llama_ff_up_o", testing::tiny_llama(), {"up_proj", "o_proj"}},
                      Case{"llama_ff_q_down", testing::tiny_llama(), {"q_proj", "down_proj"}},
                      Case{"gpt2_ff_k_o", testing::tiny_gpt2(), {"k_proj", "o_proj"}},
                      Case{"gpt2_ff_up_down", testing::tiny_gpt2(), {"up_proj", "down_proj"}}),
    [](const auto& case_info) { return std::string(case_info.param.name); });

}  // namespace
}  // namespace tailor::model
