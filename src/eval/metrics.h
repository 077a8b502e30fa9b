// Corpus metrics that equal the reference tools' numbers: BLEU, chrF and chrF++ as sacreBLEU 2.x
// computes them with its defaults, ROUGE-L as the `rouge-score` package computes it, and exact
// match. Checked against fixtures that the references wrote (tests/golden/make_metric_fixtures.py,
// tests/eval/metrics_test.cpp), to 1e-9.
//
// Inputs: `hyps` holds N hypothesis sentences; `refs` holds R >= 1 reference streams of N
// sentences each (refs[r][i] is the r-th reference of hypothesis i), as sacreBLEU's
// corpus_score(hyps, refs) takes them. Stream lengths that differ are a UserError. Text is UTF-8;
// invalid bytes are read as U+FFFD. An empty corpus (N = 0) scores 0 everywhere.
//
// Scales follow each reference: BLEU and chrF are 0..100 (as sacreBLEU prints them), ROUGE-L is
// rouge-score's F-measure in 0..1, exact match a fraction in 0..1.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::eval {

// The sacreBLEU release the fixtures were generated with; it ends every signature
// ("version:2.6.0"). Update it together with tests/golden/metrics/ when regenerating them.
inline constexpr std::string_view kSacrebleuVersion = "2.6.0";
// The rouge-score release the ROUGE-L fixtures were generated with.
inline constexpr std::string_view kRougeScoreVersion = "0.1.2";

using ReferenceStreams = std::span<const std::vector<std::string>>;

// ---- BLEU -------------------------------------------------------------------------------------
// sacreBLEU's tokenizer "13a" (mteval-v13a): drops "<skipped>" and "-\n", turns newlines into
// spaces, unescapes &quot; &amp; &lt; &gt;, puts spaces around ASCII punctuation and symbols other
// than ' , . - ; splits "." and "," off unless both neighbours are digits (so "1,000.5" stays one
// token), splits "-" after a digit, and collapses whitespace (Python's str.split() set) to single
// spaces. Tokens are joined by one space.
[[nodiscard]] std::string tokenize_13a(std::string_view line);

struct BleuResult {
  double score = 0.0;                  // 0..100
  std::array<double, 4> precisions{};  // modified n-gram precisions, 0..100, after smoothing
  std::array<std::int64_t, 4> counts{};  // matched n-grams (clipped) per order
  std::array<std::int64_t, 4> totals{};  // hypothesis n-grams per order
  double bp = 0.0;                     // brevity penalty
  double ratio = 0.0;                  // sys_len / ref_len (0 when ref_len is 0)
  std::int64_t sys_len = 0;            // hypothesis tokens
  std::int64_t ref_len = 0;            // closest reference length per sentence, summed
  std::string signature;               // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
};

// sacreBLEU's corpus_bleu(hyps, refs) with its defaults: 13a tokens after Python's rstrip(),
// n-grams up to 4, counts clipped by the maximum count over the references, the reference length
// closest to the hypothesis's (the shorter on a tie), "exp" smoothing (the k-th order with no
// match gets precision 100 / (2^k · total)), no effective order (an order with no n-grams at all
// scores as log 0 ≈ -1e10, so the score is 0), and 0 whenever no unigram matches.
[[nodiscard]] BleuResult corpus_bleu(std::span<const std::string> hyps, ReferenceStreams refs);

// ---- chrF / chrF++ ----------------------------------------------------------------------------
struct ChrfOptions {
  int char_order = 6;          // character n-grams 1..char_order
  int word_order = 0;          // word n-grams 1..word_order: 0 is chrF, 2 is chrF++
  int beta = 2;                // recall weighs beta times precision
  bool eps_smoothing = false;  // sacreBLEU's default (false): average P and R over orders that
                               // occur in both hypothesis and reference, then one F-beta;
                               // true: the mean of per-order F-beta with 1e-16 for empty orders
};

