// ROUGE-L as the `rouge-score` package computes it (metrics.h has the contract): its default
// tokenizer without stemming, the longest common subsequence of tokens, F1 of LCS precision and
// recall; the corpus value is the mean of the per-sentence F-measures.
#include <algorithm>

#include "eval/metrics.h"
#include "eval/metrics_corpus.h"
#include "eval/python_text.h"

namespace tailor::eval {
namespace {

bool is_token_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Length of the longest common subsequence, one DP row at a time: row[j] = LCS(a[:i], b[:j]).
std::size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::size_t> row(b.size() + 1, 0);
  for (const std::string& x : a) {
    std::size_t diag = 0;  // LCS(a[:i-1], b[:j-1])
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = (x == b[j - 1]) ? diag + 1 : std::max(up, row[j - 1]);
      diag = up;
    }
  }
  return row.back();
}

// rouge-score's scoring.fmeasure.
double f1(double precision, double recall) {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text) {
  // After Python's lower() the only ASCII letters left are lowercase, and only ASCII letters and
  // digits survive: the tokens are the maximal runs of [a-z0-9] bytes of the lowered UTF-8.
  const std::string lowered = py::lower(py::valid_utf8(text));
  std::vector<std::string> tokens;
  std::size_t i = 0;
  while (i < lowered.size()) {
    if (!is_token_char(lowered[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < lowered.size() && is_token_char(lowered[i])) ++i;
    tokens.push_back(lowered.substr(start, i - start));
  }
  return tokens;
}

RougeScore rouge_l(std::string_view hypothesis, std::string_view reference) {
  const std::vector<std::string> target = rouge_tokenize(reference);
  const std::vector<std::string> prediction = rouge_tokenize(hypothesis);
  if (target.empty() || prediction.empty()) return {};
  const auto lcs = static_cast<double>(lcs_length(target, prediction));
  RougeScore s;
  s.precision = lcs / static_cast<double>(prediction.size());
  s.recall = lcs / static_cast<double>(target.size());
  s.fmeasure = f1(s.precision, s.recall);
  return s;
}

double corpus_rouge_l(std::span<const std::string> hyps, ReferenceStreams refs) {
  const detail::Corpus corpus = detail::make_corpus(hyps, refs);
  if (corpus.hyps.empty()) return 0.0;
  double sum = 0.0;  // left to right, as Python's sum() of the list of F-measures
  for (std::size_t i = 0; i < corpus.hyps.size(); ++i) {
    double best = 0.0;  // score_multi: the reference with the highest F-measure
    for (const std::string& r : corpus.refs[i]) best = std::max(best, rouge_l(corpus.hyps[i], r).fmeasure);
    sum += best;
  }
  return sum / static_cast<double>(corpus.hyps.size());
}

}  // namespace tailor::eval
