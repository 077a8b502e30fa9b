// Prompt tuning (peft/prompt_tuning.h): the base is frozen and `prompt_embeddings` [n, D] is the
// only trainable tensor; an id -1 - k reads row k of it where a token id reads the vocabulary; its
// gradient matches central differences (f64) in both families; the TEXT init copies the
// embeddings of the text's tokens, repeated to n.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/prompt_tuning.h"

namespace tailor::model {
namespace {

using peft::kPromptEmbeddings;
using peft::PromptTuning;

using testing::HostBatch;

constexpr std::int64_t kVirtual = 3;

// Two rows of 8: row 0 one document opened by the 3 virtual tokens; row 1 two documents, each
// opened by them (as the packer writes them), the second one's first token predicted by slot 2.
HostBatch prompt_batch() {
  return HostBatch(2, 8, {-1, -2, -3, 1, 5, 3, 9, 2, -1, -2, -3, 4, -1, -2, -3, 6},
                   {-100, -100, 1, 5, 3, 9, 2, -100, -100, -100, 4, -100, -100, -100, 6, 8},
                   {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 0, 1, 2, 3},
                   {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1});
}

TEST(PromptTuning, OnlyThePromptIsTrainable) {
  backend::CpuOps ops(1);
  const ModelSpec s = testing::tiny_llama();
  const PromptTuning m_prompt(kVirtual);
  Transformer m(s, ops, DType::kF32, nullptr, {&m_prompt});
  EXPECT_EQ(m.virtual_tokens(), kVirtual);
  for (const Parameter& p : m.params().all()) {
    const bool prompt = p.name == kPromptEmbeddings;
    EXPECT_EQ(p.trainable, prompt) << p.name;
    EXPECT_EQ(p.grad.data != nullptr, prompt) << p.name;
  }
  const Parameter& p = m.params().at(kPromptEmbeddings);
  EXPECT_EQ(p.shape, (Shape{kVirtual, s.hidden_size}));
  EXPECT_EQ(m.params().trainable_numel(), kVirtual * s.hidden_size);
  EXPECT_EQ(m.params().flat_grads().numel(), kVirtual * s.hidden_size);
}

// A virtual token whose row equals token j's embedding is token j, bit for bit.
TEST(PromptTuning, VirtualTokensReadThePromptRows) {
  backend::CpuOps ops(2);
  for (const ModelSpec& s : {testing::tiny_llama(), testing::tiny_gpt2()}) {
    const PromptTuning m_prompt(kVirtual);
    Transformer m(s, ops, DType::kF64, nullptr, {&m_prompt});
    m.init_parameters(4);
    const std::vector<std::int32_t> words = {7, 2, 10};
    PromptTuning::init_from_tokens(m, words);
    HostBatch virt = prompt_batch();
    std::vector<std::int32_t> ids(16);
    for (std::int64_t i = 0; i < 16; ++i) {
      const std::int32_t id = virt.ids.ptr<std::int32_t>()[i];
      ids[static_cast<std::size_t>(i)] = id >= 0 ? id : words[static_cast<std::size_t>(-1 - id)];
    }
    HostBatch real(2, 8, ids,
                   std::vector<std::int32_t>(virt.targets.ptr<std::int32_t>(),
                                             virt.targets.ptr<std::int32_t>() + 16),
                   std::vector<std::int32_t>(virt.positions.ptr<std::int32_t>(),
                                             virt.positions.ptr<std::int32_t>() + 16),
                   std::vector<std::int32_t>(virt.doc_ids.ptr<std::int32_t>(),
                                             virt.doc_ids.ptr<std::int32_t>() + 16));
    const std::int64_t vp = s.padded_vocab();
    backend::Buffer l1(DType::kF64, Shape{16, vp}), l2(DType::kF64, Shape{16, vp});
    const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
    EXPECT_EQ(m.forward(virt.batch, &t1), m.forward(real.batch, &t2));
    EXPECT_EQ(std::memcmp(l1.data(), l2.data(), t1.bytes()), 0);
  }
}

TEST(PromptTuning, TextInitRepeatsTheTextsEmbeddings) {
  backend::CpuOps ops(1);
  const ModelSpec s = testing::tiny_llama();
  const PromptTuning m_prompt(5);
  Transformer m(s, ops, DType::kF64, nullptr, {&m_prompt});
  m.init_parameters(9);
  const std::vector<std::int32_t> text = {3, 8};  // shorter than n: 3 8 3 8 3
  PromptTuning::init_from_tokens(m, text);
  const Parameter& prompt = m.params().at(kPromptEmbeddings);
  const Parameter& embed = m.params().at("model.embed_tokens.weight");
  const std::int64_t d = s.hidden_size;
  for (std::int64_t k = 0; k < 5; ++k)
    EXPECT_EQ(std::memcmp(prompt.value.ptr<double>() + k * d,
                          embed.value.ptr<double>() + text[static_cast<std::size_t>(k % 2)] * d,
                          static_cast<std::size_t>(d) * sizeof(double)),
              0)
        << k;
  // Longer than n: truncated.
  const PromptTuning m2_prompt(2);
  Transformer m2(s, ops, DType::kF64, nullptr, {&m2_prompt});
  m2.init_parameters(9);
  PromptTuning::init_from_tokens(m2, std::vector<std::int32_t>{4, 1, 6});
  EXPECT_EQ(std::memcmp(m2.params().at(kPromptEmbeddings).value.ptr<double>() + d,
                        m2.params().at("model.embed_tokens.weight").value.ptr<double>() + 1 * d,
                        static_cast<std::size_t>(d) * sizeof(double)),
            0);
}

struct Case {
  const char* name;
  ModelSpec spec;
};

class PromptGradient : public ::testing::TestWithParam<Case> {};

TEST_P(PromptGradient, MatchesCentralDifferences) {
  backend::CpuOps ops(2);
  const PromptTuning m_prompt(kVirtual);
  Transformer m(GetParam().spec, ops, DType::kF64, nullptr, {&m_prompt});
  m.init_parameters(21);
  auto hb = prompt_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  EXPECT_EQ(testing::expect_trainable_gradients_match_fd(m, hb.batch), 1);
}

INSTANTIATE_TEST_SUITE_P(Families, PromptGradient,
                         ::testing::Values(Case{"llama", testing::tiny_llama()},
                                           Case{"gpt2", testing::tiny_gpt2()}),
                         [](const auto& case_info) { return std::string(case_info.param.name); });

}  // namespace
}  // namespace tailor::model