struct ChrfResult {
  double score = 0.0;     // 0..100
  std::string signature;  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
};

// sacreBLEU's corpus_chrf: character n-grams over code points with all whitespace removed, word
// n-grams over whitespace-split words with one leading or trailing ASCII punctuation mark split
// off (words of one code point are kept whole). Per sentence the statistics of the reference with
// the best sentence-level score count (the first on a tie); they are summed over the corpus and
// scored once.
[[nodiscard]] ChrfResult corpus_chrf(std::span<const std::string> hyps, ReferenceStreams refs,
                                     const ChrfOptions& options = {});

// ---- ROUGE-L ----------------------------------------------------------------------------------
// rouge-score's default tokenizer (use_stemmer=False): Python's lower(), every run of characters
// other than [a-z0-9] becomes a separator. Letters outside ASCII are therefore DROPPED, as in the
// reference: Russian, Chinese or Arabic text has no tokens and scores 0, and "café" is "caf".
[[nodiscard]] std::vector<std::string> rouge_tokenize(std::string_view text);

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double fmeasure = 0.0;
};

// rouge_scorer.RougeScorer(['rougeL']).score(target=reference, prediction=hypothesis): longest
// common subsequence of tokens; all zero when either side has no tokens.
[[nodiscard]] RougeScore rouge_l(std::string_view hypothesis, std::string_view reference);

// Corpus ROUGE-L: the plain MEAN over sentences of the per-sentence F-measure. rouge-score itself
// scores pairs only (its BootstrapAggregator reports resampled percentiles instead); the fixtures
// compute this mean in Python from its per-pair scores. With several references a sentence takes
// its best F-measure (RougeScorer.score_multi).
[[nodiscard]] double corpus_rouge_l(std::span<const std::string> hyps, ReferenceStreams refs);

// ---- exact match ------------------------------------------------------------------------------
// SQuAD's normalize_answer: Python's lower(), ASCII punctuation removed, whole words "a", "an",
// "the" removed (word = run of Python `\w` characters), whitespace collapsed to single spaces.
[[nodiscard]] std::string squad_normalize(std::string_view text);

// Equal after Python's strip() (normalize = false) or after squad_normalize (normalize = true).
[[nodiscard]] bool exact_match(std::string_view hypothesis, std::string_view reference,
                               bool normalize);

// The fraction of hypotheses that exactly match at least one of their references.
[[nodiscard]] double corpus_exact_match(std::span<const std::string> hyps, ReferenceStreams refs,
                                        bool normalize);

// ---- all of them ------------------------------------------------------------------------------
struct CorpusMetrics {
  std::int64_t sentences = 0;
  BleuResult bleu;
  ChrfResult chrf;     // ChrfOptions{} (chrF2)
  ChrfResult chrf_pp;  // word_order = 2 (chrF2++)
  double rouge_l = 0.0;
  double exact_match = 0.0;        // after strip()
  double exact_match_squad = 0.0;  // after squad_normalize()
};

[[nodiscard]] CorpusMetrics compute_metrics(std::span<const std::string> hyps, ReferenceStreams refs);

// One line of JSON: {"bleu":..,"chrf":..,"chrf_pp":..,"rouge_l":..,"exact_match":..,
// "exact_match_squad":..,"sentences":N,"bleu_signature":"..","chrf_signature":"..",
// "chrf_pp_signature":".."}; numbers round-trip.
[[nodiscard]] std::string metrics_json(const CorpusMetrics& m);

// The lines of a text file as sacreBLEU's command line reads them: split at "\n" only (a final
// newline ends the last line rather than starting an empty one), each line right-stripped of
// whitespace (Python's rstrip(), which also removes a "\r"). UserError `path: reason` when the
// file cannot be read, `path:line: invalid UTF-8` for bad bytes.
[[nodiscard]] std::vector<std::string> read_sentences(const std::string& path);

}  // namespace tailor::eval
