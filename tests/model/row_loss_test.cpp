// The model's loss interface for objectives (model/transformer.h): per-token losses from a
// forward, then a backward weighted per row. Checked in f64 against central finite differences of
// the weighted row sums, and against the fused forward_backward, which it must equal bit for bit
// when every row weighs the same.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "model_test_util.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

using testing::sample_batch;

// sum over rows b of w[b] * (sum of row b's token losses), from forward_token_losses.
double weighted_rows(Transformer& m, const Batch& batch, const std::vector<double>& w) {
  const std::span<const double> l = m.forward_token_losses(batch);
  double total = 0.0;
  for (std::int64_t i = 0; i < batch.batch * batch.seq; ++i)
    total += w[static_cast<std::size_t>(i / batch.seq)] * l[static_cast<std::size_t>(i)];
  return total;
}

TEST(RowLoss, TokenLossesSumToTheForwardLossAndIgnoredTargetsAreZero) {
  backend::CpuOps ops(2);
  Transformer m(testing::tiny_llama(), ops, DType::kF64);
  m.init_parameters(5);
  const testing::HostBatch hb = sample_batch();
  const double total = m.forward(hb.batch);
  const std::span<const double> l = m.forward_token_losses(hb.batch);
  ASSERT_EQ(static_cast<std::int64_t>(l.size()), hb.batch.batch * hb.batch.seq);
  double sum = 0.0;
  for (std::size_t i = 0; i < l.size(); ++i) {
    sum += l[i];
    if (hb.batch.targets.ptr<std::int32_t>()[i] < 0) EXPECT_EQ(l[i], 0.0) << "token " << i;
    else EXPECT_GT(l[i], 0.0) << "token " << i;
  }
  EXPECT_EQ(sum, total);  // same order of summation
}

class RowLossGradient : public ::testing::TestWithParam<bool> {};

TEST_P(RowLossGradient, WeightedBackwardMatchesCentralDifferences) {
  backend::CpuOps ops(2);
  peft::LoraSpec lora;
  lora.rank = 2;
  lora.targets = {"all-linear"};
  const bool with_lora = GetParam();
  const peft::Lora lora_method(lora);
  std::vector<const Attachment*> methods;
  if (with_lora) methods.push_back(&lora_method);
  Transformer m(testing::tiny_llama(), ops, DType::kF64, nullptr, methods);
  m.init_parameters(11);
  for (Parameter& p : m.params().all())  // LoRA B away from zero: A's gradient is not zero
    if (p.role == ParamRole::kAdapterOut)
      for (std::int64_t i = 0; i < p.shape.numel(); ++i)
        p.value.ptr<double>()[i] = 0.1 * std::cos(0.3 * static_cast<double>(i));
  const testing::HostBatch hb = sample_batch();
  // Opposite signs, as a preference objective gives its chosen and rejected rows.
  const std::vector<double> w = {0.7, -1.3};
  m.params().zero_grad(ops);
  (void)m.forward_token_losses(hb.batch);
  m.backward_rows(hb.batch, w);

  // Every element of small tensors, a strided sample of large ones.
  const int checked = testing::expect_gradients_match_fd_of(
      m, [&] { return weighted_rows(m, hb.batch, w); }, 40);
  EXPECT_GT(checked, with_lora ? 20 : 10);
}

std::string full_or_lora(const ::testing::TestParamInfo<bool>& p) {
  return p.param ? "Lora" : "Full";
}

INSTANTIATE_TEST_SUITE_P(FullAndLora, RowLossGradient, ::testing::Values(false, true),
                         full_or_lora);

TEST(RowLoss, EqualWeightsEqualTheFusedPassBitForBit) {
  backend::CpuOps ops(2);
  Transformer m(testing::tiny_gpt2(), ops, DType::kF32);
  m.init_parameters(3);
  const testing::HostBatch hb = sample_batch();
  const double s = 1.0 / 9.0;
  m.params().zero_grad(ops);
  const double fused_loss = m.forward_backward(hb.batch, s);
  const backend::Tensor g = m.params().flat_grads();
  std::vector<unsigned char> fused(g.bytes());
  std::memcpy(fused.data(), g.data, g.bytes());

  m.params().zero_grad(ops);
  const std::span<const double> l = m.forward_token_losses(hb.batch);
  double two_phase_loss = 0.0;
  for (double x : l) two_phase_loss += x;
  m.backward_rows(hb.batch, std::vector<double>{s, s});
  EXPECT_EQ(two_phase_loss, fused_loss);
  EXPECT_EQ(std::memcmp(fused.data(), g.data, g.bytes()), 0);
}

}  // namespace
}  // namespace tailor::model
