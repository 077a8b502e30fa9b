// Plain-text datasets: a UTF-8 file split into documents (whole file, paragraphs separated by
// blank lines, or non-empty lines), each tokenized and closed with EOS.
//
// Bad input is reported as `file:line: reason` (UserError): unreadable files, invalid UTF-8 (the
// line of the first bad byte), NUL bytes, a file with no text.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace tailor::data {

enum class TextSplit { kNone, kParagraph, kLine };

// Token stream of concatenated documents; doc_start[i] is the index of document i's first token
// (a final sentinel equals tokens.size()). loss[i] is 1 when predicting token i is trained on and
// 0 for prompt tokens (templates, system prompts, few-shot examples); text documents are all 1.
// An empty `loss` means all 1.
struct TokenizedCorpus {
  std::vector<std::int32_t> tokens;
  std::vector<std::uint8_t> loss;
  std::vector<std::int64_t> doc_start;
  std::int64_t num_documents() const noexcept {
    return static_cast<std::int64_t>(doc_start.size()) - 1;
  }
};

// The same data, read-only and not owned: a TokenizedCorpus, or the memory-mapped files of the
// tokenized cache (token_cache.h). Whoever made the view keeps the data alive.
struct CorpusView {
  std::span<const std::int32_t> tokens;
  std::span<const std::uint8_t> loss;       // empty: all 1
  std::span<const std::int64_t> doc_start;  // with the final sentinel

  CorpusView() = default;
  CorpusView(std::span<const std::int32_t> t, std::span<const std::uint8_t> l,
             std::span<const std::int64_t> d)
      : tokens(t), loss(l), doc_start(d) {}
  CorpusView(const TokenizedCorpus& c)  // NOLINT(google-explicit-constructor): a view of it
      : tokens(c.tokens), loss(c.loss), doc_start(c.doc_start) {}
  CorpusView(TokenizedCorpus&&) = delete;  // would dangle

  [[nodiscard]] std::int64_t num_documents() const noexcept {
    return static_cast<std::int64_t>(doc_start.size()) - 1;
  }
};

[[nodiscard]] TokenizedCorpus load_text_corpus(const std::string& path, TextSplit split,
                                               const Tokenizer& tokenizer);

// Splits and tokenizes text already in memory (`name` stands for the file in messages).
[[nodiscard]] TokenizedCorpus tokenize_text(const std::string& text, const std::string& name,
                                            TextSplit split, const Tokenizer& tokenizer);

}  // namespace tailor::data
