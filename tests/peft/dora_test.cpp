// DoRA (LoRA with use_dora): initialized as peft does (m = ||W|| per output row, B = 0) the model
// is exactly the base; the base is frozen and each magnitude has its linear's output width; every
// magnitude's gradient matches f64 central differences of the loss, on column- and row-parallel
// linears, with biases (GPT-2) and without (LLaMA). A and B are checked against peft itself
// (tests/checkpoint/peft_dora_golden_test.cpp): peft treats the norm ||W + s B A|| as a constant,
// so their gradients are by design not the loss's derivative.
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

LoraSpec dora_spec() {
  LoraSpec s;
  s.rank = 3;
  s.alpha = 5.0;
  s.targets = {"all-linear"};
  s.use_dora = true;
  return s;
}

void initialize(const Lora& method, Transformer& m, backend::Ops& ops) {
  peft::InitContext ctx;
  ctx.ops = &ops;
  method.initialize(m, ctx);
}

TEST(Dora, InitialMagnitudesReproduceTheBaseExactly) {
  backend::CpuOps ops(2);
  for (const ModelSpec& s : {testing::tiny_llama(), testing::tiny_gpt2()}) {
    Transformer base(s, ops, DType::kF64);
    const Lora method(dora_spec());
    Transformer dora(s, ops, DType::kF64, nullptr, {&method});
    base.init_parameters(4);
    dora.init_parameters(4);  // same base values; B = 0
    initialize(method, dora, ops);
    // m = the norms of W's rows.
    const Parameter& w = dora.params().at("model.layers.1.mlp.down_proj.weight");
    const Parameter& mag = dora.params().at("model.layers.1.mlp.down_proj.lora_magnitude_vector");
    ASSERT_EQ(mag.shape, Shape{w.shape[0]});
    for (std::int64_t o = 0; o < w.shape[0]; ++o) {
      double sq = 0.0;
      for (std::int64_t k = 0; k < w.shape[1]; ++k) {
        const double v = w.value.ptr<double>()[o * w.shape[1] + k];
        sq += v * v;
      }
      EXPECT_NEAR(mag.value.ptr<double>()[o], std::sqrt(sq), 1e-12 * std::sqrt(sq)) << o;
    }
    auto b = sample_batch();
    const std::int64_t vp = s.padded_vocab();
    backend::Buffer l1(DType::kF64, Shape{12, vp}), l2(DType::kF64, Shape{12, vp});
    const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
    const double loss_base = base.forward(b.batch, &t1);
    const double loss_dora = dora.forward(b.batch, &t2);
    EXPECT_NEAR(loss_dora, loss_base, 1e-12 * std::abs(loss_base));
    double worst = 0.0;
    for (std::int64_t i = 0; i < t1.numel(); ++i)
      worst = std::max(worst, std::abs(l1.ptr<double>()[i] - l2.ptr<double>()[i]));
    EXPECT_LT(worst, 1e-12);
  }
}

TEST(Dora, BaseIsFrozenAndMagnitudesHaveTheirShapes) {
  backend::CpuOps ops(1);
  const ModelSpec s = testing::tiny_llama();
  LoraSpec spec = dora_spec();
  spec.targets = {"k_proj", "o_proj"};
  const Lora method(spec);
  Transformer m(s, ops, DType::kF32, nullptr, {&method});
  std::int64_t trainable = 0;
  for (const Parameter& p : m.params().all()) {
    const bool adapter = p.method == Lora::kName;
    EXPECT_EQ(p.trainable, adapter) << p.name;
    if (adapter) trainable += p.shape.numel();
  }
  EXPECT_EQ(m.params().at("model.layers.0.self_attn.k_proj.lora_magnitude_vector").shape,
            Shape{s.kv_dim()});
  EXPECT_EQ(m.params().at("model.layers.0.self_attn.o_proj.lora_magnitude_vector").shape,
            Shape{s.hidden_size});
  const std::int64_t r = spec.rank, d = s.hidden_size;
  const std::int64_t per_layer = (r * d + s.kv_dim() * r + s.kv_dim()) +  // k
                                 (r * s.q_dim() + d * r + d);             // o
  EXPECT_EQ(trainable, s.num_layers * per_layer);
}

class DoraGradient : public ::testing::TestWithParam<ModelSpec> {};

TEST_P(DoraGradient, MagnitudeGradientsMatchCentralDifferences) {
  backend::CpuOps ops(2);
  const Lora method(dora_spec());
  Transformer m(GetParam(), ops, DType::kF64, nullptr, {&method});
  m.init_parameters(21);
  initialize(method, m, ops);
  // B != 0 and m away from ||W||, so every magnitude's gradient depends on the factors.
  for (Parameter& p : m.params().all()) {
    if (p.method != Lora::kName) continue;
    const bool mag = p.role == ParamRole::kAdapterScale;
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) {
      double& v = p.value.ptr<double>()[i];
      const double wave = std::sin(0.7 * static_cast<double>(i) + 1.0);
      if (mag) v *= 1.0 + 0.3 * wave;
      else if (p.role == ParamRole::kAdapterOut) v = 0.2 * wave;
    }
  }
  auto hb = sample_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  // Only the magnitudes: A and B see the norm as a constant (peft's DoRA), not the loss.
  int factors = 0;
  for (Parameter& p : m.params().all())
    if (p.method == Lora::kName && p.role != ParamRole::kAdapterScale) {
      p.trainable = false;
      ++factors;
    }
  const int checked = testing::expect_trainable_gradients_match_fd(m, hb.batch);
  const int linears = GetParam().mlp == MlpType::kSwiGLU ? 7 : 6;
  EXPECT_EQ(checked, 2 * linears);
  EXPECT_EQ(factors, 2 * 2 * linears);
}

INSTANTIATE_TEST_SUITE_P(Families, DoraGradient,
                         ::testing::Values(testing::tiny_llama(), testing::tiny_gpt2()),
                         [](const auto& info) {
                           return info.param.mlp == MlpType::kSwiGLU ? std::string("llama")
                                                                     : std::string("gpt2");
                         });

}  // namespace
}  // namespace tailor::model
