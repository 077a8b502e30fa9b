// LoRA dropout (peft/lora.h): off on batches that train nothing; p = 0 changes no bit; on a training
// batch the gradients match central differences of the same masked loss (f64); the masks
// depend on (seed, step, linear, global token and column) only, so splitting a global batch into
// micro-batches gives the same losses and gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

using peft::Lora;
using peft::LoraSpec;

using testing::HostBatch;
using testing::sample_batch;

LoraSpec lora_with_dropout(double p) {
  LoraSpec l;
  l.rank = 3;
  l.alpha = 5.0;
  l.targets = {"all-linear"};
  l.dropout = p;
  return l;
}

// Seeded base and A, B away from zero (so dropout has something to change).
void init(Transformer& m) {
  m.init_parameters(21);
  for (Parameter& p : m.params().all())
    if (p.name.ends_with("lora_B.weight"))
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<double>()[i] = 0.2 * std::sin(0.7 * static_cast<double>(i) + 1.0);
}

struct Result {
  double loss = 0.0;
  std::vector<double> grads;
};

Result train_pass(Transformer& m, backend::Ops& ops, const Batch& b) {
  m.params().zero_grad(ops);
  Result r;
  r.loss = m.forward_backward(b, 1.0);
  const backend::Tensor g = m.params().flat_grads();
  r.grads.assign(g.ptr<double>(), g.ptr<double>() + g.numel());
  return r;
}

bool same_bits(const Result& a, const Result& b) {
  return std::memcmp(&a.loss, &b.loss, sizeof(double)) == 0 && a.grads.size() == b.grads.size() &&
         std::memcmp(a.grads.data(), b.grads.data(), a.grads.size() * sizeof(double)) == 0;
}

TEST(LoraDropout, ZeroProbabilityAndEvaluationBatchesChangeNoBit) {
  backend::CpuOps ops(2);
  const ModelSpec s = testing::tiny_llama();
  const LoraSpec none = lora_with_dropout(0.0), some = lora_with_dropout(0.3);
  const Lora a_method(none);
  Transformer a(s, ops, DType::kF64, nullptr, {&a_method});
  const Lora b_method(some);
  Transformer b(s, ops, DType::kF64, nullptr, {&b_method});
  init(a);
  init(b);
  auto eval_batch = sample_batch();
  auto train_batch = sample_batch();
  train_batch.batch.step_key = {5, 3, 0};
  // p = 0 on a training batch is exactly no dropout.
  const Result plain = train_pass(a, ops, eval_batch.batch);
  EXPECT_TRUE(same_bits(plain, train_pass(a, ops, train_batch.batch)));
  // p > 0 on a batch that is not a training batch (step < 0): no dropout either.
  EXPECT_TRUE(same_bits(plain, train_pass(b, ops, eval_batch.batch)));
  const std::int64_t vp = s.padded_vocab();
  backend::Buffer l1(DType::kF64, Shape{12, vp}), l2(DType::kF64, Shape{12, vp});
  const backend::Tensor t1 = l1.tensor(), t2 = l2.tensor();
  EXPECT_EQ(a.forward(eval_batch.batch, &t1), b.forward(eval_batch.batch, &t2));
  EXPECT_EQ(std::memcmp(l1.data(), l2.data(), t1.bytes()), 0);
}

TEST(LoraDropout, MasksFollowTheStepAndRepeatForIt) {
  backend::CpuOps ops(2);
  const LoraSpec spec = lora_with_dropout(0.3);
  const Lora m_method(spec);
  Transformer m(testing::tiny_llama(), ops, DType::kF64, nullptr, {&m_method});
  init(m);
  auto hb = sample_batch();
  const Result eval = train_pass(m, ops, hb.batch);
  hb.batch.step_key = {5, 3, 0};
  const Result step3 = train_pass(m, ops, hb.batch);
  EXPECT_NE(step3.loss, eval.loss);
  EXPECT_TRUE(same_bits(step3, train_pass(m, ops, hb.batch)));  // same key, same masks
  hb.batch.step_key = {5, 4, 0};
  EXPECT_NE(train_pass(m, ops, hb.batch).loss, step3.loss);
  hb.batch.step_key = {6, 3, 0};
  EXPECT_NE(train_pass(m, ops, hb.batch).loss, step3.loss);
}

struct Case {
  const char* name;
  ModelSpec spec;
};

class LoraDropoutGradient : public ::testing::TestWithParam<Case> {};

TEST_P(LoraDropoutGradient, MatchesCentralDifferencesOfTheMaskedLoss) {
  backend::CpuOps ops(2);
  const LoraSpec spec = lora_with_dropout(0.25);
  const Lora m_method(spec);
  Transformer m(GetParam().spec, ops, DType::kF64, nullptr, {&m_method});
  init(m);
  auto hb = sample_batch();
  hb.batch.step_key = {17, 2, 0};  // forward() on this batch draws the same masks
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  const int checked = testing::expect_trainable_gradients_match_fd(m, hb.batch);
  EXPECT_EQ(checked, 2 * 2 * (GetParam().spec.mlp == MlpType::kSwiGLU ? 7 : 6));
}

INSTANTIATE_TEST_SUITE_P(Families, LoraDropoutGradient,
                         ::testing::Values(Case{"llama", testing::tiny_llama()},
                                           Case{"gpt2", testing::tiny_gpt2()}),
                         [](const auto& case_info) { return std::string(case_info.param.name); });

// Row r of the sample batch as a batch of its own, row r of the step's global batch.
HostBatch row_of(const HostBatch& hb, std::int64_t r) {
  const std::int64_t t = hb.batch.seq;
  auto take = [&](const backend::Buffer& b) {
    const std::int32_t* p = b.ptr<std::int32_t>() + r * t;
    return std::vector<std::int32_t>(p, p + t);
  };
  HostBatch out(1, t, take(hb.ids), take(hb.targets), take(hb.positions), take(hb.doc_ids));
  out.batch.step_key = hb.batch.step_key;
  out.batch.step_key.first_row = r;
  return out;
}

TEST(LoraDropout, MicroBatchSplitDrawsTheSameMasks) {
  backend::CpuOps ops(2);
  const LoraSpec spec = lora_with_dropout(0.4);
  const Lora m_method(spec);
  Transformer m(testing::tiny_llama(), ops, DType::kF64, nullptr, {&m_method});
  init(m);
  auto whole = sample_batch();
  whole.batch.step_key = {3, 7, 0};
  const Result one = train_pass(m, ops, whole.batch);
  // Two micro-batches of one row each, gradients accumulated as the trainer does.
  m.params().zero_grad(ops);
  double loss = 0.0;
  for (std::int64_t r = 0; r < 2; ++r) {
    HostBatch part = row_of(whole, r);
    loss += m.forward_backward(part.batch, 1.0);
  }
  EXPECT_NEAR(loss, one.loss, 1e-12 * std::abs(one.loss));
  const backend::Tensor g = m.params().flat_grads();
  double diff = 0.0, ref = 0.0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    const double d = g.ptr<double>()[i] - one.grads[static_cast<std::size_t>(i)];
    diff += d * d;
    ref += one.grads[static_cast<std::size_t>(i)] * one.grads[static_cast<std::size_t>(i)];
  }
  EXPECT_LT(std::sqrt(diff / ref), 1e-12);
  // A shifted row index is another part of the global batch: other masks.
  HostBatch shifted = row_of(whole, 0);
  shifted.batch.step_key.first_row = 1;
  HostBatch first = row_of(whole, 0);
  EXPECT_NE(m.forward(shifted.batch), m.forward(first.batch));
}

}  // namespace
}  // namespace tailor::model
