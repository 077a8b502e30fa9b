// The LM head and cross-entropy computed a chunk of tokens at a time (Transformer::
// set_loss_chunk_tokens): the [N, vocab] logits never exist whole, and nothing else changes.
// Checked in f64 against the whole-head pass (losses and gradients), against central finite
// differences, through the objectives' two-phase interface, and by the activation memory.
#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "model_test_util.h"

namespace tailor::model {
namespace {

using testing::sample_batch;

struct Pass {
  std::vector<double> losses;  // per token
  std::vector<double> grads;   // flat
};

// forward_backward (two_phase: forward_token_losses + backward_rows with weights w).
Pass run(Transformer& m, backend::Ops& ops, const Batch& b, bool two_phase,
         const std::vector<double>& w = {}) {
  Pass p;
  m.params().zero_grad(ops);
  if (two_phase) {
    const std::span<const double> l = m.forward_token_losses(b);
    p.losses.assign(l.begin(), l.end());
    m.backward_rows(b, w);
  } else {
    (void)m.forward_backward(b, 0.25);
    const std::span<const double> l = m.forward_token_losses(b);
    p.losses.assign(l.begin(), l.end());
  }
  const backend::Tensor g = m.params().flat_grads();
  p.grads.assign(g.ptr<double>(), g.ptr<double>() + g.numel());
  return p;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

class LossChunk : public ::testing::TestWithParam<bool> {};

TEST_P(LossChunk, ChunksOfAnySizeEqualTheWholeHead) {
  const bool two_phase = GetParam();
  backend::CpuOps ops(2);
  for (const ModelSpec& spec : {testing::tiny_llama(), testing::tiny_gpt2()}) {  // untied, tied
    Transformer m(spec, ops, DType::kF64);
    m.init_parameters(7);
    const testing::HostBatch hb = sample_batch();  // 12 tokens, two rows of 6
    const std::vector<double> w = {0.7, -1.3};
    ASSERT_GE(m.loss_chunk_rows(), 12) << "auto must be one chunk at this vocabulary";
    const Pass whole = run(m, ops, hb.batch, two_phase, w);
    for (const std::int64_t chunk : {1, 4, 5, 11}) {  // dividing, not dividing, nearly whole
      m.set_loss_chunk_tokens(chunk);
      ASSERT_EQ(m.loss_chunk_rows(), chunk);
      const Pass p = run(m, ops, hb.batch, two_phase, w);
      ASSERT_EQ(p.losses.size(), whole.losses.size());
      for (std::size_t i = 0; i < p.losses.size(); ++i)
        EXPECT_NEAR(p.losses[i], whole.losses[i], 1e-13) << "chunk " << chunk << " token " << i;
      EXPECT_LT(rel_diff(p.grads, whole.grads), 1e-13) << "chunk " << chunk;
      double norm = 0;
      for (const double g : p.grads) norm += g * g;
      EXPECT_GT(norm, 1e-6);  // a gradient with signal
    }
    m.set_loss_chunk_tokens(0);
  }
}

INSTANTIATE_TEST_SUITE_P(FusedAndTwoPhase, LossChunk, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "TwoPhase" : "Fused";
                         });

TEST(LossChunkGradient, ChunkedHeadMatchesCentralDifferences) {
  backend::CpuOps ops(2);
  Transformer m(testing::tiny_llama(), ops, DType::kF64);
  m.init_parameters(19);
  m.set_loss_chunk_tokens(5);
  const testing::HostBatch hb = sample_batch();
  m.params().zero_grad(ops);
  (void)m.forward_backward(hb.batch, 1.0);
  const int checked =
      testing::expect_gradients_match_fd_of(m, [&] { return m.forward(hb.batch); }, 30);
  EXPECT_GT(checked, 10);
}

TEST(LossChunkMemory, OnlyAChunkOfLogitsIsAllocated) {
  backend::CpuOps ops(2);
  Transformer m(testing::tiny_llama(), ops, DType::kF64);
  m.init_parameters(3);
  const testing::HostBatch hb = sample_batch();
  (void)m.forward(hb.batch);
  const std::int64_t whole = m.activation_bytes();
  m.set_loss_chunk_tokens(4);
  (void)m.forward(hb.batch);
  const std::int64_t chunked = m.activation_bytes();
  // The logits buffer shrinks from [12, 16] to [4, 16] f64 values; nothing else changes.
  const std::int64_t vocab = m.tp_layout().vocab;
  EXPECT_EQ(vocab, 16);
  EXPECT_EQ(whole - chunked, (12 - 4) * vocab * 8);
}

TEST(LossChunkLogits, ForwardCopiesEveryChunksLogits) {
  backend::CpuOps ops(2);
  Transformer m(testing::tiny_llama(), ops, DType::kF64);
  m.init_parameters(5);
  const testing::HostBatch hb = sample_batch();
  const std::int64_t v = m.tp_layout().vocab;
  backend::Buffer whole(DType::kF64, Shape{12, v}), chunked(DType::kF64, Shape{12, v});
  const backend::Tensor tw = whole.tensor(), tc = chunked.tensor();
  const double lw = m.forward(hb.batch, &tw);
  m.set_loss_chunk_tokens(5);
  const double lc = m.forward(hb.batch, &tc);
  EXPECT_NEAR(lc, lw, 1e-13);
  for (std::int64_t i = 0; i < 12 * v; ++i)
    ASSERT_NEAR(tc.ptr<double>()[i], tw.ptr<double>()[i], 1e-13) << i;
}

}  // namespace
}  // namespace tailor::model
