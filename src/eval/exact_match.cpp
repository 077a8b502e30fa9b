// Exact match for short answers (metrics.h has the contract): strict after Python's strip(), or
// after the SQuAD v1.1 evaluation script's normalize_answer.
#include <algorithm>

#include "eval/metrics.h"
#include "eval/metrics_corpus.h"
#include "eval/python_text.h"

namespace tailor::eval {
namespace {

// Python's string.punctuation.
bool is_ascii_punct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

bool is_article(std::u32string_view word) {
  return word == U"a" || word == U"an" || word == U"the";
}

// re.sub(r'\b(a|an|the)\b', ' ', text): a match needs word boundaries on both sides, so it is
// exactly a maximal run of \w characters that spells an article.
std::u32string replace_articles(std::u32string_view text) {
  std::u32string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!py::is_word_char(text[i])) {
      out += text[i++];
      continue;
    }
    const std::size_t start = i;
    while (i < text.size() && py::is_word_char(text[i])) ++i;
    const std::u32string_view word = text.substr(start, i - start);
    if (is_article(word)) {
      out += U' ';
    } else {
      out += word;
    }
  }
  return out;
}

}  // namespace

std::string squad_normalize(std::string_view text) {
  std::u32string s = py::lower(py::decode(py::valid_utf8(text)));
  std::erase_if(s, is_ascii_punct);
  const std::string spaced = py::encode(replace_articles(s));
  std::string out;
  for (const std::string_view w : py::split(spaced)) {
    if (!out.empty()) out += ' ';
    out.append(w);
  }
  return out;
}

bool exact_match(std::string_view hypothesis, std::string_view reference, bool normalize) {
  if (normalize) return squad_normalize(hypothesis) == squad_normalize(reference);
  const std::string h = py::valid_utf8(hypothesis), r = py::valid_utf8(reference);
  return py::strip(h) == py::strip(r);
}

double corpus_exact_match(std::span<const std::string> hyps, ReferenceStreams refs, bool normalize) {
  const detail::Corpus corpus = detail::make_corpus(hyps, refs);
  if (corpus.hyps.empty()) return 0.0;
  std::size_t matches = 0;
  for (std::size_t i = 0; i < corpus.hyps.size(); ++i) {
    const auto& rs = corpus.refs[i];
    if (std::any_of(rs.begin(), rs.end(), [&](const std::string& r) {
          return exact_match(corpus.hyps[i], r, normalize);
        }))
      ++matches;
  }
  return static_cast<double>(matches) / static_cast<double>(corpus.hyps.size());
}

}  // namespace tailor::eval
