// Python str semantics on UTF-8 (python_text.h has the contracts); data from python_case_table.inc.
#include "eval/python_text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "data/unicode.h"

namespace tailor::eval::py {
namespace {

struct CaseMapping {
  char32_t from;
  char32_t to;
};

struct CodePointRange {
  char32_t first;
  char32_t last;
};

#include "eval/python_case_table.inc"

template <std::size_t N>
bool in_ranges(const CodePointRange (&table)[N], char32_t cp) noexcept {
  const auto* it = std::upper_bound(std::begin(table), std::end(table), cp,
                                    [](char32_t c, const CodePointRange& r) { return c < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

bool is_case_ignorable(char32_t cp) noexcept { return in_ranges(kPyCaseIgnorable, cp); }
bool is_cased(char32_t cp) noexcept { return in_ranges(kPyCased, cp); }

// One code point's single-code-point lowercase (U+0130 and sigma are handled by lower()).
char32_t lower_one(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
  const auto* it = std::lower_bound(std::begin(kPyLowerMap), std::end(kPyLowerMap), cp,
                                    [](const CaseMapping& m, char32_t c) { return m.from < c; });
  return (it != std::end(kPyLowerMap) && it->from == cp) ? it->to : cp;
}

// CPython's handle_capital_sigma: final when, skipping case-ignorable code points, a cased one
// comes before position i and none comes after it.
bool is_final_sigma(std::u32string_view s, std::size_t i) noexcept {
  std::size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return false;
  std::size_t k = i + 1;
  while (k < s.size() && is_case_ignorable(s[k])) ++k;
  return k == s.size() || !is_cased(s[k]);
}

}  // namespace

std::string_view unicode_version() noexcept { return kPyUnicodeVersion; }

bool is_space(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_word_char(char32_t cp) noexcept { return in_ranges(kPyWordChar, cp); }

std::string valid_utf8(std::string_view text) {
  if (!data::unicode::find_invalid_utf8(text)) return std::string(text);
  return data::unicode::utf8_lossy(text);
}

std::size_t length(std::string_view text) noexcept {
  // Every code point has exactly one byte that is not a continuation byte (10xxxxxx).
  return static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t pos = 0, start = 0;
  bool in_word = false;
  while (pos < text.size()) {
    const std::size_t at = pos;
    const char32_t cp = data::unicode::next_code_point(text, pos);
    if (is_space(cp)) {
      if (in_word) out.push_back(text.substr(start, at - start));
      in_word = false;
    } else if (!in_word) {
      start = at;
      in_word = true;
    }
  }
  if (in_word) out.push_back(text.substr(start));
  return out;
}

std::string_view rstrip(std::string_view text) noexcept {
  std::size_t end = 0, pos = 0;  // end: just past the last non-space code point
  while (pos < text.size()) {
    if (!is_space(data::unicode::next_code_point(text, pos))) end = pos;
  }
  return text.substr(0, end);
}

std::string_view strip(std::string_view text) noexcept {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t next = pos;
    if (!is_space(data::unicode::next_code_point(text, next))) break;
    pos = next;
  }
  return rstrip(text.substr(pos));
}

std::u32string lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (cp == 0x3A3) {
      out.push_back(is_final_sigma(text, i) ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(lower_one(cp));
    }
  }
  return out;
}

std::string lower(std::string_view text) {
  const bool ascii = std::all_of(text.begin(), text.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!ascii) return encode(lower(decode(text)));
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  return out;
}

std::u32string decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) out.push_back(data::unicode::next_code_point(text, pos));
  return out;
}

std::string encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t cp : text) data::unicode::append_utf8(out, cp);
  return out;
}

}  // namespace tailor::eval::py
