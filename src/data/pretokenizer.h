// Pre-tokenizers of Hugging Face `tokenizers`, written out by hand (no regex engine: the GPU node
// has no PCRE2 or ICU, and a hand-written matcher is also faster).
//
// split_by_pattern reproduces exactly what `tokenizers` (Oniguruma, leftmost-first backtracking)
// gives for the three byte-level split regexes in use — GPT-2, Llama-3 and Qwen2 — with \p{L},
// \p{N} and \s from unicode.h. Each pattern matches at every position, so the pieces tile the
// input: concatenated they give it back, and no piece is empty. Inputs are valid UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::data {

enum class SplitPattern {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // As Llama-3 with \p{N} (single digits) in place of \p{N}{1,3}.
  kQwen2,
};

// The regex source of a pattern, exactly as it appears in tokenizer.json.
[[nodiscard]] std::string_view split_pattern_regex(SplitPattern p) noexcept;
[[nodiscard]] std::string_view split_pattern_name(SplitPattern p) noexcept;
// The pattern whose regex source is `regex`, or nullopt for any other regex.
[[nodiscard]] std::optional<SplitPattern> recognise_split_pattern(std::string_view regex) noexcept;

// The matches of the pattern in `text`, in order (views into `text`). Linear in the length of
// `text`: when `examined` is given, it receives the number of code points the matcher looked at
// (a measure of its work that tests compare across input sizes, as no clock can be trusted).
[[nodiscard]] std::vector<std::string_view> split_by_pattern(SplitPattern p, std::string_view text,
                                                             std::uint64_t* examined = nullptr);

// The Digits pre-tokenizer: runs of \p{N} (or single ones when `individual`) isolated from the
// rest.
[[nodiscard]] std::vector<std::string_view> split_digits(std::string_view text, bool individual);

// Splitting on a delimiter string with MergedWithNext behaviour (Metaspace's split): every
// delimiter starts a new piece, merged with the following text unless another delimiter follows.
[[nodiscard]] std::vector<std::string_view> split_merged_with_next(std::string_view text,
                                                                   std::string_view delimiter);

// GPT-2's byte-level alphabet: byte b ↔ one printable code point (bytes that are printable
// Latin-1 map to themselves, the others to U+0100 + n in byte order).
[[nodiscard]] char32_t byte_level_char(std::uint8_t b) noexcept;
// The byte a byte-level code point stands for, or nullopt when `c` is not in the alphabet.
[[nodiscard]] std::optional<std::uint8_t> byte_level_byte(char32_t c) noexcept;
// Maps every byte of `bytes` to its byte-level code point, as UTF-8.
void append_byte_level(std::string& out, std::string_view bytes);

}  // namespace tailor::data
