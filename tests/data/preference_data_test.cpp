// Preference pairs in the data pipeline (data/preference.h): the JSONL forms TRL writes and their
// errors, the truncation rule (prompt first, then the answers), pairs as one document each
// through mixing and the validation split, and pairs packed as two padded rows.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/corpus_builder.h"
#include "data/jsonl_dataset.h"
#include "data/packing.h"
#include "data/preference.h"

namespace tailor::data {
namespace {

std::string error_of(const std::string& text) {
  try {
    (void)parse_jsonl(text, "d.jsonl", false);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PreferenceData, ParsesTheStandardAndConversationalForms) {
  const JsonlData d = parse_jsonl(
      "{\"prompt\": \"Hi \", \"chosen\": \"yes\", \"rejected\": \"no\"}\n"
      "{\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}], \"chosen\": [{\"role\": "
      "\"assistant\", \"content\": \"A\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": "
      "\"B\"}]}\n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
      "\"content\": \"Q\"}], \"chosen\": \"A\", \"rejected\": \"B\"}\n"
      "{\"prompt\": \"\", \"chosen\": \"x\", \"rejected\": \"y\"}\n",
      "d.jsonl", false);
  ASSERT_EQ(d.records.size(), 4u);
  for (const Record& r : d.records) EXPECT_EQ(r.kind, RecordKind::kPreference);
  EXPECT_EQ(d.records[0].prompt, "Hi ");
  EXPECT_EQ(d.records[0].chosen, "yes");
  EXPECT_EQ(d.records[0].rejected, "no");
  ASSERT_EQ(d.records[1].messages.size(), 1u);
  EXPECT_EQ(d.records[1].messages[0].content, "Q");
  EXPECT_EQ(d.records[1].chosen, "A");
  EXPECT_EQ(d.records[1].rejected, "B");
  EXPECT_EQ(d.records[2].messages.size(), 2u);
  EXPECT_EQ(d.records[3].prompt, "");
}

TEST(PreferenceData, BadPairsNameTheLine) {
  const std::string ok = "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n";
  EXPECT_EQ(error_of(ok + "{\"prompt\": \"p\", \"chosen\": \"a\"}\n"),
            "d.jsonl:2: missing field \"rejected\"");
  EXPECT_EQ(error_of("{\"chosen\": \"a\", \"rejected\": \"b\"}\n"),
            "d.jsonl:1: missing field \"prompt\" (or \"messages\") of a preference pair");
  EXPECT_EQ(error_of("{\"prompt\": \"p\", \"chosen\": \"\", \"rejected\": \"b\"}\n"),
            "d.jsonl:1: field \"chosen\" is empty");
  EXPECT_EQ(error_of("{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"b\"}\n"),
            "d.jsonl:1: field \"chosen\" must be a string or a list of one assistant message, "
            "got a number");
  EXPECT_EQ(error_of("{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": [{\"role\": \"user\", "
                     "\"content\": \"b\"}]}\n"),
            "d.jsonl:1: field \"rejected\" must hold exactly one assistant message, got 1 "
            "message of role user");
  EXPECT_EQ(error_of("{\"prompt\": [{\"role\": \"assistant\", \"content\": \"x\"}], \"chosen\": "
                     "\"a\", \"rejected\": \"b\"}\n"),
            "d.jsonl:1: field \"prompt\": the prompt's last message is the assistant's; it must "
            "end with the turn the answers reply to");
  EXPECT_EQ(error_of("{\"prompt\": \"p\", \"messages\": [], \"chosen\": \"a\", \"rejected\": "
                     "\"b\"}\n"),
            "d.jsonl:1: give the prompt as \"prompt\" or as \"messages\", not both");
  EXPECT_EQ(error_of("{\"prompt\": [{\"role\": \"critic\", \"content\": \"x\"}], \"chosen\": "
                     "\"a\", \"rejected\": \"b\"}\n"),
            "d.jsonl:1: prompt[0].role: unknown role \"critic\" (expected system, user or "
            "assistant)");
}

TEST(PreferenceData, RecordKindsMustMatchTheObjective) {
  const JsonlData pairs = parse_jsonl(
      "{\"text\": \"t\"}\n{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n", "d.jsonl",
      false);
  try {
    check_record_kinds(pairs.records, "d.jsonl", false);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "d.jsonl:2: a preference pair (\"chosen\"/\"rejected\") needs a preference "
              "objective (objective.type: dpo, cpo, orpo or simpo)");
  }
  try {
    check_record_kinds(pairs.records, "d.jsonl", true);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "d.jsonl:1: expected a preference pair {\"prompt\", \"chosen\", \"rejected\"} "
              "(objective.type is a preference objective), got another kind of record");
  }
}

PairSide side(int prompt, int answer) {
  PairSide s;
  for (int i = 0; i < prompt; ++i) {
    s.tokens.push_back(100 + i);
    s.loss.push_back(0);
  }
  for (int i = 0; i < answer; ++i) {
    s.tokens.push_back(200 + i);
    s.loss.push_back(kLossAnswer);
  }
  s.prompt = prompt;
  return s;
}

TEST(PreferenceData, TruncatesThePromptFirstThenTheAnswers) {
  {  // fits: untouched
    PairSide c = side(3, 4), r = side(3, 5);
    truncate_pair(c, r, {8, 4});
    EXPECT_EQ(c.tokens.size(), 7u);
    EXPECT_EQ(r.tokens.size(), 8u);
  }
  {  // the prompt keeps its last 4 tokens; then both fit
    PairSide c = side(6, 2), r = side(6, 4);
    truncate_pair(c, r, {8, 4});
    EXPECT_EQ(c.tokens, (std::vector<std::int32_t>{102, 103, 104, 105, 200, 201}));
    EXPECT_EQ(r.tokens, (std::vector<std::int32_t>{102, 103, 104, 105, 200, 201, 202, 203}));
    EXPECT_EQ(c.prompt, 4);
  }
  {  // the prompt cut to 4, then the answers to 8 - 4 = 4 tokens (their starts)
    PairSide c = side(6, 7), r = side(6, 3);
    truncate_pair(c, r, {8, 4});
    EXPECT_EQ(c.tokens, (std::vector<std::int32_t>{102, 103, 104, 105, 200, 201, 202, 203}));
    EXPECT_EQ(r.tokens, (std::vector<std::int32_t>{102, 103, 104, 105, 200, 201, 202}));
    EXPECT_EQ(c.loss, (std::vector<std::uint8_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  }
  {  // a short prompt is not cut: the answers get what is left
    PairSide c = side(2, 9), r = side(2, 1);
    truncate_pair(c, r, {8, 4});
    EXPECT_EQ(c.tokens.size(), 8u);
    EXPECT_EQ(c.prompt, 2);
    EXPECT_EQ(r.tokens.size(), 3u);
  }
}

TEST(PreferenceData, APairIsOneDocumentOfTwoSequences) {
  const ByteTokenizer tok;
  const JsonlData d =
      parse_jsonl("{\"prompt\": \"ab\", \"chosen\": \"cd\", \"rejected\": \"e\"}\n", "d.jsonl", false);
  std::vector<std::int32_t> tokens;
  std::vector<std::uint8_t> flags;
  tokenize_pair(d.records[0], TemplateSpec{}, tok, {16, 8}, tokens, flags);
  const std::int32_t eos = tok.eos_id();
  // plain: prompt + answer as they are, EOS after the answer
  EXPECT_EQ(tokens, (std::vector<std::int32_t>{'a', 'b', 'c', 'd', eos, 'a', 'b', 'e', eos}));
  EXPECT_EQ(flags, (std::vector<std::uint8_t>{0, 0, 1, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(rejected_start(flags), 5);
}

TEST(PreferenceData, PairsPackAsTwoPaddedRows) {
  const ByteTokenizer tok;
  const JsonlData d = parse_jsonl(
      "{\"prompt\": \"ab\", \"chosen\": \"cd\", \"rejected\": \"e\"}\n"
      "{\"prompt\": \"x\", \"chosen\": \"yz\", \"rejected\": \"w\"}\n",
      "d.jsonl", false);
  const PairLimits limits{6, 3};
  const TokenizedCorpus c = tokenize_records(d.records, TemplateSpec{}, tok, 1, nullptr, 0, &limits);
  ASSERT_EQ(c.num_documents(), 2);
  const PackedSequences packed(c, 6, "d.jsonl", 0, PackingMode::kPairs, 0);
  ASSERT_EQ(packed.size(), 2);
  ASSERT_EQ(packed.rows_per_item(), 2);
  std::vector<std::int32_t> ids(12), targets(12), pos(12), docs(12);
  packed.fill(0, ids, targets, pos, docs);
  const std::int32_t eos = tok.eos_id(), ign = kIgnoreTarget;
  EXPECT_EQ(ids, (std::vector<std::int32_t>{'a', 'b', 'c', 'd', eos, 0, 'a', 'b', 'e', eos, 0, 0}));
  // A target carries loss where the next token is an answer token.
  EXPECT_EQ(targets, (std::vector<std::int32_t>{ign, 'c', 'd', eos, ign, ign, ign, 'e', eos, ign,
                                                ign, ign}));
  EXPECT_EQ(pos, (std::vector<std::int32_t>{0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(docs, (std::vector<std::int32_t>{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1}));
  packed.fill(1, ids, targets, pos, docs);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{'x', 'y', 'z', eos, 0, 0, 'x', 'w', eos, 0, 0, 0}));
}

// Each document of a pair corpus: a chosen then a rejected sequence with the same prompt.
void expect_whole_pairs(CorpusView c) {
  for (std::int64_t d = 0; d < c.num_documents(); ++d) {
    const auto b = static_cast<std::size_t>(c.doc_start[static_cast<std::size_t>(d)]);
    const auto e = static_cast<std::size_t>(c.doc_start[static_cast<std::size_t>(d) + 1]);
    const auto flags = c.loss.subspan(b, e - b);
    const auto split = static_cast<std::size_t>(rejected_start(flags));
    ASSERT_GT(split, 0u);
    ASSERT_LT(split, flags.size());
    for (std::size_t i = split; i < flags.size(); ++i) ASSERT_NE(flags[i] & kLossRejected, 0);
    // The prompt (the tokens before the first answer token) is the same on both sides.
    std::vector<std::int32_t> prompts[2];
    for (std::size_t i = 0; i < split && (flags[i] & kLossAnswer) == 0; ++i)
      prompts[0].push_back(c.tokens[b + i]);
    for (std::size_t i = split; i < flags.size() && (flags[i] & kLossAnswer) == 0; ++i)
      prompts[1].push_back(c.tokens[b + i]);
    EXPECT_EQ(prompts[0], prompts[1]) << "document " << d;
  }
}

TEST(PreferenceData, PairsStayWholeThroughMixingAndTheValidationSplit) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tailor_pref_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string a = (dir / "a.jsonl").string(), b = (dir / "b.jsonl").string();
  {
    std::ofstream fa(a), fb(b);
    for (int i = 0; i < 20; ++i) {
      fa << "{\"prompt\": \"prompt " << i << "\", \"chosen\": \"good " << i
         << "\", \"rejected\": \"bad\"}\n";
      fb << "{\"prompt\": \"q" << i << "\", \"chosen\": \"yes\", \"rejected\": \"no " << i
         << "\"}\n";
    }
  }
  CorpusSpec spec;
  spec.sources = {{a, 1.5}, {b, 0.5}};
  spec.format = DataFormat::kJsonl;
  spec.seed = 3;
  spec.pairs = PairLimits{32, 16};
  CorpusStats stats;
  const ByteTokenizer tok;
  const TokenizedCorpus c = build_corpus(spec, tok, stats);
  EXPECT_EQ(c.num_documents(), 30 + 10);
  expect_whole_pairs(c);
  const TrainValidSplit split = split_validation(c, 0.25, 5);
  EXPECT_EQ(split.valid.num_documents(), 10);
  expect_whole_pairs(split.train);
  expect_whole_pairs(split.valid);
  // A pair where pairs are not expected names its file and line.
  spec.pairs.reset();
  spec.sources = {{a, 1.0}};
  EXPECT_THROW((void)build_corpus(spec, tok, stats), UserError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tailor::data
