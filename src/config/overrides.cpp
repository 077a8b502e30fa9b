// Parsing and applying `key.path=value` overrides; see overrides.h.
#include "config/overrides.h"

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "config/scalars.h"

namespace tailor::config {
namespace {

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

YamlNode empty_map(const Location& loc) {
  YamlNode node;
  node.kind = YamlNode::Kind::kMap;
  node.loc = loc;
  return node;
}

// Sets root[path[0]]...[path[n-1]] = value, creating mappings on the way.
void set_path(YamlNode& root, const std::vector<std::string>& path, YamlNode value,
              const Location& loc) {
  YamlNode* node = &root;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (!node->is_map()) *node = empty_map(loc);
    YamlEntry* entry = node->find(path[i]);
    if (entry == nullptr) {
      node->entries.push_back({path[i], loc, empty_map(loc)});
      entry = &node->entries.back();
    }
    node = &entry->value;
  }
  *node = std::move(value);
}

}  // namespace

void apply_overrides(YamlNode& root, const std::vector<std::string>& overrides,
                     Problems& problems) {
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    const Location loc = Location::of_override(static_cast<int>(i) + 1);
    const std::string_view text = overrides[i];
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) {
      problems.add_unkeyed(loc, fmt::format("expected key.path=value, got {}", quote(text)));
      continue;
    }
    const std::string_view key_path = trim(text.substr(0, eq));
    if (key_path.empty()) {
      problems.add_unkeyed(loc, fmt::format("empty key path in {}", quote(text)));
      continue;
    }
    const std::vector<std::string> path = split_path(key_path);
    bool empty_part = false;
    for (const auto& part : path) empty_part = empty_part || part.empty();
    if (empty_part) {
      problems.add_unkeyed(loc, fmt::format("empty key in key path {}", quote(key_path)));
      continue;
    }
    YamlParse parsed = parse_yaml(std::string(text.substr(eq + 1)), loc.source);
    if (parsed.failed) {
      problems.add(loc, key_path, parsed.error_reason);
      continue;
    }
    YamlNode value = parsed.root ? std::move(*parsed.root) : YamlNode{};
    relocate(value, loc);
    check_duplicate_keys(value, std::string(key_path), problems);
    set_path(root, path, std::move(value), loc);
  }
}

}  // namespace tailor::config
