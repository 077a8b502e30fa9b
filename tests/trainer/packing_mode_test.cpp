// data.packing: pad through the model (f64 on the CPU): padding changes nothing (the loss does not
// depend on the pad id: no real token attends to padding and padding carries no loss), and pack
// and pad give the same loss when every document is alone in its pack sequence (attention
// limited to the document and positions restarting make each token's loss the same either way).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "config/config.h"
#include "data/packing.h"
#include "model/transformer.h"
#include "trainer/from_config.h"

namespace tailor::trainer {
namespace {

constexpr std::int32_t kEos = 256;

model::ModelSpec tiny_spec() {
  const config::ExperimentConfig cfg = config::load_config_text(
      "output: {dir: unused}\n"
      "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
      "        intermediate_size: 64, max_position_embeddings: 64, init_std: 0.2}\n"
      "data: {train: " TAILOR_SOURCE_DIR
      "/datasets/devils-dictionary/devils_dictionary.txt,\n"
      "       seq_len: 16}\n"
      "train: {steps: 1, global_batch: 1}\n"
      "optimizer: {lr: 1.0e-3}\n",
      "tiny.yaml");
  return model_spec_from_config(cfg.model);
}

// Documents of the given lengths: pseudo-random bytes closed by EOS; the first two tokens of
// each are prompt (no loss).
data::TokenizedCorpus corpus_of(const std::vector<int>& lengths) {
  data::TokenizedCorpus c;
  std::uint32_t x = 12345;
  for (int len : lengths) {
    c.doc_start.push_back(static_cast<std::int64_t>(c.tokens.size()));
    for (int i = 0; i < len; ++i) {
      x = x * 1664525u + 1013904223u;
      c.tokens.push_back(i + 1 == len ? kEos : static_cast<std::int32_t>((x >> 16) % 256));
      c.loss.push_back(i < 2 ? 0 : 1);
    }
  }
  c.doc_start.push_back(static_cast<std::int64_t>(c.tokens.size()));
  return c;
}

struct Result {
  double loss_sum = 0;
  std::int64_t loss_tokens = 0;
};

// The summed loss of sequences [0, rows) of `packed`, as one batch.
Result loss_of(model::Transformer& m, const data::PackedSequences& packed, std::int64_t rows) {
  const std::int64_t t = packed.seq_len();
  const Shape s{rows * t};
  backend::Buffer ids(DType::kI32, s), targets(DType::kI32, s), positions(DType::kI32, s),
      docs(DType::kI32, s);
  const auto n = static_cast<std::size_t>(t);
  Result r;
  for (std::int64_t row = 0; row < rows; ++row) {
    const auto off = static_cast<std::size_t>(row) * n;
    packed.fill(row, {ids.ptr<std::int32_t>() + off, n}, {targets.ptr<std::int32_t>() + off, n},
                {positions.ptr<std::int32_t>() + off, n}, {docs.ptr<std::int32_t>() + off, n});
    for (std::size_t i = 0; i < n; ++i)
      r.loss_tokens += targets.ptr<std::int32_t>()[off + i] != data::kIgnoreTarget;
  }
  const model::Batch batch{rows,         t, ids.tensor(), targets.tensor(), positions.tensor(),
                           docs.tensor()};
  r.loss_sum = m.forward(batch);
  return r;
}

class PackingMode : public ::testing::Test {
 protected:
  PackingMode() : ops_(1), model_(tiny_spec(), ops_, DType::kF64) { model_.init_parameters(3); }
  backend::CpuOps ops_;
  model::Transformer model_;
};

TEST_F(PackingMode, PaddingContentChangesNothing) {
  const data::TokenizedCorpus c = corpus_of({5, 11, 16, 3, 9, 7});
  const data::PackedSequences zeros(c, 16, "x", 0, data::PackingMode::kPad, 0);
  const data::PackedSequences other(c, 16, "x", 0, data::PackingMode::kPad, 123);
  ASSERT_EQ(zeros.size(), 6);
  const Result a = loss_of(model_, zeros, zeros.size());
  const Result b = loss_of(model_, other, other.size());
  EXPECT_GT(a.loss_tokens, 0);
  EXPECT_EQ(a.loss_tokens, b.loss_tokens);
  EXPECT_EQ(a.loss_sum, b.loss_sum);  // bit for bit
}

TEST_F(PackingMode, PackAndPadGiveTheSameLossOnSingleDocumentSequences) {
  // Pack rows of 16: [5 + 11], [16], [7 + 9]: no document crosses a row; the last document (3)
  // is the token packing needs after its last row. Pad: one row per document.
  const data::TokenizedCorpus c = corpus_of({5, 11, 16, 7, 9, 3});
  const data::PackedSequences pack(c, 16, "x");
  const data::PackedSequences pad(c, 16, "x", 0, data::PackingMode::kPad, 0);
  ASSERT_EQ(pack.size(), 3);
  ASSERT_EQ(pad.size(), 6);
  const Result a = loss_of(model_, pack, 3);
  const Result b = loss_of(model_, pad, 5);
  EXPECT_EQ(a.loss_tokens, b.loss_tokens);
  EXPECT_NEAR(a.loss_sum, b.loss_sum, 1e-12 * std::abs(a.loss_sum));
  // And a document alone in a row of its own, packed: the same as that document padded.
  const data::TokenizedCorpus one = corpus_of({16, 2});
  const Result p1 = loss_of(model_, data::PackedSequences(one, 16, "x"), 1);
  const Result p2 =
      loss_of(model_, data::PackedSequences(one, 16, "x", 0, data::PackingMode::kPad, 7), 1);
  EXPECT_EQ(p1.loss_tokens, p2.loss_tokens);
  EXPECT_NEAR(p1.loss_sum, p2.loss_sum, 1e-12 * std::abs(p1.loss_sum));
}

}  // namespace
}  // namespace tailor::trainer
