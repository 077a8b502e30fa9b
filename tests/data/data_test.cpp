// Byte tokenizer, text splitting and validation, packing with document boundaries, and the
// data-order contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/data_order.h"
#include "data/packing.h"
#include "data/text_dataset.h"

namespace tailor::data {
namespace {

TEST(ByteTokenizer, RoundTripsUtf8) {
  const ByteTokenizer tok;
  const std::string text = "Grüße, мир, κόσμος, 世界 🌍";
  const auto ids = tok.encode(text);
  EXPECT_EQ(ids.size(), text.size());
  EXPECT_EQ(ids[0], 'G');
  EXPECT_EQ(ids[2], 0xC3);  // first byte of "ü"
  EXPECT_EQ(tok.decode(ids), text);
  auto with_eos = ids;
  with_eos.push_back(ByteTokenizer::kEos);
  EXPECT_EQ(tok.decode(with_eos), text);
  EXPECT_EQ(tok.vocab_size(), 257);
}

TEST(TextCorpus, SplitsDocuments) {
  const ByteTokenizer tok;
  const std::string text = "ab\ncd\n\n\nef\n";
  const auto none = tokenize_text(text, "t.txt", TextSplit::kNone, tok);
  EXPECT_EQ(none.num_documents(), 1);
  EXPECT_EQ(none.tokens.size(), text.size() + 1);
  EXPECT_EQ(none.tokens.back(), ByteTokenizer::kEos);

  const auto para = tokenize_text(text, "t.txt", TextSplit::kParagraph, tok);
  ASSERT_EQ(para.num_documents(), 2);
  // "ab\ncd\n" + EOS, "ef\n" + EOS
  EXPECT_EQ(para.doc_start, (std::vector<std::int64_t>{0, 7, 11}));
  EXPECT_EQ(tok.decode(std::vector<std::int32_t>(para.tokens.begin(), para.tokens.begin() + 7)), "ab\ncd\n");

  const auto lines = tokenize_text(text, "t.txt", TextSplit::kLine, tok);
  EXPECT_EQ(lines.num_documents(), 3);
  EXPECT_EQ(lines.doc_start, (std::vector<std::int64_t>{0, 3, 6, 9}));
}

void expect_user_error(const std::string& text, const std::string& message) {
  const ByteTokenizer tok;
  try {
    (void)tokenize_text(text, "d.txt", TextSplit::kNone, tok);
    FAIL() << "no error for " << message;
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(TextCorpus, BadInputNamesFileAndLine) {
  expect_user_error("ok\nfine\nbad \xff byte\n", "d.txt:3: invalid UTF-8 (byte 0xff at offset 12)");
  expect_user_error("a\n\xc0\xaf\n", "d.txt:2: invalid UTF-8 (byte 0xc0 at offset 2)");  // overlong
  expect_user_error("x\xed\xa0\x80", "d.txt:1: invalid UTF-8 (byte 0xed at offset 1)");    // surrogate
  expect_user_error(std::string("a\nb\0c", 5), "d.txt:2: NUL byte in text");
  expect_user_error("", "d.txt:1: no text to train on (the file is empty or blank)");
  expect_user_error(" \n\t\n", "d.txt:1: no text to train on (the file is empty or blank)");
}

TEST(TextCorpus, MissingFileIsUserError) {
  const ByteTokenizer tok;
  try {
    (void)load_text_corpus("/nonexistent/x.txt", TextSplit::kNone, tok);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/x.txt: cannot read: No such file or directory");
  }
}

TEST(Packing, TargetsPositionsAndDocuments) {
  // Documents "abc" and "de": tokens a b c EOS d e EOS (7 tokens); T = 3 -> 2 sequences.
  TokenizedCorpus c;
  c.tokens = {'a', 'b', 'c', 256, 'd', 'e', 256};
  c.doc_start = {0, 4, 7};
  const PackedSequences p(c, 3, "x");
  ASSERT_EQ(p.size(), 2);
  std::vector<std::int32_t> ids(3), tg(3), pos(3), doc(3);
  p.fill(0, ids, tg, pos, doc);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{'a', 'b', 'c'}));
  EXPECT_EQ(tg, (std::vector<std::int32_t>{'b', 'c', 256}));
  EXPECT_EQ(pos, (std::vector<std::int32_t>{0, 1, 2}));
  EXPECT_EQ(doc, (std::vector<std::int32_t>{0, 0, 0}));
  p.fill(1, ids, tg, pos, doc);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{256, 'd', 'e'}));
  // EOS closes document 0: its successor belongs to another document, so no loss there.
  EXPECT_EQ(tg, (std::vector<std::int32_t>{kIgnoreTarget, 'e', 256}));
  EXPECT_EQ(pos, (std::vector<std::int32_t>{0, 0, 1}));  // row start, then document start
  EXPECT_EQ(doc, (std::vector<std::int32_t>{0, 1, 1}));
}

TEST(Packing, TooShortIsUserError) {
  TokenizedCorpus c;
  c.tokens = {'a', 256};
  c.doc_start = {0, 2};
  try {
    const PackedSequences p(c, 4, "short.txt");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "short.txt: the data has 2 tokens, too few for one sequence of data.seq_len = 4 "
              "(needs 5)");
  }
}

TEST(DataOrder, EachEpochIsAPermutationFromSeedAndEpochAlone) {
  const std::int64_t n = 50;
  DataOrder order(n, 42);
  std::vector<std::int64_t> e0, e1;
  for (std::int64_t g = 0; g < n; ++g) e0.push_back(order.sequence_at(g));
  for (std::int64_t g = n; g < 2 * n; ++g) e1.push_back(order.sequence_at(g));
  std::vector<std::int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> iota(n);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(e0, e1);       // a new shuffle every epoch
  EXPECT_NE(e0, iota);     // actually shuffled
  // Random access in any order gives the same answer (the cursor is one integer).
  DataOrder other(n, 42);
  for (std::int64_t g : {73, 3, 99, 0, 51}) EXPECT_EQ(other.sequence_at(g), (g < n ? e0 : e1)[static_cast<std::size_t>(g % n)]);
  // Another seed, another order.
  DataOrder seeded(n, 43);
  std::vector<std::int64_t> s0;
  for (std::int64_t g = 0; g < n; ++g) s0.push_back(seeded.sequence_at(g));
  EXPECT_NE(s0, e0);
}

TEST(DataOrder, ShuffleIsUniformEnough) {
  // Position of element 0 over many seeds: each of 8 slots should be hit about 1/8 of the time.
  std::vector<int> hits(8, 0);
  for (std::uint64_t seed = 0; seed < 4000; ++seed) {
    const auto p = DataOrder::permutation(8, seed, 0);
    hits[static_cast<std::size_t>(std::find(p.begin(), p.end(), 0) - p.begin())]++;
  }
  for (int h : hits) EXPECT_NEAR(h, 500, 90);
}

}  // namespace
}  // namespace tailor::data
