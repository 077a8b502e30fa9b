// Corpus BLEU as sacreBLEU 2.x computes it with its defaults (metrics.h has the contract). Written
// from sacreBLEU's documented algorithm and checked against its output, not translated from it.
//
// The 13a tokenizer's four substitution rules are regular expressions over code points in the
// reference; here they are scans over bytes. That gives the same result because every character the
// rules look at (ASCII punctuation, digits) is one byte in UTF-8 and no byte of a multi-byte
// character is ASCII: "a character that is not a digit" holds for a whole multi-byte character
// exactly when it holds for each of its bytes, and the scans copy such bytes unchanged.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "eval/metrics.h"
#include "eval/metrics_corpus.h"
#include "eval/python_text.h"

namespace tailor::eval {
namespace {

constexpr int kMaxOrder = 4;
// sacreBLEU's floor for log(0): an order with precision 0 drives the score to exp(-2.5e9) = 0.
constexpr double kLogZero = -9999999999.0;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Rule 1's class: ASCII punctuation and symbols except ' , - . (and the space itself).
bool is_spaced_symbol(char c) {
  return (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) || c == '/' ||
         (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// Python's str.replace(from, to): every non-overlapping occurrence, left to right, one pass.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// The language-independent part: markup of the WMT test sets and the four XML entities.
std::string unescape_13a(std::string_view line) {
  std::string s = replace_all(line, "<skipped>", "");
  s = replace_all(s, "-\n", "");
  s = replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");
  }
  return s;
}

// Rule 1: " c " around every symbol of is_spaced_symbol.
std::string space_symbols(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (const char c : s) {
    if (is_spaced_symbol(c)) {
      out += ' ';
      out += c;
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// Rules 2-4 share one shape: scan left to right; where `matches(a, b)` holds for the pair (a, b)
// at i, emit `emit(a, b)` and resume after b (regex substitution without overlap).
template <typename Match, typename Emit>
std::string substitute_pairs(std::string_view s, Match matches, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  std::size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && matches(s[i], s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

bool is_period_or_comma(char c) { return c == '.' || c == ','; }

std::string tokenize_western(std::string_view line) {
  std::string s = space_symbols(line);
  // Rule 2: ([^0-9])([.,]) -> "\1 \2 "
  s = substitute_pairs(
      s, [](char a, char b) { return !is_digit(a) && is_period_or_comma(b); },
      [](std::string& out, char a, char b) { out += a; out += ' '; out += b; out += ' '; });
  // Rule 3: ([.,])([^0-9]) -> " \1 \2"
  s = substitute_pairs(
      s, [](char a, char b) { return is_period_or_comma(a) && !is_digit(b); },
      [](std::string& out, char a, char b) { out += ' '; out += a; out += ' '; out += b; });
  // Rule 4: ([0-9])(-) -> "\1 \2 "
  s = substitute_pairs(
      s, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& out, char a, char b) { out += a; out += ' '; out += b; out += ' '; });
  return s;
}

std::string join_words(std::string_view s) {
  std::string out;
  for (const std::string_view w : py::split(s)) {
    if (!out.empty()) out += ' ';
    out.append(w);
  }
  return out;
}

// ---- n-gram statistics ----------------------------------------------------------------------

// Keys are views into a tokenized sentence: an n-gram is the substring from its first token's
// start to its last token's end (tokens are joined by single spaces). The text must outlive the
// counts and stay where it is.
using NgramCounts = std::unordered_map<std::string_view, std::int64_t>;

NgramCounts count_ngrams(const std::vector<std::string_view>& tokens) {
  NgramCounts counts;
  for (std::size_t n = 1; n <= static_cast<std::size_t>(kMaxOrder); ++n) {
    for (std::size_t i = 0; i + n <= tokens.size(); ++i) {
      const char* begin = tokens[i].data();
      const char* end = tokens[i + n - 1].data() + tokens[i + n - 1].size();
      ++counts[std::string_view(begin, static_cast<std::size_t>(end - begin))];
    }
  }
  return counts;
}

std::string tokenize_sentence(std::string_view sentence) { return tokenize_13a(py::rstrip(sentence)); }

int order_of(std::string_view ngram) {
  return 1 + static_cast<int>(std::count(ngram.begin(), ngram.end(), ' '));
}

// The reference length closest to the hypothesis length; the shorter one on a tie.
std::int64_t closest_ref_len(std::int64_t hyp_len, const std::vector<std::int64_t>& ref_lens) {
  std::int64_t best_diff = -1, best_len = -1;
  for (const std::int64_t len : ref_lens) {
    const std::int64_t diff = std::llabs(hyp_len - len);
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      best_len = len;
    } else if (diff == best_diff && len < best_len) {
      best_len = len;
    }
  }
  return best_len;
}

struct SentenceStats {
  std::int64_t sys_len = 0, ref_len = 0;
  std::array<std::int64_t, kMaxOrder> correct{}, total{};
};

SentenceStats sentence_stats(const std::string& hyp, const std::vector<std::string>& refs) {
  std::vector<std::string> ref_texts;
  for (const std::string& r : refs) ref_texts.push_back(tokenize_sentence(r));
  // ref_texts no longer changes from here on, so views into it stay valid.
  NgramCounts ref_max;
  std::vector<std::int64_t> ref_lens;
  for (const std::string& text : ref_texts) {
    const std::vector<std::string_view> tokens = py::split(text);
    ref_lens.push_back(static_cast<std::int64_t>(tokens.size()));
    for (const auto& [ngram, count] : count_ngrams(tokens))
      ref_max[ngram] = std::max(ref_max[ngram], count);
  }
  const std::string hyp_text = tokenize_sentence(hyp);
  const std::vector<std::string_view> hyp_tokens = py::split(hyp_text);
  SentenceStats s;
  s.sys_len = static_cast<std::int64_t>(hyp_tokens.size());
  s.ref_len = closest_ref_len(s.sys_len, ref_lens);
  for (const auto& [ngram, count] : count_ngrams(hyp_tokens)) {
    const int n = order_of(ngram) - 1;
    s.total[n] += count;
    const auto it = ref_max.find(ngram);
    if (it != ref_max.end()) s.correct[n] += std::min(count, it->second);
  }
  return s;
}

double floored_log(double x) { return x == 0.0 ? kLogZero : std::log(x); }

// sacreBLEU's compute_bleu with smooth_method="exp", effective_order=False.
void score_from_stats(BleuResult& r) {
  r.ratio = r.ref_len ? static_cast<double>(r.sys_len) / static_cast<double>(r.ref_len) : 0.0;
  r.bp = 1.0;
  if (r.sys_len < r.ref_len)
    r.bp = r.sys_len > 0 ? std::exp(1.0 - static_cast<double>(r.ref_len) / static_cast<double>(r.sys_len))
                         : 0.0;
  r.precisions.fill(0.0);
  r.score = 0.0;
  if (std::all_of(r.counts.begin(), r.counts.end(), [](std::int64_t c) { return c == 0; })) return;
  double smooth = 1.0;
  for (int n = 0; n < kMaxOrder; ++n) {
    if (r.totals[n] == 0) break;  // this and higher orders keep precision 0
    if (r.counts[n] == 0) {
      smooth *= 2.0;
      r.precisions[n] = 100.0 / (smooth * static_cast<double>(r.totals[n]));
    } else {
      r.precisions[n] = 100.0 * static_cast<double>(r.counts[n]) / static_cast<double>(r.totals[n]);
    }
  }
  double log_sum = 0.0;  // left to right, as Python's sum() of a list
  for (const double p : r.precisions) log_sum += floored_log(p);
  r.score = r.bp * std::exp(log_sum / kMaxOrder);
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
  const std::string valid = py::valid_utf8(line);
  const std::string text = unescape_13a(valid);
  return join_words(tokenize_western(" " + text + " "));
}

BleuResult corpus_bleu(std::span<const std::string> hyps, ReferenceStreams refs) {
  const detail::Corpus corpus = detail::make_corpus(hyps, refs);
  BleuResult r;
  for (std::size_t i = 0; i < corpus.hyps.size(); ++i) {
    const SentenceStats s = sentence_stats(corpus.hyps[i], corpus.refs[i]);
    r.sys_len += s.sys_len;
    r.ref_len += s.ref_len;
    for (int n = 0; n < kMaxOrder; ++n) {
      r.counts[n] += s.correct[n];
      r.totals[n] += s.total[n];
    }
  }
  score_from_stats(r);
  r.signature = fmt::format("nrefs:{}|case:mixed|eff:no|tok:13a|smooth:exp|version:{}",
                            corpus.num_refs, kSacrebleuVersion);
  return r;
}

}  // namespace tailor::eval
