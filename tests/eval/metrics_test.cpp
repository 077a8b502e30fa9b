// Corpus metrics against the reference tools: every value in tests/golden/metrics/cases.json was
// computed by sacreBLEU / rouge-score / the SQuAD normalizer (tests/golden/make_metric_fixtures.py),
// and Tailor must reproduce it to 1e-9 (signatures and token strings exactly).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/python_text.h"

namespace {

using nlohmann::json;
using tailor::eval::ReferenceStreams;

constexpr double kTol = 1e-9;

const json& fixture() {
  static const json j = [] {
    std::ifstream f(TAILOR_SOURCE_DIR "/tests/golden/metrics/cases.json");
    EXPECT_TRUE(f) << "missing tests/golden/metrics/cases.json";
    return json::parse(f);
  }();
  return j;
}

struct Case {
  std::string name;
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;
  json expected;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const json& c : fixture().at("cases"))
    out.push_back({c.at("name"), c.at("hyps"), c.at("refs"), c});
  return out;
}

TEST(MetricsFixture, MadeWithTheSacrebleuOfTheSignature) {
  EXPECT_EQ(fixture().at("versions").at("sacrebleu").get<std::string>(),
            tailor::eval::kSacrebleuVersion);
  EXPECT_EQ(fixture().at("versions").at("rouge_score").get<std::string>(),
            tailor::eval::kRougeScoreVersion);
  EXPECT_EQ(fixture().at("versions").at("unicode").get<std::string>(),
            tailor::eval::py::unicode_version());
  EXPECT_GE(fixture().at("cases").size(), 20u);
}

TEST(Tokenize13a, EqualsSacrebleu) {
  for (const json& t : fixture().at("tokenize_13a")) {
    const std::string in = t.at("input");
    EXPECT_EQ(tailor::eval::tokenize_13a(in), t.at("output").get<std::string>()) << "input: " << in;
  }
}

TEST(RougeTokenize, EqualsRougeScore) {
  for (const json& t : fixture().at("rouge_tokenize")) {
    const std::string in = t.at("input");
    EXPECT_EQ(tailor::eval::rouge_tokenize(in), t.at("tokens").get<std::vector<std::string>>())
        << "input: " << in;
  }
}

TEST(SquadNormalize, EqualsTheSquadScript) {
  for (const json& t : fixture().at("squad_normalize")) {
    const std::string in = t.at("input");
    EXPECT_EQ(tailor::eval::squad_normalize(in), t.at("output").get<std::string>()) << "input: " << in;
  }
}

TEST(RougeL, PairsEqualRougeScore) {
  for (const json& t : fixture().at("rouge_l_pairs")) {
    const tailor::eval::RougeScore s = tailor::eval::rouge_l(t.at("hyp").get<std::string>(),
                                                             t.at("ref").get<std::string>());
    EXPECT_NEAR(s.precision, t.at("precision").get<double>(), kTol) << t.dump();
    EXPECT_NEAR(s.recall, t.at("recall").get<double>(), kTol) << t.dump();
    EXPECT_NEAR(s.fmeasure, t.at("fmeasure").get<double>(), kTol) << t.dump();
  }
}

TEST(Bleu, CorpusEqualsSacrebleu) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const json& e = c.expected.at("bleu");
    const tailor::eval::BleuResult b = tailor::eval::corpus_bleu(c.hyps, c.refs);
    EXPECT_NEAR(b.score, e.at("score").get<double>(), kTol);
    for (int n = 0; n < 4; ++n) {
      EXPECT_NEAR(b.precisions[n], e.at("precisions")[n].get<double>(), kTol) << "order " << n + 1;
      EXPECT_EQ(b.counts[n], e.at("counts")[n].get<std::int64_t>()) << "order " << n + 1;
      EXPECT_EQ(b.totals[n], e.at("totals")[n].get<std::int64_t>()) << "order " << n + 1;
    }
    EXPECT_NEAR(b.bp, e.at("bp").get<double>(), kTol);
    EXPECT_NEAR(b.ratio, e.at("ratio").get<double>(), kTol);
    EXPECT_EQ(b.sys_len, e.at("sys_len").get<std::int64_t>());
    EXPECT_EQ(b.ref_len, e.at("ref_len").get<std::int64_t>());
    EXPECT_EQ(b.signature, e.at("signature").get<std::string>());
  }
}

void expect_chrf(const Case& c, const char* key, int word_order, bool eps) {
  tailor::eval::ChrfOptions o;
  o.word_order = word_order;
  o.eps_smoothing = eps;
  const tailor::eval::ChrfResult r = tailor::eval::corpus_chrf(c.hyps, c.refs, o);
  const json& e = c.expected.at(key);
  EXPECT_NEAR(r.score, e.at("score").get<double>(), kTol) << key;
  EXPECT_EQ(r.signature, e.at("signature").get<std::string>()) << key;
}

