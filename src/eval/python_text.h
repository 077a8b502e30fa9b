// The semantics of the Python `str` methods that the metric references are written with
// (sacreBLEU, rouge-score, the SQuAD exact-match normalizer), on UTF-8 text. Their results depend
// on exactly these rules — str.split() splits on U+3000 and U+001C, str.lower() turns U+212A KELVIN
// SIGN into an ASCII "k" and a word-final capital sigma into "ς" — so Tailor copies them, not a
// nearby standard's (Oniguruma's \s, ICU's case mapping).
//
// The non-ASCII data come from python_case_table.inc, probed from the Python interpreter that made
// the fixtures (make_python_case_table.py; kPyUnicodeVersion records its Unicode version).
// Every function here takes VALID UTF-8 (see valid_utf8); none of them throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tailor::eval::py {

// The Unicode version of the tables ("14.0.0": Python 3.11).
[[nodiscard]] std::string_view unicode_version() noexcept;

// str.isspace(): \t \n \v \f \r, U+001C..U+001F, space, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
[[nodiscard]] bool is_space(char32_t cp) noexcept;

// What `\w` matches in a str pattern of Python's `re` (letters, numbers, underscore).
[[nodiscard]] bool is_word_char(char32_t cp) noexcept;

// `text` itself when it is valid UTF-8, else a copy with each maximal invalid subsequence replaced
// by U+FFFD (what bytes.decode('utf-8', errors='replace') gives).
[[nodiscard]] std::string valid_utf8(std::string_view text);

// Number of code points (len() of the str).
[[nodiscard]] std::size_t length(std::string_view text) noexcept;

// str.split() with no argument: the non-empty runs between whitespace. Views into `text`.
[[nodiscard]] std::vector<std::string_view> split(std::string_view text);

// str.strip() / str.rstrip() with no argument.
[[nodiscard]] std::string_view strip(std::string_view text) noexcept;
[[nodiscard]] std::string_view rstrip(std::string_view text) noexcept;

// str.lower(), full mapping: U+0130 becomes "i̇" (two code points) and a capital sigma becomes
// final "ς" where Unicode's Final_Sigma context holds, as CPython implements it.
[[nodiscard]] std::u32string lower(std::u32string_view text);
[[nodiscard]] std::string lower(std::string_view text);

// UTF-8 <-> code points (valid input only).
[[nodiscard]] std::u32string decode(std::string_view text);
[[nodiscard]] std::string encode(std::u32string_view text);

}  // namespace tailor::eval::py
