// KV-cache generation against recomputing from scratch: greedy tokens from generate() (prefill of
// a batch of different lengths, then one token per step through the cache) must be what the
// training forward, run on each whole sequence so far, picks at every step, and the cached
// step's logits must match that forward's last-position logits within 1e-5 (normwise relative).
//
// Models: every golden fixture (llama, Llama-3 RoPE, tied + biases, mistral, qwen2, gpt2, and the
// llama base with two unmerged PEFT LoRA adapters), plus tiny random models with LoRA on all
// seven linears and with bottleneck adapters (both LLaMA- and GPT-2-style), their adapter weights
// drawn non-zero so that the adapters change the output.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "eval/generate.h"
#include "generate_test_util.h"
#include "model/model_test_util.h"
#include "peft/bottleneck.h"
#include "peft/lora.h"
#include "peft/prompt_tuning.h"

namespace tailor::eval {
namespace {

using backend::Buffer;
using backend::Tensor;
using model::Transformer;

constexpr double kLogitsTol = 1e-5;

std::vector<double> first_columns(const Tensor& logits, std::int64_t row, std::int64_t n) {
  const float* p = logits.ptr<float>() + row * logits.cols();
  return std::vector<double>(p, p + n);
}

double rel_error(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return std::sqrt(diff / std::max(ref, 1e-300));
}

// The training forward on one whole sequence: logits of its last position.
std::vector<double> recomputed_last_logits(Transformer& m, const std::vector<std::int32_t>& seq) {
  const auto n = static_cast<std::int64_t>(seq.size());
  std::vector<std::int32_t> targets(seq.size(), backend::kIgnoreIndex), positions(seq.size());
  for (std::int64_t i = 0; i < n; ++i)
    positions[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
  model::testing::HostBatch batch(1, n, seq, targets, positions, {});
  Buffer logits(DType::kF32, Shape{n, m.tp_layout().vocab});
  const Tensor out = logits.tensor();
  (void)m.forward(batch.batch, &out);
  return first_columns(out, n - 1, m.spec().vocab_size);
}

// Greedy generation through the cache, then the same tokens fed step by step through extend()
// with each step's logits compared against the recomputed forward.
void expect_cache_matches_recompute(Transformer& m,
                                    const std::vector<std::vector<std::int32_t>>& prompts,
                                    std::int64_t new_tokens) {
  GenerateOptions o;
  o.max_new_tokens = new_tokens;  // no stop ids: every row runs to the end
  const std::vector<Completion> got = generate(m, nullptr, std::span(prompts), o);
  const auto b = static_cast<std::int64_t>(prompts.size());
  std::int64_t t = 0;
  std::vector<std::int64_t> counts;
  for (const auto& p : prompts) {
    t = std::max<std::int64_t>(t, static_cast<std::int64_t>(p.size()));
    counts.push_back(static_cast<std::int64_t>(p.size()));
  }
  std::vector<std::int32_t> ids(static_cast<std::size_t>(b * t), 0);
  for (std::int64_t r = 0; r < b; ++r)
    std::copy(prompts[static_cast<std::size_t>(r)].begin(),
              prompts[static_cast<std::size_t>(r)].end(), ids.begin() + r * t);
  model::KvCache cache = m.make_kv_cache(b, t + new_tokens);
  Tensor logits = m.extend(cache, Tensor{ids.data(), DType::kI32, Shape{b * t}}, counts);
  for (std::int64_t s = 0; s < new_tokens; ++s) {
    for (std::int64_t r = 0; r < b; ++r) {
      const auto& gen = got[static_cast<std::size_t>(r)].tokens;
      ASSERT_EQ(static_cast<std::int64_t>(gen.size()), new_tokens);
      std::vector<std::int32_t> seq = prompts[static_cast<std::size_t>(r)];
      seq.insert(seq.end(), gen.begin(), gen.begin() + s);
      const std::vector<double> want = recomputed_last_logits(m, seq);
      const std::vector<double> cached = first_columns(logits, r, m.spec().vocab_size);
      EXPECT_LT(rel_error(cached, want), kLogitsTol) << "row " << r << " step " << s;
      EXPECT_EQ(greedy_token(want), gen[static_cast<std::size_t>(s)])
          << "row " << r << " step " << s;
    }
    std::vector<std::int32_t> next;
    for (const Completion& c : got) next.push_back(c.tokens[static_cast<std::size_t>(s)]);
    const std::vector<std::int64_t> ones(static_cast<std::size_t>(b), 1);
    if (s + 1 < new_tokens)
      logits = m.extend(cache, Tensor{next.data(), DType::kI32, Shape{b}}, ones);
  }
}

TEST(GenerateCache, GoldenModelsMatchRecomputation) {
  for (const testing::GreedyCase& c : testing::greedy_cases()) {
    SCOPED_TRACE(c.name);
    testing::LoadedModel m = testing::load_case(c);
    expect_cache_matches_recompute(*m.model, c.prompts, 10);
  }
}

// Values of every parameter whose name contains `part`, redrawn ~ N(0, std^2).
void redraw(Transformer& m, std::string_view part, std::uint64_t seed, double std) {
  for (model::Parameter& p : m.params().all()) {
    if (p.name.find(part) == std::string::npos) continue;
    const CounterRng rng(seed, stream_id(p.name));
    float* v = p.value.ptr<float>();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i)
      v[i] = static_cast<float>(std * rng.normal(static_cast<std::uint64_t>(i)));
  }
}

model::ModelSpec roomy(model::ModelSpec s) {
  s.max_position_embeddings = 64;
  s.vocab_size = 50;
  return s;
}

const std::vector<std::vector<std::int32_t>> kPrompts = {
    {3, 17, 4, 40, 9}, {22}, {5, 6, 7, 8, 1, 2, 30, 31, 12}};

TEST(GenerateCache, UnmergedLoraMatchesRecomputation) {
  for (const model::ModelSpec& spec :
       {roomy(model::testing::tiny_llama()), roomy(model::testing::tiny_gpt2())}) {
    backend::CpuOps ops(2);
    peft::LoraSpec lora;
    lora.rank = 2;
    lora.alpha = 4.0;
    lora.targets = {"all-linear"};
    const peft::Lora method(lora);
    Transformer m(spec, ops, DType::kF32, nullptr, {&method});
    m.init_parameters(7);
    redraw(m, ".lora_B.", 8, 0.3);
    expect_cache_matches_recompute(m, kPrompts, 12);
  }
}

TEST(GenerateCache, BottleneckAdaptersMatchRecomputation) {
  for (const model::ModelSpec& spec :
       {roomy(model::testing::tiny_llama()), roomy(model::testing::tiny_gpt2())}) {
    backend::CpuOps ops(2);
    const peft::Bottleneck adapters(/*width=*/3);
    Transformer m(spec, ops, DType::kF32, nullptr, {&adapters});
    m.init_parameters(9);
    redraw(m, "_adapter.up.", 10, 0.3);
    expect_cache_matches_recompute(m, kPrompts, 12);
  }
}

// The adapters are really on the inference path: they change the tokens.
TEST(GenerateCache, AdaptersChangeTheGeneration) {
  const model::ModelSpec spec = roomy(model::testing::tiny_llama());
  backend::CpuOps ops(1);
  Transformer base(spec, ops, DType::kF32);
  base.init_parameters(9);
  const peft::Bottleneck adapters(/*width=*/3);
  Transformer adapted(spec, ops, DType::kF32, nullptr, {&adapters});
  adapted.init_parameters(9);
  GenerateOptions o;
  o.max_new_tokens = 12;
  const auto before = generate(adapted, nullptr, std::span(kPrompts), o);
  const auto plain = generate(base, nullptr, std::span(kPrompts), o);
  for (std::size_t i = 0; i < kPrompts.size(); ++i) EXPECT_EQ(before[i].tokens, plain[i].tokens);
  redraw(adapted, "_adapter.up.", 10, 1.0);
  const auto after = generate(adapted, nullptr, std::span(kPrompts), o);
  bool changed = false;
  for (std::size_t i = 0; i < kPrompts.size(); ++i)
    changed = changed || after[i].tokens != before[i].tokens;
  EXPECT_TRUE(changed);
}

// Prompt tuning: generate() prefills the virtual tokens (positions 0..n-1) before every prompt;
// each greedy token is what the training forward picks on [virtual tokens, prompt, tokens so far].
TEST(GenerateCache, PromptTuningMatchesRecomputation) {
  for (const model::ModelSpec& spec :
       {roomy(model::testing::tiny_llama()), roomy(model::testing::tiny_gpt2())}) {
    backend::CpuOps ops(2);
    constexpr std::int64_t kVirtual = 4;
    const peft::PromptTuning prompt(kVirtual);
    Transformer m(spec, ops, DType::kF32, nullptr, {&prompt});
    m.init_parameters(11);
    redraw(m, peft::kPromptEmbeddings, 12, 1.0);
    GenerateOptions o;
    o.max_new_tokens = 8;
    const std::vector<Completion> got = generate(m, nullptr, std::span(kPrompts), o);
    for (std::size_t r = 0; r < kPrompts.size(); ++r) {
      std::vector<std::int32_t> seq = {-1, -2, -3, -4};
      seq.insert(seq.end(), kPrompts[r].begin(), kPrompts[r].end());
      ASSERT_EQ(got[r].tokens.size(), 8u);
      for (const std::int32_t token : got[r].tokens) {
        EXPECT_EQ(greedy_token(recomputed_last_logits(m, seq)), token) << "row " << r;
        seq.push_back(token);
      }
    }
    // The prompt is on the inference path: another prompt, other tokens.
    redraw(m, peft::kPromptEmbeddings, 13, 1.0);
    const std::vector<Completion> other = generate(m, nullptr, std::span(kPrompts), o);
    bool changed = false;
    for (std::size_t r = 0; r < kPrompts.size(); ++r)
      changed = changed || other[r].tokens != got[r].tokens;
    EXPECT_TRUE(changed);
  }
}

// Inference keeps its own buffers: a training step between generations changes nothing.
TEST(GenerateCache, TrainingForwardBetweenGenerationsChangesNothing) {
  const model::ModelSpec spec = roomy(model::testing::tiny_llama());
  backend::CpuOps ops(2);
  Transformer m(spec, ops, DType::kF32);
  m.init_parameters(3);
  GenerateOptions o;
  o.max_new_tokens = 6;
  const auto first = generate(m, nullptr, std::span(kPrompts), o);
  (void)recomputed_last_logits(m, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13});
  const auto second = generate(m, nullptr, std::span(kPrompts).subspan(0, 2), o);
  EXPECT_EQ(second[0].tokens, first[0].tokens);
  EXPECT_EQ(second[1].tokens, first[1].tokens);
}

}  // namespace
}  // namespace tailor::eval
