// Typed, checked reads of config keys out of the parsed tree.
//
// A SchemaReader walks the root mapping section by section. Each read_* call names one key of the
// current section, converts its value if present (leaving the default in place otherwise), checks
// its range, and records a problem for anything wrong. The keys read are the schema: whatever else
// a section holds is an unknown key, reported with the closest known key as a suggestion. The
// reader also remembers, per "section.key", whether the key was set, whether its value is usable
// and where it came from, so cross-field rules can skip values already reported as wrong and can
// point at the right place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/problems.h"
#include "config/yaml_tree.h"

namespace tailor::config {

enum class Presence { kOptional, kRequired };

// Integers in [min, max] (max unset: no upper bound).
struct IntRange {
  std::int64_t min = 0;
  std::optional<std::int64_t> max;
};

// Floats between lo and hi; each bound open (excluded) or closed. hi unset: no upper bound.
struct FloatRange {
  double lo = 0.0;
  bool lo_open = false;
  std::optional<double> hi;
  bool hi_open = false;
};

// The ranges most keys use.
inline constexpr IntRange kAtLeast0{0, std::nullopt};
inline constexpr IntRange kAtLeast1{1, std::nullopt};
inline constexpr FloatRange kPositive{0.0, true, std::nullopt, false};      // > 0
inline constexpr FloatRange kNonNegative{0.0, false, std::nullopt, false};  // >= 0
inline constexpr FloatRange kUnitHalfOpen{0.0, false, 1.0, true};           // [0, 1)
inline constexpr FloatRange kUnitClosed{0.0, false, 1.0, false};            // [0, 1]

class SchemaReader {
 public:
  SchemaReader(const YamlNode& root, std::string file, Problems& problems);

  // The section the following reads look in. A missing or empty section reads as an empty one.
  void begin_section(std::string name);
  // Reports the keys of the current section that no read_* asked for.
  void end_section();
  // Reports top-level keys that no begin_section asked for.
  void end_sections();

  // Each returns true when the key was present and valid, and only then writes `out`.
  bool read_int(std::string_view key, std::int64_t& out, IntRange range,
                Presence presence = Presence::kOptional);
  bool read_uint(std::string_view key, std::uint64_t& out);
  // An integer in range, or the word `auto` (stored as 0).
  bool read_int_or_auto(std::string_view key, std::int64_t& out, IntRange range);
  bool read_float(std::string_view key, double& out, FloatRange range,
                  Presence presence = Presence::kOptional);
  bool read_bool(std::string_view key, bool& out);
  // Required strings must also be non-empty.
  bool read_string(std::string_view key, std::string& out, Presence presence = Presence::kOptional);
  // One of `choices`; `index` is the position of the name given.
  bool read_choice(std::string_view key, std::span<const std::string_view> choices,
                   std::size_t& index);
  // The raw value (nullptr when absent), for keys with a structure of their own; the caller
  // checks it and calls mark_bad() if it is wrong.
  const YamlNode* read_node(std::string_view key);

  // Converts one float value found at `path` (used for sequence items too).
  bool convert_float(const YamlNode& node, std::string_view path, double& out, FloatRange range);

  // Whether the current section gives `key` (nothing is recorded: for a key whose rules depend
  // on another key of its section).
  [[nodiscard]] bool given(std::string_view key) const;

  // Facts about "section.key" paths, for cross-field rules.
  [[nodiscard]] bool is_set(std::string_view path) const;  // given in the file or an override
  [[nodiscard]] bool is_ok(std::string_view path) const;  // usable: valid, or absent with a default
  // Where the key's value came from; the whole file when it was not given.
  [[nodiscard]] Location where(std::string_view path) const;
  void mark_bad(std::string_view path);

  // Records a problem with `path` at where(path).
  void problem(std::string_view path, std::string_view reason);
  void problem_at(const Location& loc, std::string_view path, std::string_view reason);

 private:
  struct KeyState {
    bool set = false;
    bool ok = true;
    Location loc;
  };

  // Looks `key` up in the current section and records it as part of the schema.
  const YamlNode* lookup(std::string_view key, Presence presence);
  std::string path_of(std::string_view key) const;
  bool fail(std::string_view key, const YamlNode& node, std::string_view reason);

  const YamlNode& root_;
  std::string file_;
  Problems& problems_;

  std::string section_;
  const YamlNode* section_node_ = nullptr;  // nullptr: absent, empty or not a mapping
  bool section_bad_ = false;                // present but not a mapping (already reported)
  std::vector<std::string> known_sections_;
  std::vector<std::string> known_keys_;  // of the current section
  std::map<std::string, KeyState, std::less<>> keys_;
};

}  // namespace tailor::config
