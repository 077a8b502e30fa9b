// Packing for prompt tuning (packing.h): every document fragment of a row opens with the n
// virtual-token slots (ids -1 - k, positions 0..n-1, no loss on them), its real tokens follow at
// positions n, n+1, ...; the last slot predicts a document's first token (when it carries loss),
// never a continued fragment's; rows that cannot fit another fragment end in padding.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/packing.h"

namespace tailor::data {
namespace {

using Row = std::vector<std::int32_t>;
constexpr std::int32_t kIg = kIgnoreTarget;
constexpr std::int32_t kEos = 256;

struct Filled {
  Row ids, targets, positions, docs;
};

Filled fill(const PackedSequences& p, std::int64_t s) {
  const auto t = static_cast<std::size_t>(p.seq_len());
  Filled f{Row(t), Row(t), Row(t), Row(t)};
  p.fill(s, f.ids, f.targets, f.positions, f.docs);
  return f;
}

TEST(PackingVirtualTokens, EveryDocumentOpensWithTheVirtualSlots) {
  // Documents "abc" and "de": a b c EOS d e EOS; n = 2, T = 6.
  TokenizedCorpus c;
  c.tokens = {'a', 'b', 'c', kEos, 'd', 'e', kEos};
  c.doc_start = {0, 4, 7};
  const PackedSequences p(c, 6, "x", 2);
  ASSERT_EQ(p.size(), 2);
  const Filled r0 = fill(p, 0);
  EXPECT_EQ(r0.ids, (Row{-1, -2, 'a', 'b', 'c', kEos}));
  EXPECT_EQ(r0.targets, (Row{kIg, 'a', 'b', 'c', kEos, kIg}));  // slot 1 predicts the first token
  EXPECT_EQ(r0.positions, (Row{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(r0.docs, (Row{0, 0, 0, 0, 0, 0}));
  const Filled r1 = fill(p, 1);
  EXPECT_EQ(r1.ids, (Row{-1, -2, 'd', 'e', kEos, 0}));           // one slot of padding
  EXPECT_EQ(r1.targets, (Row{kIg, 'd', 'e', kEos, kIg, kIg}));
  EXPECT_EQ(r1.positions, (Row{0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(r1.docs, (Row{0, 0, 0, 0, 0, 1}));
}

TEST(PackingVirtualTokens, SeveralDocumentsInOneRow) {
  // "ab", "c", "de" (with EOS); n = 1, T = 9: [v a b E][v c E][v d] and the rest next row.
  TokenizedCorpus c;
  c.tokens = {'a', 'b', kEos, 'c', kEos, 'd', 'e', kEos, 'f', kEos};
  c.doc_start = {0, 3, 5, 8, 10};
  const PackedSequences p(c, 9, "x", 1);
  const Filled r0 = fill(p, 0);
  EXPECT_EQ(r0.ids, (Row{-1, 'a', 'b', kEos, -1, 'c', kEos, -1, 'd'}));
  EXPECT_EQ(r0.targets, (Row{'a', 'b', kEos, kIg, 'c', kEos, kIg, 'd', 'e'}));
  EXPECT_EQ(r0.positions, (Row{0, 1, 2, 3, 0, 1, 2, 0, 1}));
  EXPECT_EQ(r0.docs, (Row{0, 0, 0, 0, 1, 1, 1, 2, 2}));
  ASSERT_EQ(p.size(), 1);  // the tail (e EOS, f EOS) fills no second row: dropped
}

TEST(PackingVirtualTokens, ContinuedFragmentsAndLossMasks) {
  // One document a..g EOS split over rows (n = 2, T = 5); 'a' is a prompt token (no loss).
  TokenizedCorpus c;
  c.tokens = {'a', 'b', 'c', 'd', 'e', 'f', 'g', kEos};
  c.loss = {0, 1, 1, 1, 1, 1, 1, 1};
  c.doc_start = {0, 8};
  const PackedSequences p(c, 5, "x", 2);
  ASSERT_EQ(p.size(), 3);
  const Filled r0 = fill(p, 0);
  EXPECT_EQ(r0.ids, (Row{-1, -2, 'a', 'b', 'c'}));
  EXPECT_EQ(r0.targets, (Row{kIg, kIg, 'b', 'c', 'd'}));  // 'a' carries no loss
  const Filled r1 = fill(p, 1);
  EXPECT_EQ(r1.ids, (Row{-1, -2, 'd', 'e', 'f'}));
  // 'd' was row 0's last target: the continued fragment does not predict it again.
  EXPECT_EQ(r1.targets, (Row{kIg, kIg, 'e', 'f', 'g'}));
  EXPECT_EQ(r1.positions, (Row{0, 1, 2, 3, 4}));
  const Filled r2 = fill(p, 2);
  EXPECT_EQ(r2.ids, (Row{-1, -2, 'g', kEos, 0}));
  EXPECT_EQ(r2.targets, (Row{kIg, kIg, kEos, kIg, kIg}));
  EXPECT_EQ(r2.docs, (Row{0, 0, 0, 0, 1}));
  // Every real token is an input exactly once, in order.
  Row seen;
  for (std::int64_t s = 0; s < p.size(); ++s)
    for (std::int32_t id : fill(p, s).ids)
      if (id > 0) seen.push_back(id);
  EXPECT_EQ(seen, c.tokens);
}

TEST(PackingVirtualTokens, TooShortIsUserError) {
  TokenizedCorpus c;
  c.tokens = {'a', kEos};
  c.doc_start = {0, 2};
  try {
    const PackedSequences p(c, 16, "short.txt", 4);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "short.txt: the data has 2 tokens, too few for one sequence of data.seq_len = 16 "
              "with 4 virtual tokens opening every document");
  }
}

}  // namespace
}  // namespace tailor::data
