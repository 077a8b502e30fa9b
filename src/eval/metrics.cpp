// The shared input checks of the corpus metrics, all metrics at once, their JSON record, and
// sentence files as sacreBLEU's command line reads them (metrics.h has the contracts).
#include "eval/metrics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/unicode.h"
#include "eval/metrics_corpus.h"
#include "eval/python_text.h"

namespace tailor::eval {

namespace detail {

Corpus make_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs) {
  TAILOR_CHECK_USER(!refs.empty(), "references", "at least one reference stream is needed");
  for (std::size_t r = 0; r < refs.size(); ++r)
    TAILOR_CHECK_USER(refs[r].size() == hyps.size(), fmt::format("references {}", r + 1),
                      "{} sentences, but there are {} hypotheses", refs[r].size(), hyps.size());
  Corpus c;
  c.num_refs = refs.size();
  c.hyps.reserve(hyps.size());
  c.refs.resize(hyps.size());
  for (std::size_t i = 0; i < hyps.size(); ++i) {
    c.hyps.push_back(py::valid_utf8(hyps[i]));
    c.refs[i].reserve(refs.size());
    for (const auto& stream : refs) c.refs[i].push_back(py::valid_utf8(stream[i]));
  }
  return c;
}

}  // namespace detail

CorpusMetrics compute_metrics(std::span<const std::string> hyps, ReferenceStreams refs) {
  CorpusMetrics m;
  m.sentences = static_cast<std::int64_t>(hyps.size());
  m.bleu = corpus_bleu(hyps, refs);
  m.chrf = corpus_chrf(hyps, refs);
  ChrfOptions pp;
  pp.word_order = 2;
  m.chrf_pp = corpus_chrf(hyps, refs, pp);
  m.rouge_l = corpus_rouge_l(hyps, refs);
  m.exact_match = corpus_exact_match(hyps, refs, /*normalize=*/false);
  m.exact_match_squad = corpus_exact_match(hyps, refs, /*normalize=*/true);
  return m;
}

std::string metrics_json(const CorpusMetrics& m) {
  nlohmann::ordered_json j;
  j["bleu"] = m.bleu.score;
  j["chrf"] = m.chrf.score;
  j["chrf_pp"] = m.chrf_pp.score;
  j["rouge_l"] = m.rouge_l;
  j["exact_match"] = m.exact_match;
  j["exact_match_squad"] = m.exact_match_squad;
  j["sentences"] = m.sentences;
  j["bleu_signature"] = m.bleu.signature;
  j["chrf_signature"] = m.chrf.signature;
  j["chrf_pp_signature"] = m.chrf_pp.signature;
  return j.dump();
}

std::vector<std::string> read_sentences(const std::string& path) {
  std::error_code ec;
  TAILOR_CHECK_USER(!std::filesystem::is_directory(path, ec), path, "is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_user_error(path, "cannot read: {}", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  TAILOR_CHECK_USER(!in.bad(), path, "read failed");
  const std::string text = std::move(buffer).str();

  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = std::string_view(text).substr(start, end - start);
    if (const auto bad = data::unicode::find_invalid_utf8(line))
      throw_user_error(fmt::format("{}:{}", path, lines.size() + 1),
                       "invalid UTF-8 (byte 0x{:02x} at column {})",
                       static_cast<unsigned>(static_cast<unsigned char>(line[*bad])), *bad + 1);
    lines.emplace_back(py::rstrip(line));
    start = end + 1;
  }
  return lines;
}

}  // namespace tailor::eval
