// Reading typed values out of YAML scalars, describing values in messages, and "did you mean".
//
// The rules are stricter than YAML 1.1's: integers are decimal digits with an optional sign (no
// 1e3, no 0x10), floats are decimal with an optional exponent (3e-4, 1.0e-5, 10; no .inf/.nan),
// booleans are exactly true or false. Only plain (unquoted) scalars are numbers or booleans.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_tree.h"

namespace tailor::config {

enum class ParseStatus { kOk, kWrongType, kOutOfRange };

[[nodiscard]] ParseStatus parse_int(std::string_view text, std::int64_t& out);
[[nodiscard]] ParseStatus parse_uint(std::string_view text, std::uint64_t& out);
[[nodiscard]] ParseStatus parse_float(std::string_view text, double& out);

// `text` as a YAML double-quoted scalar: `"`, `\`, newline, tab, carriage return and the other
// control characters (and DEL) escaped, UTF-8 passed through; after `max_chars` bytes, "..." ends
// it. Written to resolved configs (whole) and shown in messages (quote()).
[[nodiscard]] std::string double_quoted(std::string_view text,
                                        std::size_t max_chars = std::string_view::npos);

// `text` in double quotes, with control characters escaped and long values shortened.
[[nodiscard]] std::string quote(std::string_view text);

// What a value is, for "expected X, got <describe>": "ten" for a plain scalar, the quoted string
// "10" for a quoted one, a mapping, a sequence, no value.
[[nodiscard]] std::string describe(const YamlNode& node);

// Levenshtein distance (insertions, deletions, substitutions).
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `key`, when it is close enough to be a likely typo:
// distance <= max(2, len(key) / 3). Ties go to the earlier candidate.
[[nodiscard]] std::optional<std::string> closest_key(std::string_view key,
                                                     const std::vector<std::string>& candidates);

}  // namespace tailor::config
