// YAML scalars and lines of the resolved config; see yaml_writer.h.
#include "config/yaml_writer.h"

#include <iterator>

#include <fmt/format.h>

#include "config/scalars.h"

namespace tailor::config {
namespace {

bool is_safe_plain(std::string_view s) {
  if (s.empty()) return false;
  const auto letter = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  const auto safe = [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '-';
  };
  // A leading letter or '_' (or a '/' or './' path) keeps numbers, '-' and '.inf' out.
  if (!(letter(s.front()) || s.front() == '/')) return false;
  for (char c : s) {
    if (!safe(c)) return false;
  }
  // Words that YAML 1.1 readers (PyYAML among them) take for booleans or null.
  std::string lower;
  for (char c : s) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  for (std::string_view word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}) {
    if (lower == word) return false;
  }
  return true;
}

}  // namespace

std::string yaml_float(double v) {
  std::string s = fmt::format("{}", v);
  // The ".0" makes every YAML reader take a whole number for a float.
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string yaml_string(std::string_view s) {
  return is_safe_plain(s) ? std::string(s) : double_quoted(s);
}

void YamlWriter::section(std::string_view name) {
  fmt::format_to(std::back_inserter(out_), "{}:\n", name);
}

void YamlWriter::line(std::string_view key, std::string_view value) {
  fmt::format_to(std::back_inserter(out_), "  {}: {}\n", key, value);
}

void YamlWriter::comment(std::string_view text) {
  fmt::format_to(std::back_inserter(out_), "  # {}\n", text);
}

}  // namespace tailor::config