TEST(Chrf, CorpusEqualsSacrebleu) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    expect_chrf(c, "chrf", 0, false);
    expect_chrf(c, "chrf_eps", 0, true);
  }
}

TEST(ChrfPlusPlus, CorpusEqualsSacrebleu) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    expect_chrf(c, "chrf_pp", 2, false);
    expect_chrf(c, "chrf_pp_eps", 2, true);
  }
}

TEST(RougeL, CorpusMeanEqualsRougeScore) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_NEAR(tailor::eval::corpus_rouge_l(c.hyps, c.refs), c.expected.at("rouge_l").get<double>(),
                kTol);
    if (c.refs.size() != 1) continue;
    const auto per_sentence = c.expected.at("rouge_l_sentences").get<std::vector<double>>();
    for (std::size_t i = 0; i < c.hyps.size(); ++i)
      EXPECT_NEAR(tailor::eval::rouge_l(c.hyps[i], c.refs[0][i]).fmeasure, per_sentence[i], kTol)
          << "sentence " << i;
  }
}

TEST(ExactMatch, CorpusEqualsReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_NEAR(tailor::eval::corpus_exact_match(c.hyps, c.refs, false),
                c.expected.at("exact_match").get<double>(), kTol);
    EXPECT_NEAR(tailor::eval::corpus_exact_match(c.hyps, c.refs, true),
                c.expected.at("exact_match_squad").get<double>(), kTol);
  }
}

TEST(Metrics, ComputeMetricsAndJsonAgree) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const tailor::eval::CorpusMetrics m = tailor::eval::compute_metrics(c.hyps, c.refs);
    const json j = json::parse(tailor::eval::metrics_json(m));
    EXPECT_EQ(j.at("sentences").get<std::int64_t>(), static_cast<std::int64_t>(c.hyps.size()));
    // JSON numbers round-trip: equal, not just near.
    EXPECT_EQ(j.at("bleu").get<double>(), m.bleu.score);
    EXPECT_NEAR(j.at("bleu").get<double>(), c.expected.at("bleu").at("score").get<double>(), kTol);
    EXPECT_NEAR(j.at("chrf").get<double>(), c.expected.at("chrf").at("score").get<double>(), kTol);
    EXPECT_NEAR(j.at("chrf_pp").get<double>(), c.expected.at("chrf_pp").at("score").get<double>(), kTol);
    EXPECT_NEAR(j.at("rouge_l").get<double>(), c.expected.at("rouge_l").get<double>(), kTol);
    EXPECT_NEAR(j.at("exact_match").get<double>(), c.expected.at("exact_match").get<double>(), kTol);
    EXPECT_EQ(j.at("bleu_signature"), c.expected.at("bleu").at("signature"));
    EXPECT_EQ(j.at("chrf_signature"), c.expected.at("chrf").at("signature"));
    EXPECT_EQ(j.at("chrf_pp_signature"), c.expected.at("chrf_pp").at("signature"));
  }
}

TEST(Metrics, MismatchedStreamsAreUserErrors) {
  const std::vector<std::string> hyps = {"a", "b"};
  const std::vector<std::vector<std::string>> short_refs = {{"a"}};
  const std::vector<std::vector<std::string>> no_refs;
  EXPECT_THROW((void)tailor::eval::corpus_bleu(hyps, short_refs), tailor::UserError);
  EXPECT_THROW((void)tailor::eval::corpus_chrf(hyps, no_refs), tailor::UserError);
  EXPECT_THROW((void)tailor::eval::compute_metrics(hyps, short_refs), tailor::UserError);
}

TEST(Metrics, EmptyCorpusScoresZero) {
  const std::vector<std::string> hyps;
  const std::vector<std::vector<std::string>> refs = {{}};
  const tailor::eval::CorpusMetrics m = tailor::eval::compute_metrics(hyps, refs);
  EXPECT_EQ(m.sentences, 0);
  EXPECT_EQ(m.bleu.score, 0.0);
  EXPECT_EQ(m.chrf.score, 0.0);
  EXPECT_EQ(m.rouge_l, 0.0);
  EXPECT_EQ(m.exact_match, 0.0);
}

TEST(Metrics, InvalidUtf8IsReadAsReplacementCharacter) {
  // "\xff" decodes to U+FFFD, so it matches a reference holding U+FFFD itself.
  const std::vector<std::string> hyps = {"abc \xff def"};
  const std::vector<std::vector<std::string>> refs = {{"abc \xEF\xBF\xBD def"}};
  EXPECT_DOUBLE_EQ(tailor::eval::corpus_chrf(hyps, refs).score, 100.0);
  EXPECT_TRUE(tailor::eval::exact_match(hyps[0], refs[0][0], false));
}

}  // namespace
