#include "data/text_dataset.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tailor::data {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n;
  std::uint32_t cp;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) { n = 2; cp = b0 & 0x1Fu; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; cp = b0 & 0x0Fu; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; cp = b0 & 0x07u; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  static constexpr std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void check_text(const std::string& text, const std::string& name) {
  std::int64_t line = 1;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\0') throw_user_error(fmt::format("{}:{}", name, line), "NUL byte in text");
    const std::size_t n = utf8_length(text, i);
    if (n == 0)
      throw_user_error(fmt::format("{}:{}", name, line), "invalid UTF-8 (byte 0x{:02x} at offset {})",
                       static_cast<unsigned>(static_cast<unsigned char>(text[i])), i);
    if (text[i] == '\n') ++line;
    i += n;
  }
}

bool is_blank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

TokenizedCorpus tokenize_text(const std::string& text, const std::string& name, TextSplit split,
                              const Tokenizer& tokenizer) {
  check_text(text, name);
  std::vector<std::string> docs;
  if (split == TextSplit::kNone) {
    if (!text.empty()) docs.push_back(text);
  } else {
    std::string current;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (split == TextSplit::kLine) {
        if (!is_blank(line)) docs.push_back(line);
        continue;
      }
      if (is_blank(line)) {
        if (!current.empty()) docs.push_back(std::move(current));
        current.clear();
      } else {
        current += line;
        current += '\n';
      }
    }
    if (!current.empty()) docs.push_back(std::move(current));
  }
  bool any_text = false;
  for (const auto& d : docs) any_text = any_text || !is_blank(d);
  TAILOR_CHECK_USER(any_text, name + ":1", "no text to train on (the file is empty or blank)");

  const std::optional<std::int32_t> eos = tokenizer.eos_token_id();
  TAILOR_CHECK_USER(eos.has_value(), name, "the tokenizer has no end-of-sequence token to close documents with");
  const std::optional<std::int32_t> bos = tokenizer.bos_token_id();
  TokenizedCorpus corpus;
  corpus.tokens.reserve(text.size() + docs.size());
  for (const auto& d : docs) {
    corpus.doc_start.push_back(static_cast<std::int64_t>(corpus.tokens.size()));
    if (bos) corpus.tokens.push_back(*bos);  // as the model's own tokenizer would open it
    const auto ids = tokenizer.encode(d);
    corpus.tokens.insert(corpus.tokens.end(), ids.begin(), ids.end());
    corpus.tokens.push_back(*eos);
  }
  corpus.doc_start.push_back(static_cast<std::int64_t>(corpus.tokens.size()));
  corpus.loss.assign(corpus.tokens.size(), 1);
  return corpus;
}

TokenizedCorpus load_text_corpus(const std::string& path, TextSplit split,
                                 const Tokenizer& tokenizer) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_user_error(path, "cannot read: {}", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw_user_error(path, "read failed: {}", std::strerror(errno));
  return tokenize_text(ss.str(), path, split, tokenizer);
}

}  // namespace tailor::data
