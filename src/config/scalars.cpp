// Scalar parsing, value descriptions and key suggestions; see scalars.h.
#include "config/scalars.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace tailor::config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Decimal digits with an optional sign: the only integer syntax accepted.
bool looks_like_int(std::string_view t) {
  if (!t.empty() && (t.front() == '+' || t.front() == '-')) t.remove_prefix(1);
  return !t.empty() && std::all_of(t.begin(), t.end(), is_digit);
}

// [+-]? (digits [. digits?]? | . digits) ([eE] [+-]? digits)?
bool looks_like_float(std::string_view t) {
  std::size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  std::size_t mantissa_digits = 0;
  while (i < t.size() && is_digit(t[i])) {
    ++i;
    ++mantissa_digits;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && is_digit(t[i])) {
      ++i;
      ++mantissa_digits;
    }
  }
  if (mantissa_digits == 0) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    std::size_t exponent_digits = 0;
    while (i < t.size() && is_digit(t[i])) {
      ++i;
      ++exponent_digits;
    }
    if (exponent_digits == 0) return false;
  }
  return i == t.size();
}

// from_chars accepts no leading '+'.
std::string_view strip_plus(std::string_view t) {
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  return t;
}

}  // namespace

ParseStatus parse_int(std::string_view text, std::int64_t& out) {
  if (!looks_like_int(text)) return ParseStatus::kWrongType;
  const std::string_view t = strip_plus(text);
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc::result_out_of_range) return ParseStatus::kOutOfRange;
  return ec == std::errc() && ptr == t.data() + t.size() ? ParseStatus::kOk
                                                         : ParseStatus::kWrongType;
}

ParseStatus parse_uint(std::string_view text, std::uint64_t& out) {
  if (!looks_like_int(text)) return ParseStatus::kWrongType;
  if (text.front() == '-') {
    // "-0" is zero; any other negative number is out of range.
    const bool zero = std::all_of(text.begin() + 1, text.end(), [](char c) { return c == '0'; });
    if (!zero) return ParseStatus::kOutOfRange;
    out = 0;
    return ParseStatus::kOk;
  }
  const std::string_view t = strip_plus(text);
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc::result_out_of_range) return ParseStatus::kOutOfRange;
  return ec == std::errc() && ptr == t.data() + t.size() ? ParseStatus::kOk
                                                         : ParseStatus::kWrongType;
}

ParseStatus parse_float(std::string_view text, double& out) {
  if (!looks_like_float(text)) return ParseStatus::kWrongType;
  const std::string_view t = strip_plus(text);
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && !std::isfinite(out))) {
    return ParseStatus::kOutOfRange;
  }
  return ec == std::errc() && ptr == t.data() + t.size() ? ParseStatus::kOk
                                                         : ParseStatus::kWrongType;
}

std::string double_quoted(std::string_view text, std::size_t max_chars) {
  std::string out = "\"";
  std::size_t shown = 0;
  for (char c : text) {
    if (shown++ == max_chars) {
      out += "...";
      break;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;  // UTF-8 passes through
        }
    }
  }
  out += '"';
  return out;
}

std::string quote(std::string_view text) { return double_quoted(text, 60); }

std::string describe(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return "no value";
    case YamlNode::Kind::kSequence:
      return "a sequence";
    case YamlNode::Kind::kMap:
      return "a mapping";
    case YamlNode::Kind::kScalar:
      break;
  }
  return node.plain ? quote(node.scalar) : "the quoted string " + quote(node.scalar);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // One row of the dynamic-programming table: row[j] = distance(a[0, i), b[0, j)).
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];  // distance(a[0, i-1), b[0, j-1))
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_key(std::string_view key,
                                       const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(key, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace tailor::config
