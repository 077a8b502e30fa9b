// Typed reads, range checks and unknown-key reports; see schema_reader.h.
#include "config/schema_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "config/scalars.h"

namespace tailor::config {
namespace {

std::string range_text(const IntRange& r) {
  if (!r.max) return fmt::format("must be >= {}", r.min);
  if (*r.max == r.min + 1) return fmt::format("must be {} or {}", r.min, *r.max);
  return fmt::format("must be in [{}, {}]", r.min, *r.max);
}

std::string range_text(const FloatRange& r) {
  if (!r.hi) return fmt::format("must be {} {}", r.lo_open ? ">" : ">=", r.lo);
  return fmt::format("must be in {}{}, {}{}", r.lo_open ? "(" : "[", r.lo, *r.hi,
                     r.hi_open ? ")" : "]");
}

bool in_range(double v, const FloatRange& r) {
  if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return false;
  if (r.hi && (r.hi_open ? !(v < *r.hi) : !(v <= *r.hi))) return false;
  return true;
}

bool is_plain_scalar(const YamlNode& node) {
  return node.kind == YamlNode::Kind::kScalar && node.plain;
}

}  // namespace

SchemaReader::SchemaReader(const YamlNode& root, std::string file, Problems& problems)
    : root_(root), file_(std::move(file)), problems_(problems) {}

void SchemaReader::begin_section(std::string name) {
  section_ = std::move(name);
  known_sections_.push_back(section_);
  known_keys_.clear();
  section_node_ = nullptr;
  section_bad_ = false;
  const YamlEntry* entry = root_.find(section_);
  if (entry == nullptr || entry->value.kind == YamlNode::Kind::kNull) return;
  if (!entry->value.is_map()) {
    problems_.add(entry->value.loc, section_,
                  fmt::format("expected a mapping of keys, got {}", describe(entry->value)));
    section_bad_ = true;
    return;
  }
  section_node_ = &entry->value;
}

void SchemaReader::end_section() {
  if (section_node_ == nullptr) return;
  for (const auto& e : section_node_->entries) {
    if (std::find(known_keys_.begin(), known_keys_.end(), e.key) != known_keys_.end()) continue;
    const auto suggestion = closest_key(e.key, known_keys_);
    problems_.add(e.key_loc, path_of(e.key),
                  suggestion ? fmt::format("unknown key (did you mean \"{}\"?)", *suggestion)
                             : std::string("unknown key"));
  }
}

void SchemaReader::end_sections() {
  for (const auto& e : root_.entries) {
    if (std::find(known_sections_.begin(), known_sections_.end(), e.key) != known_sections_.end()) {
      continue;
    }
    const auto suggestion = closest_key(e.key, known_sections_);
    problems_.add(e.key_loc, e.key,
                  suggestion ? fmt::format("unknown section (did you mean \"{}\"?)", *suggestion)
                             : std::string("unknown section"));
  }
}

std::string SchemaReader::path_of(std::string_view key) const {
  return fmt::format("{}.{}", section_, key);
}

bool SchemaReader::given(std::string_view key) const {
  return section_node_ != nullptr && section_node_->find(key) != nullptr;
}

const YamlNode* SchemaReader::lookup(std::string_view key, Presence presence) {
  known_keys_.emplace_back(key);
  KeyState& state = keys_[path_of(key)];
  const YamlEntry* entry = section_node_ ? section_node_->find(key) : nullptr;
  if (entry == nullptr) {
    if (presence == Presence::kRequired) {
      state.ok = false;
      // A section that is not a mapping was reported already; its keys are not "missing".
      if (!section_bad_) {
        problems_.add(Location::whole_file(file_), path_of(key), "required key is missing");
      }
    }
    return nullptr;
  }
  state.set = true;
  state.loc = entry->value.loc;
  return &entry->value;
}

bool SchemaReader::fail(std::string_view key, const YamlNode& node, std::string_view reason) {
  const std::string path = path_of(key);
  problems_.add(node.loc, path, reason);
  mark_bad(path);
  return false;
}

bool SchemaReader::read_int(std::string_view key, std::int64_t& out, IntRange range,
                            Presence presence) {
  const YamlNode* node = lookup(key, presence);
  if (node == nullptr) return false;
  std::int64_t value = 0;
  const ParseStatus status =
      is_plain_scalar(*node) ? parse_int(node->scalar, value) : ParseStatus::kWrongType;
  if (status == ParseStatus::kWrongType) {
    return fail(key, *node, fmt::format("expected an integer, got {}", describe(*node)));
  }
  if (status == ParseStatus::kOutOfRange) {
    return fail(key, *node,
                fmt::format("is outside the 64-bit integer range (got {})", node->scalar));
  }
  if (value < range.min || (range.max && value > *range.max)) {
    return fail(key, *node, fmt::format("{} (got {})", range_text(range), node->scalar));
  }
  out = value;
  return true;
}

bool SchemaReader::read_int_or_auto(std::string_view key, std::int64_t& out, IntRange range) {
  const YamlNode* node = lookup(key, Presence::kOptional);
  if (node == nullptr) return false;
  if (is_plain_scalar(*node) && node->scalar == "auto") {
    out = 0;
    return true;
  }
  std::int64_t value = 0;
  const ParseStatus status =
      is_plain_scalar(*node) ? parse_int(node->scalar, value) : ParseStatus::kWrongType;
  if (status != ParseStatus::kOk || value < range.min || (range.max && value > *range.max)) {
    return fail(key, *node,
                fmt::format("expected auto or an integer >= {}, got {}", range.min, describe(*node)));
  }
  out = value;
  return true;
}

bool SchemaReader::read_uint(std::string_view key, std::uint64_t& out) {
  const YamlNode* node = lookup(key, Presence::kOptional);
  if (node == nullptr) return false;
  std::uint64_t value = 0;
  const ParseStatus status =
      is_plain_scalar(*node) ? parse_uint(node->scalar, value) : ParseStatus::kWrongType;
  if (status == ParseStatus::kWrongType) {
    return fail(key, *node, fmt::format("expected an integer, got {}", describe(*node)));
  }
  if (status == ParseStatus::kOutOfRange) {
    return fail(key, *node,
                node->scalar.front() == '-'
                    ? fmt::format("must be >= 0 (got {})", node->scalar)
                    : fmt::format("must be <= {} (got {})",
                                  std::numeric_limits<std::uint64_t>::max(), node->scalar));
  }
  out = value;
  return true;
}

bool SchemaReader::convert_float(const YamlNode& node, std::string_view path, double& out,
                                 FloatRange range) {
  double value = 0.0;
  const ParseStatus status =
      is_plain_scalar(node) ? parse_float(node.scalar, value) : ParseStatus::kWrongType;
  if (status == ParseStatus::kWrongType) {
    problems_.add(node.loc, path, fmt::format("expected a number, got {}", describe(node)));
    return false;
  }
  if (status == ParseStatus::kOutOfRange) {
    problems_.add(node.loc, path,
                  fmt::format("is outside the 64-bit float range (got {})", node.scalar));
    return false;
  }
  if (!in_range(value, range)) {
    problems_.add(node.loc, path, fmt::format("{} (got {})", range_text(range), node.scalar));
    return false;
  }
  out = value;
  return true;
}

bool SchemaReader::read_float(std::string_view key, double& out, FloatRange range,
                              Presence presence) {
  const YamlNode* node = lookup(key, presence);
  if (node == nullptr) return false;
  if (!convert_float(*node, path_of(key), out, range)) {
    mark_bad(path_of(key));
    return false;
  }
  return true;
}

bool SchemaReader::read_bool(std::string_view key, bool& out) {
  const YamlNode* node = lookup(key, Presence::kOptional);
  if (node == nullptr) return false;
  if (!is_plain_scalar(*node) || (node->scalar != "true" && node->scalar != "false")) {
    return fail(key, *node, fmt::format("expected true or false, got {}", describe(*node)));
  }
  out = node->scalar == "true";
  return true;
}

bool SchemaReader::read_string(std::string_view key, std::string& out, Presence presence) {
  const YamlNode* node = lookup(key, presence);
  if (node == nullptr) return false;
  if (node->kind != YamlNode::Kind::kScalar) {
    return fail(key, *node, fmt::format("expected a string, got {}", describe(*node)));
  }
  if (presence == Presence::kRequired && node->scalar.empty()) {
    return fail(key, *node, "must not be empty");
  }
  out = node->scalar;
  return true;
}

bool SchemaReader::read_choice(std::string_view key, std::span<const std::string_view> choices,
                               std::size_t& index) {
  const YamlNode* node = lookup(key, Presence::kOptional);
  if (node == nullptr) return false;
  const bool scalar = node->kind == YamlNode::Kind::kScalar;
  const auto it = scalar ? std::find(choices.begin(), choices.end(), node->scalar) : choices.end();
  if (it == choices.end()) {
    return fail(key, *node,
                fmt::format("must be one of {} (got {})", fmt::join(choices, ", "),
                            scalar ? quote(node->scalar) : describe(*node)));
  }
  index = static_cast<std::size_t>(it - choices.begin());
  return true;
}

const YamlNode* SchemaReader::read_node(std::string_view key) {
  return lookup(key, Presence::kOptional);
}

bool SchemaReader::is_set(std::string_view path) const {
  const auto it = keys_.find(path);
  return it != keys_.end() && it->second.set;
}

bool SchemaReader::is_ok(std::string_view path) const {
  const auto it = keys_.find(path);
  return it == keys_.end() || it->second.ok;
}

Location SchemaReader::where(std::string_view path) const {
  const auto it = keys_.find(path);
  if (it == keys_.end() || !it->second.set) return Location::whole_file(file_);
  return it->second.loc;
}

void SchemaReader::mark_bad(std::string_view path) { keys_[std::string(path)].ok = false; }

void SchemaReader::problem(std::string_view path, std::string_view reason) {
  problems_.add(where(path), path, reason);
}

void SchemaReader::problem_at(const Location& loc, std::string_view path, std::string_view reason) {
  problems_.add(loc, path, reason);
}

}  // namespace tailor::config
