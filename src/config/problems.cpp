// Problem collection and ordering; see problems.h.
#include "config/problems.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "config/config.h"

namespace tailor::config {

Location Location::whole_file(std::string name) {
  Location loc;
  loc.source = std::move(name);
  return loc;
}

Location Location::in_file(std::string name, int line, int column) {
  Location loc;
  loc.source = std::move(name);
  loc.line = line;
  loc.column = column;
  return loc;
}

Location Location::of_override(int n) {
  Location loc;
  loc.source = fmt::format("<override {}>", n);
  loc.override_index = n;
  return loc;
}

std::string Location::str() const {
  if (line > 0) return fmt::format("{}:{}:{}", source, line, column);
  return source;
}

void Problems::add(const Location& where, std::string_view key_path, std::string_view reason) {
  entries_.push_back({where, fmt::format("{}: {}: {}", where.str(), key_path, reason)});
}

void Problems::add_unkeyed(const Location& where, std::string_view reason) {
  entries_.push_back({where, fmt::format("{}: {}", where.str(), reason)});
}

void Problems::raise_if_any() const {
  if (entries_.empty()) return;
  // 0: a position in the file; 1: an override; 2: the file as a whole.
  auto rank = [](const Location& l) {
    const int group = l.override_index > 0 ? 1 : (l.line > 0 ? 0 : 2);
    return std::make_tuple(group, l.override_index, l.line, l.column);
  };
  std::vector<Entry> sorted = entries_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const Entry& a, const Entry& b) { return rank(a.where) < rank(b.where); });
  std::vector<std::string> lines;
  lines.reserve(sorted.size());
  for (auto& e : sorted) lines.push_back(std::move(e.text));
  throw ConfigError(std::move(lines));
}

}  // namespace tailor::config
