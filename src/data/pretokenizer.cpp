// Hand-written matchers for the GPT-2 / Llama-3 / Qwen2 split regexes (see pretokenizer.h).
//
// Each matcher follows the regex's alternatives in order, as a leftmost-first backtracking engine
// tries them, and returns the end of the first alternative that matches at position i. Where the
// regex backtracks (\s+(?!\S), \s*[\r\n]+) the result is computed directly: the comments give the
// reasoning. Characters are classified once per call into letter / number / space / other.
#include "data/pretokenizer.h"

#include <array>

#include "core/error.h"
#include "data/unicode.h"

namespace tailor::data {
namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum class CharClass : std::uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass classify(char32_t c) noexcept {
  if (unicode::is_letter(c)) return CharClass::kLetter;
  if (unicode::is_number(c)) return CharClass::kNumber;
  if (unicode::is_whitespace(c)) return CharClass::kSpace;
  return CharClass::kOther;
}

// The decoded text: code points, their classes, and byte offsets (offsets[n] == text.size()).
struct Decoded {
  std::vector<char32_t> cps;
  std::vector<CharClass> cls;
  std::vector<std::size_t> offsets;
  mutable std::uint64_t examined = 0;  // code points the scans below looked at

  explicit Decoded(std::string_view text) {
    cps.reserve(text.size());
    cls.reserve(text.size());
    offsets.reserve(text.size() + 1);
    std::size_t pos = 0;
    while (pos < text.size()) {
      offsets.push_back(pos);
      const char32_t c = unicode::next_code_point(text, pos);
      cps.push_back(c);
      cls.push_back(classify(c));
    }
    offsets.push_back(text.size());
  }
  [[nodiscard]] std::size_t size() const noexcept { return cps.size(); }
  [[nodiscard]] bool is(std::size_t i, CharClass c) const noexcept {
    return i < cps.size() && cls[i] == c;
  }
  // End of the run of class c starting at i.
  [[nodiscard]] std::size_t run_end(std::size_t i, CharClass c) const noexcept {
    return run_end(i, c, cps.size());
  }
  // The same, looking at most `most` code points ahead.
  [[nodiscard]] std::size_t run_end(std::size_t i, CharClass c, std::size_t most) const noexcept {
    const std::size_t stop = most < cps.size() - i ? i + most : cps.size();
    const std::size_t start = i;
    while (i < stop && cls[i] == c) ++i;
    examined += i - start + 1;
    return i;
  }
};

bool is_newline(char32_t c) noexcept { return c == U'\r' || c == U'\n'; }

// Does code point c match the pattern letter `lower` (ASCII lowercase)? With ignore_case, as
// Oniguruma's Unicode case folding does: the uppercase letter, and U+017F LATIN SMALL LETTER LONG S
// (which folds to 's').
bool letter_matches(char32_t c, char lower, bool ignore_case) noexcept {
  if (c == static_cast<char32_t>(lower)) return true;
  if (!ignore_case) return false;
  if (c == static_cast<char32_t>(lower - 'a' + 'A')) return true;
  return lower == 's' && c == 0x017F;
}

// 's|'t|'re|'ve|'m|'ll|'d at i (text[i] == '\''); returns the end or 0.
std::size_t match_contraction(const Decoded& t, std::size_t i, bool ignore_case) noexcept {
  static constexpr std::array<std::string_view, 7> kSuffixes = {"s", "t",  "re", "ve",
                                                                "m", "ll", "d"};
  for (std::string_view suffix : kSuffixes) {
    std::size_t j = i + 1;
    bool ok = true;
    for (char ch : suffix) {
      if (j >= t.size() || !letter_matches(t.cps[j], ch, ignore_case)) {
        ok = false;
        break;
      }
      ++j;
    }
    if (ok) return j;
  }
  return 0;
}

// \s+(?!\S)|\s+ at i (text[i] is a space). Greedy \s+ runs to k, the end of the space run; there
// the lookahead holds only at the end of the text. Backtracking one character leaves a space next,
// so the lookahead holds at k-1 if that still leaves one character matched; otherwise \s+ takes the
// run.
std::size_t match_trailing_space(const Decoded& t, std::size_t i) noexcept {
  const std::size_t k = t.run_end(i, CharClass::kSpace);
  if (k == t.size()) return k;
  if (k - i >= 2) return k - 1;
  return k;
}

std::size_t match_gpt2(const Decoded& t, std::size_t i) noexcept {
  const char32_t c = t.cps[i];
  if (c == U'\'') {
    if (const std::size_t e = match_contraction(t, i, /*ignore_case=*/false)) return e;
  }
  //  ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+
  for (CharClass cls : {CharClass::kLetter, CharClass::kNumber, CharClass::kOther}) {
    if (c == U' ' && t.is(i + 1, cls)) return t.run_end(i + 1, cls);
    if (t.cls[i] == cls) return t.run_end(i, cls);
  }
  return match_trailing_space(t, i);
}

std::size_t match_llama3(const Decoded& t, std::size_t i, std::size_t max_digits) noexcept {
  const char32_t c = t.cps[i];
  const CharClass cls = t.cls[i];
  if (c == U'\'') {
    if (const std::size_t e = match_contraction(t, i, /*ignore_case=*/true)) return e;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional class takes text[i] when it can; if no letter follows,
  // backtracking to the empty option needs text[i] itself to be a letter, which it is not.
  if (cls == CharClass::kLetter) return t.run_end(i, CharClass::kLetter);
  if (cls != CharClass::kNumber && !is_newline(c) && t.is(i + 1, CharClass::kLetter))
    return t.run_end(i + 1, CharClass::kLetter);
  // \p{N}{1,3} (Llama-3) or \p{N} (Qwen2): look no further than the digits taken (scanning the
  // whole run each time made a long run of digits quadratic).
  if (cls == CharClass::kNumber) return t.run_end(i, CharClass::kNumber, max_digits);
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  std::size_t other_start = 0;
  bool has_other = false;
  if (c == U' ' && t.is(i + 1, CharClass::kOther)) {
    other_start = i + 1;
    has_other = true;
  } else if (cls == CharClass::kOther) {
    other_start = i;
    has_other = true;
  }
  if (has_other) {
    std::size_t e = t.run_end(other_start, CharClass::kOther);
    while (e < t.size() && is_newline(t.cps[e])) ++e;
    return e;
  }
  // \s*[\r\n]+ : \s* gives back characters until [\r\n]+ can start, i.e. at the last \r or \n of
  // the space run; [\r\n]+ then ends right after it (what follows it in the run is not \r or \n).
  const std::size_t k = t.run_end(i, CharClass::kSpace);
  for (std::size_t p = k; p > i; --p) {
    ++t.examined;
    if (is_newline(t.cps[p - 1])) return p;
  }
  return match_trailing_space(t, i);
}

}  // namespace

std::string_view split_pattern_regex(SplitPattern p) noexcept {
  switch (p) {
    case SplitPattern::kGpt2:
      return kGpt2Regex;
    case SplitPattern::kLlama3:
      return kLlama3Regex;
    case SplitPattern::kQwen2:
      return kQwen2Regex;
  }
  return {};
}

std::string_view split_pattern_name(SplitPattern p) noexcept {
  switch (p) {
    case SplitPattern::kGpt2:
      return "gpt2";
    case SplitPattern::kLlama3:
      return "llama3";
    case SplitPattern::kQwen2:
      return "qwen2";
  }
  return {};
}

std::optional<SplitPattern> recognise_split_pattern(std::string_view regex) noexcept {
  for (SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kLlama3, SplitPattern::kQwen2})
    if (regex == split_pattern_regex(p)) return p;
  return std::nullopt;
}

