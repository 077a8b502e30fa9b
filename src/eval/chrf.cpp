// chrF and chrF++ as sacreBLEU 2.x computes them (metrics.h has the contract). Written from
// sacreBLEU's documented algorithm (Popović 2015/2017 with its choices for whitespace, smoothing
// and punctuation) and checked against its output.
//
// Statistics: for each order (character orders 1..nc, then word orders 1..nw) three integers
// [hypothesis n-grams, reference n-grams, matched n-grams]; summed over the corpus; scored once.
#include <algorithm>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/metrics_corpus.h"
#include "eval/python_text.h"

namespace tailor::eval {
namespace {

using Stats = std::vector<std::int64_t>;  // [3 * (char_order + word_order)]

// Counts of one order's n-grams. Character n-grams are views into the sentence's code points; word
// n-grams are their words joined by one space (words hold no whitespace, so the key is unique).
template <typename Key>
using Counter = std::unordered_map<Key, std::int64_t>;

// Built in place and never copied or moved: the character n-gram keys are views into `chars`,
// which a move of a short (in-place) string would leave dangling.
struct SentenceNgrams {
  SentenceNgrams(std::string_view sentence, const ChrfOptions& o);
  SentenceNgrams(const SentenceNgrams&) = delete;
  SentenceNgrams& operator=(const SentenceNgrams&) = delete;

  std::u32string chars;  // the sentence without whitespace
  std::vector<Counter<std::u32string_view>> char_ngrams;  // [char_order]
  std::vector<Counter<std::string>> word_ngrams;          // [word_order]
};

// ASCII punctuation, Python's string.punctuation.
bool is_ascii_punct(char c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

// Whitespace-split words with one trailing (else one leading) ASCII punctuation mark split off;
// words of one code point stay whole.
std::vector<std::string_view> split_punctuation(std::string_view sentence) {
  std::vector<std::string_view> out;
  for (const std::string_view w : py::split(sentence)) {
    if (py::length(w) == 1) {
      out.push_back(w);
    } else if (is_ascii_punct(w.back())) {
      out.push_back(w.substr(0, w.size() - 1));
      out.push_back(w.substr(w.size() - 1));
    } else if (is_ascii_punct(w.front())) {
      out.push_back(w.substr(0, 1));
      out.push_back(w.substr(1));
    } else {
      out.push_back(w);
    }
  }
  return out;
}

Counter<std::string> word_ngrams_of(const std::vector<std::string_view>& words, int n) {
  Counter<std::string> counts;
  for (std::size_t i = 0; i + n <= words.size(); ++i) {
    std::string key(words[i]);
    for (std::size_t k = i + 1; k < i + n; ++k) {
      key += ' ';
      key.append(words[k]);
    }
    ++counts[key];
  }
  return counts;
}

SentenceNgrams::SentenceNgrams(std::string_view sentence, const ChrfOptions& o) {
  for (const std::string_view w : py::split(sentence)) chars += py::decode(w);
  const std::u32string_view text = chars;
  for (int n = 1; n <= o.char_order; ++n) {
    Counter<std::u32string_view>& counts = char_ngrams.emplace_back();
    for (std::size_t i = 0; i + n <= text.size(); ++i) ++counts[text.substr(i, n)];
  }
  if (o.word_order > 0) {
    const std::vector<std::string_view> words = split_punctuation(sentence);
    for (int n = 1; n <= o.word_order; ++n) word_ngrams.push_back(word_ngrams_of(words, n));
  }
}

// [hypothesis count (0 when the reference has no n-gram of this order), reference count, matches]
template <typename Key>
void append_match_stats(const Counter<Key>& hyp, const Counter<Key>& ref, Stats& out) {
  std::int64_t hyp_count = 0, ref_count = 0, matches = 0;
  for (const auto& [ngram, count] : hyp) {
    hyp_count += count;
    const auto it = ref.find(ngram);
    if (it != ref.end()) matches += std::min(count, it->second);
  }
  for (const auto& [ngram, count] : ref) ref_count += count;
  out.push_back(ref.empty() ? 0 : hyp_count);
  out.push_back(ref_count);
  out.push_back(matches);
}

Stats match_stats(const SentenceNgrams& hyp, const SentenceNgrams& ref) {
  Stats stats;
  for (std::size_t i = 0; i < hyp.char_ngrams.size(); ++i)
    append_match_stats(hyp.char_ngrams[i], ref.char_ngrams[i], stats);
  for (std::size_t i = 0; i < hyp.word_ngrams.size(); ++i)
    append_match_stats(hyp.word_ngrams[i], ref.word_ngrams[i], stats);
  return stats;
}

// sacreBLEU's _compute_f_score, in its order of floating-point operations.
double f_score(const Stats& stats, const ChrfOptions& o) {
  constexpr double kEps = 1e-16;
  const double factor = static_cast<double>(o.beta) * o.beta;
  const std::size_t orders = stats.size() / 3;
  double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (std::size_t i = 0; i < orders; ++i) {
    const std::int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? static_cast<double>(n_match) / static_cast<double>(n_hyp) : kEps;
    const double rec = n_ref > 0 ? static_cast<double>(n_match) / static_cast<double>(n_ref) : kEps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : kEps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (o.eps_smoothing) return 100 * score / static_cast<double>(orders);
  if (effective_order == 0) return 0.0;
  avg_prec /= effective_order;
  avg_rec /= effective_order;
  if (avg_prec + avg_rec == 0.0) return 0.0;
  double f = (1 + factor) * avg_prec * avg_rec;
  f /= factor * avg_prec + avg_rec;
  return 100 * f;
}

// The statistics against the reference whose sentence-level score is highest (first on a tie).
Stats best_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                          const ChrfOptions& o) {
  const SentenceNgrams h(hyp, o);
  Stats best;
  double best_f = -1.0;
  for (const std::string& r : refs) {
    Stats stats = match_stats(h, SentenceNgrams(r, o));
    const double f = f_score(stats, o);
    if (f > best_f) {
      best_f = f;
      best = std::move(stats);
    }
  }
  return best;
}

}  // namespace

ChrfResult corpus_chrf(std::span<const std::string> hyps, ReferenceStreams refs,
                       const ChrfOptions& options) {
  TAILOR_CHECK_USER(options.char_order >= 1 && options.word_order >= 0 && options.beta >= 1,
                    "chrF", "needs char_order >= 1, word_order >= 0 and beta >= 1 (got {}, {}, {})",
                    options.char_order, options.word_order, options.beta);
  const detail::Corpus corpus = detail::make_corpus(hyps, refs);
  Stats total(3 * static_cast<std::size_t>(options.char_order + options.word_order), 0);
  for (std::size_t i = 0; i < corpus.hyps.size(); ++i) {
    const Stats s = best_sentence_stats(corpus.hyps[i], corpus.refs[i], options);
    for (std::size_t k = 0; k < total.size(); ++k) total[k] += s[k];
  }
  ChrfResult r;
  r.score = f_score(total, options);
  r.signature = fmt::format("nrefs:{}|case:mixed|eff:{}|nc:{}|nw:{}|space:no|version:{}",
                            corpus.num_refs, options.eps_smoothing ? "no" : "yes",
                            options.char_order, options.word_order, kSacrebleuVersion);
  return r;
}

}  // namespace tailor::eval
