// DPO's precomputed reference (objective/reference.h): one pass of the starting model over every
// pair, kept as a table from a row's content to its log-probability. Checked against the frozen
// model's own forward on each pair alone (f64): the table's value of every row is that row's
// log-probability whatever batch it was computed in; DPO with the table gives the loss and
// gradients of DPO with the frozen model; the table's file reads back bit for bit, and a
// damaged file is a one-line error naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/corpus_builder.h"
#include "data/jsonl_dataset.h"
#include "data/preference.h"
#include "model/model_test_util.h"
#include "objective/preference.h"
#include "objective/reference.h"

namespace tailor::objective {
namespace {

constexpr std::int64_t kSeq = 8;

model::ModelSpec byte_model() {
  model::ModelSpec s = model::testing::tiny_llama();
  s.vocab_size = 257;  // the byte tokenizer's ids and EOS
  return s;
}

// Seven pairs of short byte strings, two of them with the same chosen row.
data::TokenizedCorpus seven_pairs() {
  const data::ByteTokenizer tok;
  const data::JsonlData d = data::parse_jsonl(
      "{\"prompt\": \"ab\", \"chosen\": \"cd\", \"rejected\": \"e\"}\n"
      "{\"prompt\": \"x\", \"chosen\": \"yz\", \"rejected\": \"w\"}\n"
      "{\"prompt\": \"q\", \"chosen\": \"rst\", \"rejected\": \"tsr\"}\n"
      "{\"prompt\": \"ab\", \"chosen\": \"cd\", \"rejected\": \"ff\"}\n"
      "{\"prompt\": \"m\", \"chosen\": \"n\", \"rejected\": \"oo\"}\n"
      "{\"prompt\": \"hi\", \"chosen\": \"jk\", \"rejected\": \"kj\"}\n"
      "{\"prompt\": \"u\", \"chosen\": \"vvv\", \"rejected\": \"v\"}\n",
      "pairs.jsonl", false);
  const data::PairLimits limits{kSeq, 4};
  return data::tokenize_records(d.records, data::TemplateSpec{}, tok, 1, nullptr, 0, &limits);
}

struct OnePair {
  std::vector<std::int32_t> ids, targets, positions, docs;
  backend::Buffer b_ids{DType::kI32, Shape{2 * kSeq}}, b_targets{DType::kI32, Shape{2 * kSeq}},
      b_positions{DType::kI32, Shape{2 * kSeq}}, b_docs{DType::kI32, Shape{2 * kSeq}};
  OnePair(const data::PackedSequences& p, std::int64_t i) {
    const auto n = static_cast<std::size_t>(2 * kSeq);
    p.fill(i, {b_ids.ptr<std::int32_t>(), n}, {b_targets.ptr<std::int32_t>(), n},
           {b_positions.ptr<std::int32_t>(), n}, {b_docs.ptr<std::int32_t>(), n});
  }
  model::Batch batch() const {
    return {2, kSeq, b_ids.tensor(), b_targets.tensor(), b_positions.tensor(), b_docs.tensor()};
  }
};

std::string temp_path(const std::string& tag) {
  return (std::filesystem::temp_directory_path() /
          ("tailor-reference-" + tag + "-" + std::to_string(::getpid()) + ".bin"))
      .string();
}

TEST(PrecomputedReference, EveryRowHasItsOwnForwardValue) {
  backend::CpuOps ops(2);
  model::Transformer frozen(byte_model(), ops, DType::kF64);
  frozen.init_parameters(11);
  const data::TokenizedCorpus corpus = seven_pairs();
  const data::PackedSequences pairs(corpus, kSeq, "pairs.jsonl", 0, data::PackingMode::kPairs, 0);
  ASSERT_EQ(pairs.size(), 7);
  comm::SelfCommunicator self;
  const std::unique_ptr<ReferenceSource> source = model_reference(frozen);
  std::int64_t calls = 0;
  const ReferenceTable table =
      precompute_reference(*source, frozen, pairs, self, /*pairs_per_batch=*/3,
                           [&](std::int64_t done, std::int64_t total) {
                             ++calls;
                             EXPECT_LE(done, total);
                           });
  EXPECT_EQ(calls, 3);  // batches of 3, 3 and 1 pairs
  // 14 rows, two identical (the repeated chosen answer): 13 distinct keys.
  EXPECT_EQ(table.size(), 13u);
  std::set<double> distinct;
  for (std::int64_t i = 0; i < pairs.size(); ++i) {
    const OnePair p(pairs, i);
    const std::vector<double> want = source->row_logps(frozen, p.batch());
    for (std::int64_t r = 0; r < 2; ++r) {
      const std::optional<double> got = table.find(row_key(p.batch(), r));
      ASSERT_TRUE(got.has_value()) << "pair " << i << " row " << r;
      EXPECT_NEAR(*got, want[static_cast<std::size_t>(r)], 1e-12 * std::abs(want[r])) << i;
      EXPECT_LT(want[static_cast<std::size_t>(r)], 0.0);  // a log-probability of real tokens
      distinct.insert(want[static_cast<std::size_t>(r)]);
    }
  }
  EXPECT_EQ(distinct.size(), 13u);
}

TEST(PrecomputedReference, RowKeyFollowsTheRowsContent) {
  const data::TokenizedCorpus corpus = seven_pairs();
  const data::PackedSequences pairs(corpus, kSeq, "pairs.jsonl", 0, data::PackingMode::kPairs, 0);
  const OnePair a(pairs, 0), b(pairs, 3);  // the same chosen row, different rejected rows
  EXPECT_EQ(row_key(a.batch(), 0), row_key(b.batch(), 0));
  EXPECT_NE(row_key(a.batch(), 1), row_key(b.batch(), 1));
  EXPECT_NE(row_key(a.batch(), 0), row_key(a.batch(), 1));
  OnePair c(pairs, 0);
  c.b_targets.ptr<std::int32_t>()[3] = 200;  // one target changed
  EXPECT_NE(row_key(a.batch(), 0), row_key(c.batch(), 0));
}

// DPO with the table: the loss and every gradient of DPO with the frozen model itself.
TEST(PrecomputedReference, DpoWithTheTableEqualsDpoWithTheModel) {
  backend::CpuOps ops(2);
  model::Transformer frozen(byte_model(), ops, DType::kF64);
  model::Transformer policy(byte_model(), ops, DType::kF64);
  frozen.init_parameters(11);
  policy.init_parameters(12);  // another model: the rewards are not zero
  const data::TokenizedCorpus corpus = seven_pairs();
  const data::PackedSequences pairs(corpus, kSeq, "pairs.jsonl", 0, data::PackingMode::kPairs, 0);
  comm::SelfCommunicator self;
  ReferenceTable table = [&] {
    const std::unique_ptr<ReferenceSource> s = model_reference(frozen);
    return precompute_reference(*s, frozen, pairs, self, 4);
  }();
  const OnePair p(pairs, 2);
  const model::Batch batch = p.batch();
  const model::Batch* b = &batch;
  const auto run = [&](std::unique_ptr<ReferenceSource> ref, std::vector<std::vector<double>>& g) {
    Preference obj({PreferenceKind::kDpo, 0.5}, std::move(ref));
    policy.params().zero_grad(ops);
    obj.begin_step({&b, 1}, self);
    const double loss = obj.step_loss(obj.micro_batch(policy, batch, {}), self);
    g.clear();
    for (const model::Parameter& q : policy.params().all())
      g.emplace_back(q.grad.ptr<double>(), q.grad.ptr<double>() + q.shape.numel());
    EXPECT_NE(obj.last_step().reward_chosen, 0.0);
    return loss;
  };
  std::vector<std::vector<double>> g_model, g_table;
  const double l_model = run(model_reference(frozen), g_model);
  const double l_table =
      run(std::make_unique<ReferenceTable>(std::move(table)), g_table);
  EXPECT_NEAR(l_table, l_model, 1e-12 * std::abs(l_model));
  EXPECT_GT(std::abs(l_model - std::log(2.0)), 1e-3);  // the policy is not its reference
  ASSERT_EQ(g_table.size(), g_model.size());
  for (std::size_t i = 0; i < g_model.size(); ++i)
    for (std::size_t k = 0; k < g_model[i].size(); ++k)
      ASSERT_NEAR(g_table[i][k], g_model[i][k], 1e-12 + 1e-10 * std::abs(g_model[i][k])) << i;
}

TEST(PrecomputedReference, FileReadsBackBitwiseAndDamageIsAnError) {
  const ReferenceTable t({{5, -1.25}, {3, -0.1}, {9, -7.0 / 3.0}, {3, -99.0}});
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.find(3), -0.1);  // the first value of a repeated key
  EXPECT_FALSE(t.find(4).has_value());
  const std::string path = temp_path("rt");
  t.save(path);
  const std::optional<ReferenceTable> back = ReferenceTable::load(path);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->size(), 3u);
  for (std::uint64_t k : {3u, 5u, 9u}) EXPECT_EQ(back->find(k), t.find(k)) << k;
  EXPECT_FALSE(ReferenceTable::load(path + ".absent").has_value());
  // Truncated, then not a table at all: one line naming the file.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  for (int damage = 0; damage < 2; ++damage) {
    try {
      (void)ReferenceTable::load(path);
      ADD_FAILURE() << "a damaged table loaded";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    std::ofstream(path, std::ios::trunc) << "not a table of anything\n";
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace tailor::objective