std::vector<std::string_view> split_by_pattern(SplitPattern p, std::string_view text,
                                               std::uint64_t* examined) {
  const Decoded t(text);
  std::vector<std::string_view> pieces;
  std::size_t i = 0;
  while (i < t.size()) {
    std::size_t end = 0;
    switch (p) {
      case SplitPattern::kGpt2:
        end = match_gpt2(t, i);
        break;
      case SplitPattern::kLlama3:
        end = match_llama3(t, i, 3);
        break;
      case SplitPattern::kQwen2:
        end = match_llama3(t, i, 1);
        break;
    }
    TAILOR_ASSERT(end > i, "split pattern matched nothing at code point {}", i);
    pieces.push_back(text.substr(t.offsets[i], t.offsets[end] - t.offsets[i]));
    i = end;
  }
  if (examined != nullptr) *examined = t.examined;
  return pieces;
}

std::vector<std::string_view> split_digits(std::string_view text, bool individual) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;  // start of the current piece
  bool in_digits = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t at = pos;
    const bool digit = unicode::is_number(unicode::next_code_point(text, pos));
    if (at > start && (digit != in_digits || (digit && individual))) {
      pieces.push_back(text.substr(start, at - start));
      start = at;
    }
    in_digits = digit;
  }
  if (start < text.size()) pieces.push_back(text.substr(start));
  return pieces;
}

std::vector<std::string_view> split_merged_with_next(std::string_view text,
                                                     std::string_view delimiter) {
  std::vector<std::string_view> pieces;
  if (delimiter.empty()) {
    if (!text.empty()) pieces.push_back(text);
    return pieces;
  }
  std::size_t start = 0;
  std::size_t pos = text.find(delimiter);
  while (pos != std::string_view::npos) {
    // A delimiter closes the piece before it (if any) and opens the next one.
    if (pos > start) pieces.push_back(text.substr(start, pos - start));
    start = pos;
    pos = text.find(delimiter, pos + delimiter.size());
  }
  if (start < text.size()) pieces.push_back(text.substr(start));
  return pieces;
}

char32_t byte_level_char(std::uint8_t b) noexcept {
  // Printable ranges that stand for themselves: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF.
  const auto printable = [](unsigned v) {
    return (v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || (v >= 0xAE && v <= 0xFF);
  };
  if (printable(b)) return b;
  unsigned n = 0;  // number of non-printable bytes below b
  for (unsigned v = 0; v < b; ++v)
    if (!printable(v)) ++n;
  return 0x100 + n;
}

std::optional<std::uint8_t> byte_level_byte(char32_t c) noexcept {
  static const std::array<std::int16_t, 0x200> kInverse = [] {
    std::array<std::int16_t, 0x200> inv{};
    inv.fill(-1);
    for (unsigned b = 0; b < 256; ++b)
      inv[byte_level_char(static_cast<std::uint8_t>(b))] = static_cast<std::int16_t>(b);
    return inv;
  }();
  if (c >= kInverse.size() || kInverse[c] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(kInverse[c]);
}

void append_byte_level(std::string& out, std::string_view bytes) {
  static const std::array<std::string, 256> kEncoded = [] {
    std::array<std::string, 256> enc;
    for (unsigned b = 0; b < 256; ++b)
      unicode::append_utf8(enc[b], byte_level_char(static_cast<std::uint8_t>(b)));
    return enc;
  }();
  for (char ch : bytes) out += kEncoded[static_cast<unsigned char>(ch)];
}

}  // namespace tailor::data
