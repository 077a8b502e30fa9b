// A YAML document as a small tree whose every node knows where it came from.
//
// The loader needs, for every node, its position, whether a scalar was quoted, and every entry of a
// mapping even when a key repeats (to report duplicates). This tree, built from yaml-cpp's event
// parser, keeps all three; yaml_tree.cpp is the only file in Tailor that includes yaml-cpp.
// Lookups return the first entry with a key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/problems.h"

namespace tailor::config {

struct YamlEntry;

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };

  Kind kind = Kind::kNull;
  Location loc;
  std::string scalar;              // kScalar: the text, quotes and escapes resolved
  bool plain = false;              // kScalar: unquoted and untagged, so it may be a number or bool
  std::vector<YamlNode> items;     // kSequence
  std::vector<YamlEntry> entries;  // kMap, in document order, duplicates kept

  [[nodiscard]] const YamlEntry* find(std::string_view key) const;
  [[nodiscard]] YamlEntry* find(std::string_view key);
  [[nodiscard]] bool is_map() const noexcept { return kind == Kind::kMap; }
};

struct YamlEntry {
  std::string key;
  Location key_loc;
  YamlNode value;
};

struct YamlParse {
  std::optional<YamlNode> root;  // empty when the text holds no document (empty, comments only)
  bool failed = false;           // error_* are set: the text is not usable
  Location error_where;
  std::string error_reason;  // e.g. "YAML syntax error: end of sequence flow not found"
};

// Parses one YAML document; positions are reported against `source` (1-based line:column).
[[nodiscard]] YamlParse parse_yaml(const std::string& text, const std::string& source);

// Gives `node` and everything below it the location `loc` (values that came from an override).
void relocate(YamlNode& node, const Location& loc);

// Reports every key that appears twice in one mapping, at its second (third, ...) occurrence:
// "path: duplicate key (first defined at line L)". `path` is the key path of `node`.
void check_duplicate_keys(const YamlNode& node, const std::string& path, Problems& problems);

}  // namespace tailor::config
