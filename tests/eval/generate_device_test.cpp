// Generation on the device's contracts (the emulated device, backend/emulated_device_ops.h): the
// KV cache, positions, prompt-tuning prefill and logits live in device memory and come back
// through Ops::copy only. In f32 the emulated device computes the CPU's arithmetic, so greedy and
// seeded sampled completions must equal the CPU's token for token, for prompts of different
// lengths in one batch (idle rows and padding included); in bf16 the model still generates.
#include <cstdint>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/emulated_device_ops.h"
#include "eval/generate.h"
#include "model/model_test_util.h"
#include "peft/prompt_tuning.h"

namespace tailor::eval {
namespace {

using model::Transformer;

std::vector<Completion> run(backend::Ops& ops, DType dtype, std::int64_t virtual_tokens,
                            const GenerateOptions& o) {
  const peft::PromptTuning prompt(virtual_tokens);
  std::vector<const model::Attachment*> methods;
  if (virtual_tokens > 0) methods.push_back(&prompt);
  Transformer m(model::testing::tiny_llama(), ops, dtype, nullptr, methods);
  m.init_parameters(11);
  const std::vector<std::vector<std::int32_t>> prompts = {{5, 9, 2, 7, 3}, {8}, {4, 1, 10}};
  return generate(m, nullptr, std::span(prompts), o);
}

void expect_same_tokens(std::int64_t virtual_tokens, const GenerateOptions& o) {
  backend::CpuOps cpu(2);
  const std::vector<Completion> want = run(cpu, DType::kF32, virtual_tokens, o);
  backend::EmulatedDeviceOps dev(2);
  const std::vector<Completion> got = run(dev, DType::kF32, virtual_tokens, o);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t r = 0; r < want.size(); ++r) {
    EXPECT_EQ(got[r].tokens, want[r].tokens) << "row " << r;
    EXPECT_EQ(static_cast<std::int64_t>(want[r].tokens.size()), o.max_new_tokens);
  }
}

TEST(GenerateOnDevice, GreedyEqualsTheCpu) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  expect_same_tokens(0, o);
}

TEST(GenerateOnDevice, SeededSamplingEqualsTheCpu) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.sampling.temperature = 0.9;
  o.sampling.top_p = 0.95;
  o.sampling.seed = 3;
  expect_same_tokens(0, o);
}

TEST(GenerateOnDevice, PromptTuningPrefillEqualsTheCpu) {
  GenerateOptions o;
  o.max_new_tokens = 8;
  expect_same_tokens(4, o);
}

TEST(GenerateOnDevice, Bf16Generates) {
  backend::EmulatedDeviceOps dev(2);
  GenerateOptions o;
  o.max_new_tokens = 6;
  const std::vector<Completion> got = run(dev, DType::kBF16, 0, o);
  ASSERT_EQ(got.size(), 3u);
  for (const Completion& c : got) {
    ASSERT_EQ(c.tokens.size(), 6u);
    for (const std::int32_t t : c.tokens) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, model::testing::tiny_llama().vocab_size);
    }
  }
}

}  // namespace
}  // namespace tailor::eval
