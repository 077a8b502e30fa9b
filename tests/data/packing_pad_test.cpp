// Padding mode (data.packing: pad): one document per sequence from its start, padding that never
// is EOS, never carries loss, restarts its positions and is a document of its own; long documents
// continue in the next sequence; prompt tuning's slots open each sequence.
#include <vector>

#include <gtest/gtest.h>

#include "data/packing.h"

namespace tailor::data {
namespace {

constexpr std::int32_t kEos = 256;

struct Row {
  std::vector<std::int32_t> ids, targets, positions, docs;
};

Row fill(const PackedSequences& p, std::int64_t s) {
  const auto t = static_cast<std::size_t>(p.seq_len());
  Row r{std::vector<std::int32_t>(t), std::vector<std::int32_t>(t), std::vector<std::int32_t>(t),
        std::vector<std::int32_t>(t)};
  p.fill(s, r.ids, r.targets, r.positions, r.docs);
  return r;
}

// "abc" (prompt "a", response "bc") and "de": a b c EOS | d e EOS.
TokenizedCorpus two_documents() {
  TokenizedCorpus c;
  c.tokens = {'a', 'b', 'c', kEos, 'd', 'e', kEos};
  c.loss = {0, 1, 1, 1, 1, 1, 1};
  c.doc_start = {0, 4, 7};
  return c;
}

constexpr std::int32_t kI = kIgnoreTarget;

TEST(PackingPad, OneDocumentPerSequencePaddedWithNoLoss) {
  const TokenizedCorpus c = two_documents();
  const std::int32_t pad = pad_token_id(kEos);
  EXPECT_EQ(pad, 0);
  const PackedSequences p(c, 6, "x", 0, PackingMode::kPad, pad);
  ASSERT_EQ(p.size(), 2);
  const Row r0 = fill(p, 0);
  EXPECT_EQ(r0.ids, (std::vector<std::int32_t>{'a', 'b', 'c', kEos, pad, pad}));
  EXPECT_EQ(r0.targets, (std::vector<std::int32_t>{'b', 'c', kEos, kI, kI, kI}));
  EXPECT_EQ(r0.positions, (std::vector<std::int32_t>{0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(r0.docs, (std::vector<std::int32_t>{0, 0, 0, 0, 1, 1}));
  const Row r1 = fill(p, 1);
  EXPECT_EQ(r1.ids, (std::vector<std::int32_t>{'d', 'e', kEos, pad, pad, pad}));
  EXPECT_EQ(r1.targets, (std::vector<std::int32_t>{'e', kEos, kI, kI, kI, kI}));
  EXPECT_EQ(r1.positions, (std::vector<std::int32_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(r1.docs, (std::vector<std::int32_t>{0, 0, 0, 1, 1, 1}));
  // Padding is never EOS, whatever id the EOS has.
  EXPECT_EQ(pad_token_id(0), 1);
  EXPECT_NE(pad_token_id(1), 1);
}

TEST(PackingPad, ALongDocumentContinuesInTheNextSequence) {
  const TokenizedCorpus c = two_documents();
  const PackedSequences p(c, 3, "x", 0, PackingMode::kPad, 0);
  ASSERT_EQ(p.size(), 3);  // "abc" + EOS in two pieces, "de" + EOS in one
  const Row r0 = fill(p, 0);
  EXPECT_EQ(r0.ids, (std::vector<std::int32_t>{'a', 'b', 'c'}));
  EXPECT_EQ(r0.targets, (std::vector<std::int32_t>{'b', 'c', kEos}));  // as packing does
  const Row r1 = fill(p, 1);
  EXPECT_EQ(r1.ids, (std::vector<std::int32_t>{kEos, 0, 0}));
  EXPECT_EQ(r1.targets, (std::vector<std::int32_t>{kI, kI, kI}));
  EXPECT_EQ(r1.docs, (std::vector<std::int32_t>{0, 1, 1}));
  const Row r2 = fill(p, 2);
  EXPECT_EQ(r2.ids, (std::vector<std::int32_t>{'d', 'e', kEos}));
  EXPECT_EQ(r2.docs, (std::vector<std::int32_t>{0, 0, 0}));  // no room left: no padding
}

TEST(PackingPad, VirtualTokensOpenEverySequence) {
  const TokenizedCorpus c = two_documents();
  const PackedSequences p(c, 7, "x", 2, PackingMode::kPad, 0);
  ASSERT_EQ(p.size(), 2);
  const Row r1 = fill(p, 1);
  EXPECT_EQ(r1.ids, (std::vector<std::int32_t>{virtual_token_id(0), virtual_token_id(1), 'd', 'e',
                                               kEos, 0, 0}));
  // The last virtual slot predicts the document's first token (it carries loss).
  EXPECT_EQ(r1.targets, (std::vector<std::int32_t>{kI, 'd', 'e', kEos, kI, kI, kI}));
  EXPECT_EQ(r1.positions, (std::vector<std::int32_t>{0, 1, 2, 3, 4, 0, 1}));
  EXPECT_EQ(r1.docs, (std::vector<std::int32_t>{0, 0, 0, 0, 0, 1, 1}));
  const Row r0 = fill(p, 0);
  EXPECT_EQ(r0.targets[1], kI);  // "a" is prompt: no loss on predicting it
}

TEST(PackingPad, EveryTokenOfEveryDocumentIsTrainedOnceAsInPacking) {
  // The loss-carrying targets over all sequences are the same in both modes when documents end
  // where pack rows end: here T = 4 and documents of 4, 2 + 2 and 4 tokens (plus one more token,
  // since packing needs a target after its last row).
  TokenizedCorpus c;
  c.tokens = {1, 2, 3, kEos, 4, kEos, 5, kEos, 6, 7, 8, kEos, 9};
  c.doc_start = {0, 4, 6, 8, 12, 13};
  const PackedSequences pack(c, 4, "x");
  const PackedSequences pad(c, 4, "x", 0, PackingMode::kPad, 0);
  std::vector<std::int32_t> from_pack, from_pad;
  for (std::int64_t s = 0; s < pack.size(); ++s)
    for (std::int32_t t : fill(pack, s).targets)
      if (t != kI) from_pack.push_back(t);
  for (std::int64_t s = 0; s + 1 < pad.size(); ++s)  // the last: the extra token's document
    for (std::int32_t t : fill(pad, s).targets)
      if (t != kI) from_pad.push_back(t);
  EXPECT_EQ(from_pack, from_pad);
  EXPECT_EQ(pad.size(), 5);
  EXPECT_EQ(pack.size(), 3);
}

}  // namespace
}  // namespace tailor::data
