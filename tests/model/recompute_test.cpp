// Activation recomputation (train.recompute): backward recomputes what forward did not keep by
// rerunning the same ops on the same inputs, so loss and every gradient must be bit-identical to
// keeping everything — for RMSNorm/SwiGLU/RoPE (with and without q/k norm) and
// LayerNorm/GELU/learned positions, full
// fine-tuning, LoRA with dropout (masks redrawn from their counter keys) and bottleneck adapters —
// while the activation memory shrinks: full < selective < none.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/bottleneck.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

struct Case {
  const char* name;
  ModelSpec (*spec)();
  bool lora;
  std::int64_t bottleneck;
};

struct Result {
  double loss = 0.0;
  std::vector<unsigned char> grads;  // the flat gradient's bytes
  std::int64_t activation_bytes = 0;
};

Result run(const Case& c, Recompute mode) {
  backend::CpuOps ops(2);
  peft::LoraSpec lora;
  lora.rank = 2;
  lora.dropout = 0.25;
  lora.targets = {"all-linear"};
  const peft::Lora lora_method(lora);
  const peft::Bottleneck adapters(c.bottleneck);
  std::vector<const Attachment*> methods;
  if (c.lora) methods.push_back(&lora_method);
  if (c.bottleneck > 0) methods.push_back(&adapters);
  Transformer m(c.spec(), ops, DType::kF32, nullptr, methods);
  m.init_parameters(7);
  // B != 0 (it starts at zero): the adapters carry signal, so their recomputation is checked.
  for (Parameter& p : m.params().all())
    if (c.lora && p.role == ParamRole::kAdapterOut && p.name.ends_with("lora_B.weight"))
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<float>()[i] = 0.2f * std::sin(0.7f * static_cast<float>(i) + 1.0f);
  m.set_recompute(mode);
  testing::HostBatch hb = testing::sample_batch();
  hb.batch.step_key = {3, 1, 0};  // a training batch: LoRA dropout is on
  Result r;
  m.params().zero_grad(ops);
  r.loss = m.forward_backward(hb.batch, 0.1);
  r.loss += m.forward_backward(hb.batch, 0.1);  // twice: buffers reused across micro-batches
  const backend::Tensor g = m.params().flat_grads();
  r.grads.resize(g.bytes());
  std::memcpy(r.grads.data(), g.data, g.bytes());
  r.activation_bytes = m.activation_bytes();
  return r;
}

class RecomputeTest : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& param) { return param.param.name; }

TEST_P(RecomputeTest, GradientsAreBitIdenticalAndMemoryShrinks) {
  const Result none = run(GetParam(), Recompute::kNone);
  const Result selective = run(GetParam(), Recompute::kSelective);
  const Result full = run(GetParam(), Recompute::kFull);
  ASSERT_FALSE(none.grads.empty());
  EXPECT_EQ(selective.loss, none.loss);
  EXPECT_EQ(full.loss, none.loss);
  EXPECT_TRUE(selective.grads == none.grads) << "selective recomputation changed a gradient";
  EXPECT_TRUE(full.grads == none.grads) << "full recomputation changed a gradient";
  EXPECT_LT(selective.activation_bytes, none.activation_bytes);
  EXPECT_LT(full.activation_bytes, selective.activation_bytes);
}

INSTANTIATE_TEST_SUITE_P(Models, RecomputeTest,
                         ::testing::Values(Case{"llama", testing::tiny_llama, false, 0},
                                           Case{"gpt2", testing::tiny_gpt2, false, 0},
                                           Case{"qk_norm", testing::tiny_qk_norm, false, 0},
                                           Case{"llama_lora_dropout", testing::tiny_llama, true, 0},
                                           Case{"gpt2_lora_dropout", testing::tiny_gpt2, true, 0},
                                           Case{"qk_norm_lora_dropout", testing::tiny_qk_norm,
                                                true, 0},
                                           Case{"llama_adapter", testing::tiny_llama, false, 3}),
                         case_name);

}  // namespace
}  // namespace tailor::model
