// Greedy generation against Hugging Face `generate` (tests/golden/make_generate_fixtures.py): for
// every tiny golden model (llama, Llama-3 RoPE scaling, tied + biases, mistral, qwen2, gpt2, qwen3,
// and mistral_window / qwen2_window / qwen3_window / gemma3 generating far past their sliding
// windows, gemma3's sliding layers with a RoPE base of their own) and
// the llama and qwen3 bases with PEFT LoRA adapters (unmerged), Tailor's greedy tokens must equal
// the ones HF produced, EOS included where HF stopped at it. HF ran each prompt alone; Tailor runs
// the prompts of a case as one batch of different lengths (right-padded prefill, one KV cache),
// and once more one at a time.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "eval/generate.h"
#include "generate_test_util.h"

namespace tailor::eval {
namespace {

using testing::greedy_cases;
using testing::GreedyCase;
using testing::load_case;

GenerateOptions greedy_options(const GreedyCase& c) {
  GenerateOptions o;
  o.max_new_tokens = c.max_new_tokens;
  o.stop_ids = {c.eos};
  return o;
}

TEST(GenerateGoldenFixture, CoversEveryFamilyAndLora) {
  std::vector<std::string> names;
  for (const GreedyCase& c : greedy_cases()) names.push_back(c.name);
  for (const char* want : {"llama", "llama3_rope", "llama_tied", "mistral", "qwen2", "gpt2",
                           "mistral_window", "qwen2_window", "qwen3_window", "llama+lora_hub",
                           "llama+lora_rslora", "qwen3", "qwen3+lora", "qwen3_yarn", "phi3",
                           "gemma3"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

TEST(GenerateGolden, BatchedGreedyEqualsHuggingFace) {
  for (const GreedyCase& c : greedy_cases()) {
    SCOPED_TRACE(c.name);
    testing::LoadedModel m = load_case(c);
    const std::vector<Completion> got =
        generate(*m.model, nullptr, std::span(c.prompts), greedy_options(c));
    ASSERT_EQ(got.size(), c.prompts.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].tokens, c.generated[i]) << "prompt " << i;
      const bool stopped = !c.generated[i].empty() && c.generated[i].back() == c.eos;
      EXPECT_EQ(got[i].finish, stopped ? FinishReason::kStopToken : FinishReason::kLength);
    }
  }
}

TEST(GenerateGolden, OnePromptAtATimeEqualsHuggingFace) {
  for (const GreedyCase& c : greedy_cases()) {
    SCOPED_TRACE(c.name);
    testing::LoadedModel m = load_case(c, /*threads=*/1);
    for (std::size_t i = 0; i < c.prompts.size(); ++i) {
      const std::vector<Completion> got =
          generate(*m.model, nullptr, std::span(c.prompts).subspan(i, 1), greedy_options(c));
      EXPECT_EQ(got.at(0).tokens, c.generated[i]) << "prompt " << i;
    }
  }
}

}  // namespace
}  // namespace tailor::eval
